"""What a new user tripped on, each pinned down by a test."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import subprocess
import sys
import time
from datetime import datetime

import numpy as np
import pytest
from test_cli import run_cli, write_config
from test_serve import multitask_folder  # noqa: F401 - a fixture

from conftest import ROOT, tiny_config
from textcnn.config import TaskConfig
from textcnn.data import RawDataset, Split, cv_folds, load_raw
from textcnn.data.hub import hub_reachable
from textcnn.errors import DataError


def test_import_textcnn_loads_no_sklearn_plots_or_datasets():
    code = ("import sys, textcnn; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'sklearn', 'scipy', 'matplotlib', 'datasets', 'pandas', 'fastapi'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_training_on_local_json_lines_imports_no_sklearn_datasets_or_dynamo(sst2_slice, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(tiny_config(sst2_slice, epochs=1)))
    code = ("import json, sys, textcnn\n"
            "from textcnn.config import from_dict\n"
            f"cfg = from_dict(json.load(open({str(config)!r})))\n"
            f"textcnn.train(cfg, output={str(tmp_path / 'run')!r}, log=lambda line: None)\n"
            "print([m for m in ('sklearn', 'datasets', 'torch._dynamo') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout
    assert out.strip().splitlines()[-1] == "[]"  # seconds of start-up none of them is needed for


# -- a broken CSV row names its file and line ---------------------------------------------------
@pytest.mark.parametrize("name, content, where, problem", [
    ("extra.csv", 'text,label\n"a fine film",1\n"bad, row",0,extra\nok,1\n', 3,
     "3 fields, but the header has 2"),
    ("quote.csv", 'text,label\n"a fine film",1\nok,0\n"never closed,0\nok,1\n', 4,
     "a quoted field opened here is never closed"),
    ("extra.tsv", "text\tlabel\na\t1\nb\t0\nc\t1\tx\n", 4, "holds a tab"),
])
def test_broken_csv_row_names_file_and_line(tmp_path, capsys, monkeypatch, name, content, where,
                                            problem):
    monkeypatch.chdir(tmp_path)  # the run's default output, runs/c, lands here
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_raw(TaskConfig(dataset=str(path)))
    assert str(err.value).startswith(f"{path}:{where}: ") and problem in str(err.value)
    code, _, stderr = run_cli(capsys, "train", write_config(tmp_path, tiny_config(path)))
    assert code == 2 and stderr.startswith("error: ") and stderr.strip().endswith(str(err.value))
    assert len(stderr.strip().splitlines()) == 1


# -- no network: fail at once, naming the variable to set ---------------------------------------
@pytest.fixture
def no_proxy(monkeypatch):
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("no_proxy")
def test_without_network_a_known_name_fails_fast_naming_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.delenv("TEXTCNN_DATA_DIR", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.chdir(tmp_path)
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_raw(TaskConfig(dataset="sst2"))
    assert time.perf_counter() - start < 5
    message = str(err.value)
    assert "Hub is unreachable" in message and "set TEXTCNN_DATA_DIR" in message
    assert "no data dir given" in message and "sst2/dataset.json" in message


@pytest.mark.usefixtures("no_proxy")
def test_hub_probe_sees_a_listening_host_or_proxy(monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        listening = f"http://127.0.0.1:{server.getsockname()[1]}"
        monkeypatch.setenv("HF_ENDPOINT", listening)
        assert hub_reachable(timeout=2)
        monkeypatch.setenv("HF_ENDPOINT", f"https://127.0.0.1:{_closed_port()}")
        assert not hub_reachable(timeout=2)
        monkeypatch.setenv("HTTPS_PROXY", listening)  # the Hub client would go through it
        assert hub_reachable(timeout=2)


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- cv --folds K is K-fold: every row tested once ------------------------------------------------
def _cv_set(n: int, with_folds: bool) -> RawDataset:
    labels = np.arange(n) % 2
    folds = (np.arange(n) // 2) % 10 if with_folds else None  # stratified, as shipped
    return RawDataset("toy", ["a", "b"], {"all": Split([f"t{i}" for i in range(n)], labels)},
                      folds)


@pytest.mark.parametrize("k", [2, 3, 5, 7, 10])
@pytest.mark.parametrize("with_folds", [True, False])
def test_cv_folds_partition_into_k_balanced_stratified_folds(k, with_folds):
    raw = _cv_set(140, with_folds)
    folds = cv_folds(raw, k)
    assert sorted(set(folds.tolist())) == list(range(k))  # every row in exactly one of k folds
    sizes = np.bincount(folds)
    assert sizes.max() - sizes.min() <= 2
    for f in range(k):  # stratified: both classes in every test fold, nearly half each
        held = raw.splits["all"].labels[folds == f]
        assert abs(held.mean() - 0.5) <= 1 / len(held) + 1e-9
    if with_folds and 10 % k == 0:  # the dataset's own folds, grouped
        assert (folds == raw.folds % k).all()


def test_cv_runs_k_folds_and_says_so(tmp_path, capsys):
    rows = [{"text": f"{w} film number {i}", "label": int(w == "great")}
            for i in range(50) for w in ("great", "awful")]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = write_config(tmp_path, tiny_config(path, epochs=1))
    code, _, err = run_cli(capsys, "cv", config, "--folds", 2, "--output", tmp_path / "cv")
    assert code == 0, err
    assert "2-fold CV on the dataset's 10 folds grouped into 2" in err
    tested = [int(n) for n in re.findall(r"/ (\d+) test", err)]
    assert len(tested) == 2 and sum(tested) == len(rows)  # every row tested once
    result = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())["sentiment"]
    assert len(result["folds"]) == 2 and "grouped into 2" in result["protocol"]
    assert "sentiment: 2-fold accuracy" in err
    code, _, err = run_cli(capsys, "cv", config, "--folds", 1)
    assert code == 2 and "--folds must be between 2 and 10" in err


# -- evaluate defaults to the dataset the model was trained on ----------------------------------
def test_evaluate_without_dataset_uses_the_trained_one(trained, capsys):
    _, folder = trained
    code, out, err = run_cli(capsys, "evaluate", folder)
    saved = json.loads((folder / "metrics.json").read_text())
    assert code == 0, err
    assert json.loads(out)["sentiment"]["test"] == saved["sentiment"]["test"]


# -- predict: id and text on every line; JSONL input -----------------------------------------------
def test_predict_lines_carry_id_and_text(trained, capsys, tmp_path):
    clf, folder = trained
    code, out, _ = run_cli(capsys, "predict", folder, "a fine film", "dull", "--top-k", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [(r["id"], r["text"]) for r in rows] == [(0, "a fine film"), (1, "dull")]
    assert [r["predictions"] for r in rows] == clf.predict(["a fine film", "dull"], top_k=2)
    texts = ["line one\nline two of the same review", "plain", "é \"quoted\""]
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"id": f"r{i}", "text": t}) + "\n\n"
                              for i, t in enumerate(texts)) + json.dumps({"text": "no id"}))
    code, out, _ = run_cli(capsys, "predict", folder, "--file", inputs)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["text"] for r in rows] == [*texts, "no id"]
    assert [r["id"] for r in rows] == ["r0", "r1", "r2", 3]
    assert [r["predictions"] for r in rows] == clf.predict([*texts, "no id"])


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\n{"text": "a" "id": 1}\n', "in.jsonl:2: not valid JSON"),
    ('{"text": "ok"}\n\n{"id": 1}\n', 'in.jsonl:3: expected {"text": "...", "id": ...}'),
    ('["a list"]\n', "in.jsonl:1: expected"),
])
def test_predict_bad_jsonl_names_the_line(trained, capsys, tmp_path, content, message):
    inputs = tmp_path / "in.jsonl"
    inputs.write_text(content)
    code, _, err = run_cli(capsys, "predict", trained[1], "--file", inputs)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


# -- the model folder says which trained model it is ---------------------------------------------
def test_folder_records_weights_hash_and_training_date(trained, tmp_path):
    clf, folder = trained
    saved = json.loads((folder / "config.json").read_text())
    digest = hashlib.sha256((folder / "model.safetensors").read_bytes()).hexdigest()
    assert saved["weights_sha256"] == digest
    trained_at = datetime.fromisoformat(saved["trained_at"])
    assert trained_at.utcoffset().total_seconds() == 0
    assert (datetime.now(trained_at.tzinfo) - trained_at).total_seconds() < 24 * 3600
    from textcnn import load

    copy = load(folder).save(tmp_path / "copy")  # a copy keeps the training date
    assert json.loads((copy / "config.json").read_text())["trained_at"] == saved["trained_at"]


# -- the HTTP service: offline /docs, which model it serves, one head -----------------------------
@pytest.fixture(scope="module")
def served(trained):
    from fastapi.testclient import TestClient

    from textcnn.serve import create_app

    with TestClient(create_app(trained[1])) as client:
        yield client


def test_docs_page_loads_every_asset_from_the_server(served):
    page = served.get("/docs")
    assert page.status_code == 200 and "SwaggerUIBundle" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(assets) == 3 and all(a.startswith("/docs/assets/") for a in assets)
    assert "//" not in page.text.replace("<!--", "")  # no absolute URL, no CDN
    for asset in assets:
        r = served.get(asset)
        assert r.status_code == 200 and len(r.content) > 100, asset
    bundle = served.get("/docs/assets/swagger-ui-bundle.js").text
    assert "OAS31" in bundle  # a Swagger UI that renders FastAPI's OpenAPI 3.1
    assert served.get("/redoc").status_code == 404  # CDN-only, off


def test_model_info_names_the_trained_model(served, trained):
    info = served.get("/v1/model").json()
    saved = json.loads((trained[1] / "config.json").read_text())
    assert info["weights_sha256"] == saved["weights_sha256"]
    assert info["model_id"] == saved["weights_sha256"][:12]
    assert info["trained_at"] == saved["trained_at"]


def test_classify_head_field(multitask_folder):  # noqa: F811 - the fixture imported above
    from fastapi.testclient import TestClient

    from textcnn.classifier import TextClassifier
    from textcnn.serve import create_app

    folder = multitask_folder  # heads: sentiment, topic (film, food, sport)
    texts = ["a fine film", "", "scary and long"]
    with TestClient(create_app(folder)) as client:
        both = client.post("/v1/classify", json={"texts": texts, "top_k": 2}).json()
        one = client.post("/v1/classify", json={"texts": texts, "top_k": 2, "head": "topic"})
        bad = client.post("/v1/classify", json={"texts": texts, "head": "genre"})
        schema = client.get("/openapi.json").json()
    assert one.status_code == 200
    assert one.json()["predictions"] == [{"topic": row["topic"]} for row in both["predictions"]]
    want = TextClassifier.from_pretrained(folder).predict(texts, top_k=2, head="topic")
    assert [[x["label"] for x in r["topic"]] for r in one.json()["predictions"]] == \
        [[x["label"] for x in r["topic"]] for r in want]
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "head"
    body = schema["paths"]["/v1/classify"]["post"]["requestBody"]["content"]
    assert "head" in body["application/json"]["schema"]["properties"]


# -- the compare report's image-filter figure has a colour scale ----------------------------------
def test_image_filter_figure_has_a_symmetric_colour_bar():
    from textcnn.contrib.studies.compare_figures import image_filters_figure
    from textcnn.metrics import pyplot

    plt = pyplot()
    if plt is None:
        pytest.skip("matplotlib is not installed")
    kernels = np.random.default_rng(0).normal(size=(12, 3, 3))
    fig = image_filters_figure(plt, kernels)
    tiles, bar = fig.axes
    assert bar.get_ylabel() == "weight"
    assert bar.get_ylim() == pytest.approx((-np.abs(kernels).max(), np.abs(kernels).max()))
    plt.close(fig)
