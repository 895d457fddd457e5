"""Golden tests of textcnn's public contracts: the CLI (help of every verb, and the output and exit
code of a tiny real train, evaluate, predict, explain, export, cv and card), the files of a model
folder (names, the keys and value types of each JSON file, the safetensors header) for a
single-label text model and for a multi-task model with a multi-label head, a squared-hinge head
and an image model, the HTTP API (status codes and bodies of every endpoint and of its errors)
and the resolved config of every shipped config under ``configs/``.

Each contract is compared with a stored file under ``tests/fixtures/golden/``; a mismatch fails with
a unified diff of the stored and the current value. Values that differ from run to run (temporary
paths, times, durations, hashes, the package version) are replaced by placeholders first, and
floats are rounded to 2 decimals (the data is synthetic and easy, so most scores sit far from a
rounding boundary). The runs train on that synthetic data (no download, no benchmark data), one
thread, seed 0, so the values are the same on another machine of the same kind. The goldens are
for the Python and packages the project installs (``pip install -e ".[dev,plots,serve,onnx]"``):
argparse lays help out differently between Python minor versions, and the model folder holds
the plots only when matplotlib is installed.

When a contract changes on purpose, regenerate the goldens and review their diff::

    TEXTCNN_UPDATE_GOLDEN=1 python -m pytest tests/test_contracts.py
    git diff tests/fixtures/golden
"""

from __future__ import annotations

import contextlib
import difflib
import io
import json
import os
import random
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from test_multilabel import colour_rows

from textcnn._version import __version__
from textcnn.cli import main
from textcnn.config import load_config

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden"
UPDATE = os.environ.get("TEXTCNN_UPDATE_GOLDEN") == "1"
# the verbs of `textcnn --help`, in its order
VERBS = ["train", "evaluate", "cv", "predict", "serve", "export", "compare", "card", "explain",
         "teach"]
# the shipped configs whose resolved form is pinned (the default recipe is not one of them)
SHIPPED = sorted(p.relative_to(ROOT / "configs").with_suffix("").as_posix()
                 for p in (ROOT / "configs").rglob("*.yaml"))


# -- comparing with the goldens ----------------------------------------------------------------
def _dump(value) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def check_golden(name: str, value) -> None:
    """Compare ``value`` (text, or JSON data) with ``tests/fixtures/golden/<name>``; with
    ``TEXTCNN_UPDATE_GOLDEN=1``, write it there instead."""
    path = GOLDEN / name
    text = _dump(value)
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"no golden file {path.relative_to(ROOT)}: write it with "
                    "TEXTCNN_UPDATE_GOLDEN=1 python -m pytest tests/test_contracts.py")
    stored = path.read_text(encoding="utf-8")
    if stored != text:
        diff = "".join(difflib.unified_diff(stored.splitlines(True), text.splitlines(True),
                                            f"golden/{name}", "now"))
        pytest.fail(f"contract {name} changed (TEXTCNN_UPDATE_GOLDEN=1 rewrites the golden "
                    f"when the change is meant):\n{diff}", pytrace=False)


# -- normalising run-specific values -----------------------------------------------------------
def rounded(value, places: int = 2):
    """``value`` with every float rounded to ``places`` decimals (``-0.0`` as ``0.0``)."""
    if isinstance(value, float):
        return round(value, places) + 0.0
    if isinstance(value, dict):
        return {k: rounded(v, places) for k, v in value.items()}
    if isinstance(value, list):
        return [rounded(v, places) for v in value]
    return value


def schema(value):
    """The shape of JSON data: dicts keep their keys, a list becomes the list of its elements'
    distinct shapes, a scalar its type name."""
    if isinstance(value, dict):
        return {k: schema(v) for k, v in value.items()}
    if isinstance(value, list):
        shapes = []
        for item in map(schema, value):
            if item not in shapes:
                shapes.append(item)
        return shapes
    return {bool: "bool", int: "int", float: "float", str: "str", type(None): "null"}[type(value)]


def normal_text(text: str, *folders: Path) -> str:
    """``text`` with the given (temporary) folders as ``<TMP>``, hashes, times and durations as
    placeholders and decimals rounded to 2 places."""
    for folder in sorted(folders, key=lambda p: -len(str(p))):
        text = text.replace(str(folder), "<TMP>")
    text = re.sub(r"\b[0-9a-f]{64}\b", "<SHA256>", text)
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "<TIME>", text)
    text = re.sub(r"(?<![\w.])\d+(\.\d+)?s\b", "<N>s", text)
    return re.sub(r"(?<![\w.])\d+\.\d+(e-?\d+)?(?![\w.])",
                  lambda m: f"{float(m.group()):.2f}", text)


# keys whose values name one run or one release: (placeholder, the rule the value must follow)
RUN_KEYS = {"model_id": ("<MODEL_ID>", r"[0-9a-f]{12}"),
            "weights_sha256": ("<SHA256>", r"[0-9a-f]{64}"),
            "trained_at": ("<TIME>", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"),
            "textcnn_version": ("<VERSION>", re.escape(__version__)),
            "model_version": ("<VERSION>", re.escape(__version__))}


def normal_data(data, *folders: Path):
    """JSON data with the values of :data:`RUN_KEYS` replaced (each checked against its rule),
    strings normalised as :func:`normal_text` does and floats rounded."""
    if isinstance(data, str):
        return normal_text(data, *folders)
    if isinstance(data, dict):
        out = {}
        for key, value in data.items():
            if key in RUN_KEYS:
                placeholder, rule = RUN_KEYS[key]
                assert re.fullmatch(rule, str(value)), f"{key}: {value!r} does not match {rule}"
                out[key] = placeholder
            else:
                out[key] = normal_data(value, *folders)
        return out
    if isinstance(data, list):
        return [normal_data(v, *folders) for v in data]
    return rounded(data)


def json_lines(text: str) -> list:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- a tiny synthetic dataset and model --------------------------------------------------------
POSITIVE = ["good", "great", "fine", "lovely", "witty", "charming"]
NEGATIVE = ["bad", "awful", "dull", "boring", "flat", "tedious"]
FILLER = ["the", "a", "film", "plot", "actors", "story", "it", "is", "was", "and"]


def _sentence(rng: random.Random, label: int) -> str:
    words = [rng.choice(FILLER) for _ in range(rng.randint(3, 9))]
    words += [rng.choice(POSITIVE if label else NEGATIVE) for _ in range(2)]
    rng.shuffle(words)
    return " ".join(words)


def write_dataset(folder: Path, splits: dict[str, int], folds: bool = False) -> Path:
    """A deterministic two-class dataset folder (``dataset.json`` and one JSON-lines file per
    split); ``folds``: a single ``all`` split with a ``fold`` column."""
    rng = random.Random(0)
    folder.mkdir(parents=True)
    for split, n in splits.items():
        rows = [{"text": _sentence(rng, i % 2), "label": i % 2,
                 **({"fold": i // 2 % 10} if folds else {})} for i in range(n)]
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows),
                                               encoding="utf-8")
    meta = {"name": folder.name, "task": "sentiment", "text_column": "text",
            "label_column": "label", "label_names": ["negative", "positive"], "splits": splits,
            "cv_folds": 10 if folds else None}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return folder


def write_tiny_config(path: Path, dataset: Path) -> Path:
    config = {"tasks": {"sentiment": {"dataset": str(dataset)}},
              "tokenizer": {"kind": "word", "max_length": 16},
              "model": {"embedding_dim": 8, "kernel_sizes": [2, 3], "channels": 4,
                        "dropout": 0.0},
              "train": {"epochs": 3, "batch_size": 20, "optimizer": "adamw", "lr": 0.04,
                        "seed": 0, "patience": 3, "threads": 1}}
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def cli(capsys, *args) -> tuple[int, str, str]:
    """``textcnn ARGS`` in this process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse: --help and usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("contracts")
    write_dataset(root / "data", {"train": 120, "validation": 30, "test": 30})
    write_tiny_config(root / "tiny.yaml", root / "data")
    return root


@pytest.fixture(scope="module")
def model(work) -> tuple[Path, dict]:
    """The model folder of ``textcnn train tiny.yaml`` and what the command gave."""
    out, err = io.StringIO(), io.StringIO()  # module scope: no capsys
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["train", str(work / "tiny.yaml"), "--output", str(work / "model")])
    return work / "model", {"exit_code": code, "stdout": out.getvalue(),
                            "stderr": err.getvalue()}


@pytest.fixture(autouse=True)
def _fixed_help_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # argparse wraps help to the terminal width


# -- the CLI -----------------------------------------------------------------------------------
def test_top_level_help_lists_every_verb(capsys):
    code, out, err = cli(capsys, "--help")
    assert code == 0 and err == ""
    for verb in VERBS:
        assert re.search(rf"^    {verb}\s", out, re.M), verb
    check_golden("cli/help.txt", out)


@pytest.mark.parametrize("verb", VERBS)
def test_verb_help(capsys, verb):
    code, out, err = cli(capsys, verb, "--help")
    assert code == 0 and err == ""
    assert out.startswith(f"usage: textcnn {verb}") and "example:\n  textcnn " + verb in out
    check_golden(f"cli/help-{verb}.txt", out)


def test_installed_command_prints_the_same_help(capsys):
    env = {**os.environ, "COLUMNS": "100"}
    done = subprocess.run([sys.executable, "-m", "textcnn", "--help"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert done.stdout == cli(capsys, "--help")[1]


def test_usage_errors_exit_2(capsys, work):
    code, out, err = cli(capsys, "nosuchverb")
    assert (code, out) == (2, "") and "invalid choice: 'nosuchverb'" in err
    code, out, unknown = cli(capsys, "train", work / "tiny.yaml", "--set", "train.nope=1",
                             "--output", work / "never")
    assert (code, out) == (2, "") and not (work / "never").exists()
    assert unknown.count("\n") == 1 and unknown.startswith("error: ") and "train.nope" in unknown
    code, out, missing = cli(capsys, "predict", work / "no-model", "a film")
    assert (code, out) == (2, "") and missing.count("\n") == 1 and missing.startswith("error: ")
    check_golden("cli/errors.json", {"unknown key": normal_text(unknown, work),
                                     "missing model folder": normal_text(missing, work)})


def test_train_output_and_exit_code(model, work):
    folder, run = model
    assert run["exit_code"] == 0 and run["stdout"] == ""
    assert run["stderr"].splitlines()[-1] == f"model folder: {folder}"
    check_golden("cli/train.json", {"exit_code": run["exit_code"], "stdout": run["stdout"],
                                    "stderr": normal_text(run["stderr"], work).splitlines()})


def test_evaluate_output(capsys, model, work):
    folder, _ = model
    code, out, err = cli(capsys, "evaluate", folder)
    rows = json_lines(out)
    assert code == 0 and len(rows) == 1
    saved = json.loads((folder / "metrics.json").read_text())["sentiment"]["test"]
    assert rows[0] == {"sentiment": {"test": saved}}  # scored as training scored the test split
    code2, out2, _ = cli(capsys, "evaluate", folder, "--split", "validation", "--dataset",
                         work / "data")
    assert code2 == 0
    check_golden("cli/evaluate.json", {"exit_code": code, "test": rounded(rows),
                                       "validation": rounded(json_lines(out2))})


PROBES = ["good great film", "awful dull plot", "", "the film " * 12 + "lovely"]


def test_predict_output(capsys, model, work):
    folder, _ = model
    code, out, err = cli(capsys, "predict", folder, *PROBES, "--top-k", "2")
    rows = json_lines(out)
    assert code == 0 and [r["text"] for r in rows] == PROBES
    assert rows[0]["predictions"]["sentiment"][0]["label"] == "positive"
    assert rows[1]["predictions"]["sentiment"][0]["label"] == "negative"
    assert [r.get("truncated", False) for r in rows] == [False, False, False, True]
    inputs = work / "inputs.jsonl"
    inputs.write_text('{"text": "fine witty story", "id": "a"}\n{"text": "flat"}\n',
                      encoding="utf-8")
    code_file, out_file, err_file = cli(capsys, "predict", folder, "--file", inputs)
    assert code_file == 0
    check_golden("cli/predict.json", {
        "exit_code": code, "stdout": rounded(rows), "stderr": normal_text(err, work),
        "file": {"exit_code": code_file, "stdout": rounded(json_lines(out_file)),
                 "stderr": err_file}})


def test_explain_output(capsys, model):
    folder, _ = model
    code, out, err = cli(capsys, "explain", folder, "good great film", "dull", "--json",
                         "--top-k", "2")
    assert code == 0 and err == ""
    check_golden("cli/explain.json", {"exit_code": code, "stdout": rounded(json_lines(out))})


def test_export_output(capsys, model, work):
    pytest.importorskip("onnx")
    folder, _ = model
    code, out, err = cli(capsys, "export", folder, "--output", work / "exported.onnx")
    row = json.loads(out)
    assert code == 0 and row["path"] == str(work / "exported.onnx") and row["format"] == "onnx"
    assert 0 <= row["max_abs_diff"] < 1e-4 and (work / "exported.onnx").stat().st_size > 0
    check_golden("cli/export.json", {"exit_code": code, "stdout": schema(row)})


def test_card_output(capsys, model, work):
    folder, _ = model
    code, out, err = cli(capsys, "card", folder)
    assert code == 0 and out.strip() == str(folder / "README.md")
    headings = [line for line in (folder / "README.md").read_text().splitlines()
                if line.startswith("#")]
    check_golden("cli/card.json", {"exit_code": code, "stdout": normal_text(out, work),
                                   "headings": headings})


def test_cv_output_and_cv_folder(capsys, tmp_path):
    data = write_dataset(tmp_path / "cvdata", {"all": 100}, folds=True)
    config = write_tiny_config(tmp_path / "cv.yaml", data)
    code, out, err = cli(capsys, "cv", config, "--folds", "2", "--output", tmp_path / "cv",
                         "--set", "train.epochs=1")
    assert code == 0, err
    metrics = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())
    assert len(metrics["sentiment"]["folds"]) == 2
    mean = sum(f["accuracy"] for f in metrics["sentiment"]["folds"]) / 2
    assert metrics["sentiment"]["mean"]["accuracy"] == pytest.approx(mean, abs=1e-6)
    cv_config = json.loads((tmp_path / "cv" / "cv_config.json").read_text())
    check_golden("cli/cv.json", {
        "exit_code": code, "stdout": out, "stderr": normal_text(err, tmp_path).splitlines(),
        "files": sorted(p.name for p in (tmp_path / "cv").iterdir()),
        "cv_metrics.json": schema(metrics), "cv_config.json": schema(cv_config)})


# -- the model folder --------------------------------------------------------------------------
def safetensors_header(path: Path) -> dict:
    """The header of a safetensors file: {tensor: {"dtype", "shape"}} and ``__metadata__``."""
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
        header = json.loads(fh.read(size))
    return {name: ({"dtype": entry["dtype"], "shape": entry["shape"]}
                   if name != "__metadata__" else entry) for name, entry in header.items()}


def test_model_folder_files(model):
    folder, _ = model
    check_golden("folder/files.json", sorted(p.name for p in folder.iterdir()))


def test_config_json(model, work):
    folder, _ = model
    from textcnn.folder import FOLDER_KEYS

    saved = json.loads((folder / "config.json").read_text())
    resolved = load_config(work / "tiny.yaml").to_dict()  # what the run was given, resolved
    assert {k: v for k, v in saved.items() if k not in FOLDER_KEYS} == resolved
    assert saved["heads"] == {"sentiment": ["negative", "positive"]} and saved["kind"] == "text"
    check_golden("folder/config.json", {"schema": schema(saved),
                                        "values": normal_data(saved, work)})


def test_metrics_and_history(model):
    folder, _ = model
    metrics = json.loads((folder / "metrics.json").read_text())
    history = json_lines((folder / "history.jsonl").read_text())
    assert set(metrics["sentiment"]) == {"validation", "test"}
    assert [row["epoch"] for row in history] == [1, 2, 3]
    for split in metrics["sentiment"].values():
        assert all(0.0 <= split[k] <= 1.0 for k in ("accuracy", "macro_f1"))
    volatile = {"seconds", "seconds_to_best", "elapsed_seconds", "train_seconds"}

    def steady(row):
        return {k: v for k, v in row.items() if k not in volatile}

    check_golden("folder/metrics.json", {"schema": schema(metrics),
                                         "values": rounded(steady(metrics))})
    check_golden("folder/history.json", {"schema": schema(history),
                                         "values": [rounded(steady(r)) for r in history]})


def test_tokenizer_json(model):
    folder, _ = model
    data = json.loads((folder / "tokenizer.json").read_text())
    vocab = data["model"].pop("vocab")
    assert sorted(vocab.values()) == list(range(len(vocab)))
    assert (vocab["[PAD]"], vocab["[UNK]"]) == (0, 1)
    check_golden("folder/tokenizer.json", {"schema": schema(data), "vocab": sorted(vocab)})


def test_safetensors_header(model):
    folder, _ = model
    from textcnn.folder import weight_shapes

    header = safetensors_header(folder / "model.safetensors")
    assert {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"} == \
        weight_shapes(folder / "model.safetensors")
    check_golden("folder/safetensors.json", header)


# -- the folders of the other kinds of model ---------------------------------------------------
def write_colours(folder: Path, n: int) -> Path:
    """A multi-label JSON-lines file: filler words and a random subset of the colours, which
    are its labels."""
    rows = colour_rows(n, 1, FILLER, (3, 8), "tags")
    folder.mkdir(parents=True)
    for split, part in (("train", rows[:n // 2]), ("validation", rows[n // 2:3 * n // 4]),
                        ("test", rows[3 * n // 4:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part),
                                               encoding="utf-8")
    return folder


TINY_TEXT_MODEL = {"embedding_dim": 8, "kernel_sizes": [1, 2], "channels": 4, "dropout": 0.0}
TINY_TRAIN = {"epochs": 2, "batch_size": 20, "optimizer": "adamw", "lr": 0.04, "seed": 0,
              "threads": 1}


def other_config(kind: str, work: Path) -> dict:
    """The config of a tiny model of ``kind``: a multi-task model with a multi-label head, a
    squared-hinge head (calibrated after training) or an image model."""
    if kind == "image":
        return {"tasks": {"digit": {"dataset": "digits"}},
                "model": {"name": "imagecnn", "blocks": [4], "dropout": 0.0},
                "train": {**TINY_TRAIN, "epochs": 1, "batch_size": 100}}
    if kind == "multitask":
        tasks = {"sentiment": {"dataset": str(work / "data")},
                 "colour": {"dataset": str(write_colours(work / "colours", 200)),
                            "label_column": "tags", "multi_label": True}}
        return {"tasks": tasks, "tokenizer": {"kind": "word", "max_length": 16},
                "model": TINY_TEXT_MODEL, "train": TINY_TRAIN}
    return {"tasks": {"sentiment": {"dataset": str(work / "data")}},
            "tokenizer": {"kind": "word", "max_length": 16}, "model": TINY_TEXT_MODEL,
            "train": {**TINY_TRAIN, "loss": "squared_hinge"}}


@pytest.mark.parametrize("kind", ["multitask", "squared-hinge", "image"])
def test_folders_of_other_kinds(kind, model, work, tmp_path):
    import numpy as np

    from textcnn import load
    from textcnn.config import from_dict
    from textcnn.runs import train

    folder = tmp_path / kind
    train(from_dict(other_config(kind, work)), output=folder, log=lambda line: None)
    saved = json.loads((folder / "config.json").read_text())
    clf = load(folder)
    if kind == "image":
        assert saved["kind"] == "image" and not (folder / "tokenizer.json").exists()
        probes = np.linspace(0.0, 1.0, 2 * 8 * 8, dtype=np.float32).reshape(2, 1, 8, 8)
    else:
        probes = ["good red film", "awful blue and green plot", ""]
    if kind == "multitask":
        assert clf.multi_label == ["colour"] and set(saved["thresholds"]) == {"colour"}
    predictions = clf.predict(probes, top_k=2)
    assert len(predictions) == len(probes) and all(set(p) == set(clf.heads) for p in predictions)
    volatile = {"seconds", "seconds_to_best"}
    metrics = json.loads((folder / "metrics.json").read_text())
    check_golden(f"kinds/{kind}.json", {
        "files": sorted(p.name for p in folder.iterdir()),
        "config.json": {"schema": schema(saved), "values": normal_data(saved, work, tmp_path)},
        "metrics.json": {"schema": schema(metrics), "values": rounded(
            {k: v for k, v in metrics.items() if k not in volatile})},
        "history.jsonl": schema(json_lines((folder / "history.jsonl").read_text())),
        "safetensors": safetensors_header(folder / "model.safetensors"),
        "predict": rounded(predictions)})


# -- the HTTP API ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def client(model):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textcnn.serve import create_app

    with TestClient(create_app(model[0])) as c:
        yield c


def answer(response) -> dict:
    """Status, content type and (normalised) JSON body of an HTTP response."""
    json_body = "json" in response.headers.get("content-type", "")
    return {"status": response.status_code,
            "content_type": response.headers.get("content-type"),
            "body": normal_data(response.json()) if json_body else None}


def test_http_endpoints(client, model):
    folder, _ = model
    from textcnn import load

    texts = PROBES[:3]
    classified = client.post("/v1/classify", json={"texts": texts, "top_k": 2})
    assert classified.status_code == 200
    assert classified.json()["predictions"] == load(folder).predict(texts, top_k=2)
    info = client.get("/v1/model")
    assert info.json()["heads"] == {"sentiment": ["negative", "positive"]}
    page = client.get("/")
    assert page.status_code == 200 and "<html" in page.text.lower()
    check_golden("http/endpoints.json", {
        "POST /v1/classify": answer(classified),
        "POST /v1/classify default top_k": answer(client.post("/v1/classify",
                                                              json={"texts": ["fine"]})),
        "POST /v1/explain": answer(client.post("/v1/explain",
                                               json={"texts": ["good film"], "top_k": 1})),
        "GET /healthz": answer(client.get("/healthz")),
        "HEAD /healthz": {"status": client.head("/healthz").status_code},
        "GET /v1/model": answer(info),
        "GET /": {"status": page.status_code, "content_type": page.headers["content-type"]},
        "GET /docs": {"status": client.get("/docs").status_code}})


def test_http_openapi_operations(client):
    spec = client.get("/openapi.json").json()
    operations = {f"{method.upper()} {path}": {
        "responses": sorted(op["responses"]),
        "request": sorted(op.get("requestBody", {}).get("content", {}).get(
            "application/json", {}).get("schema", {}).get("properties", {}))}
        for path, item in spec["paths"].items() for method, op in item.items()}
    assert {"POST /v1/classify", "GET /healthz", "GET /v1/model"} <= set(operations)
    check_golden("http/openapi.json", operations)


JSON = "application/json"
BAD_REQUESTS = {
    "invalid json": ("POST", "/v1/classify", b'{"texts": ["a"', JSON),
    "missing texts": ("POST", "/v1/classify", b"{}", JSON),
    "empty texts": ("POST", "/v1/classify", b'{"texts": []}', JSON),
    "text not a string": ("POST", "/v1/classify", b'{"texts": ["ok", 3]}', JSON),
    "top_k zero": ("POST", "/v1/classify", b'{"texts": ["a"], "top_k": 0}', JSON),
    "unknown field": ("POST", "/v1/classify", b'{"texts": ["a"], "heads": "x"}', JSON),
    "not utf-8": ("POST", "/v1/classify", b'{"texts": ["\xff\xfe"]}', JSON),
    "too many texts": ("POST", "/v1/classify", json.dumps({"texts": ["a"] * 257}).encode(), JSON),
    "text too long": ("POST", "/v1/classify", json.dumps({"texts": ["x" * 20_001]}).encode(),
                      JSON),
    "body too large": ("POST", "/v1/classify",
                       json.dumps({"texts": ["x" * 20_000] * 53}).encode(), JSON),
    "wrong content type": ("POST", "/v1/classify", b'{"texts": ["a"]}', "text/plain"),
    "wrong method": ("GET", "/v1/classify", None, None),
    "unknown path": ("GET", "/v1/nothing", None, None),
    "explain missing texts": ("POST", "/v1/explain", b"{}", JSON),
}


def test_http_error_shape(client):
    answers = {}
    for name, (method, path, body, content_type) in BAD_REQUESTS.items():
        headers = {"content-type": content_type} if content_type else {}
        r = client.request(method, path, content=body, headers=headers)
        assert 400 <= r.status_code < 500, (name, r.status_code)
        details = r.json()["detail"]
        assert details and all({"loc", "field", "msg", "type"} <= set(d) for d in details), name
        answers[name] = answer(r)
    check_golden("http/errors.json", answers)


# -- the resolved config of every shipped config -----------------------------------------------
def test_every_shipped_config_has_a_golden():
    stored = sorted(p.relative_to(GOLDEN / "configs").with_suffix("").as_posix()
                    for p in (GOLDEN / "configs").rglob("*.json"))
    if UPDATE:  # a config that was removed takes its golden with it
        for name in set(stored) - set(SHIPPED):
            (GOLDEN / "configs" / f"{name}.json").unlink()
        return
    assert SHIPPED and stored == SHIPPED, \
        f"configs without a golden: {sorted(set(SHIPPED) - set(stored))}; goldens without a " \
        f"config: {sorted(set(stored) - set(SHIPPED))}"


@pytest.mark.parametrize("name", SHIPPED)
def test_resolved_shipped_config(name):
    resolved = load_config(ROOT / "configs" / f"{name}.yaml").to_dict()
    assert resolved["tasks"] and {"model", "train"} <= set(resolved)
    check_golden(f"configs/{name}.json", resolved)
