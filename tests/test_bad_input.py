"""The bad-input table: what a careless user or an attacker feeds the CLI -> exit code and the one
``error:`` line naming the file, line or key (or the documented behaviour, with its exit code).

Each row names a data file (written by ``DATA``), a command and what must come back; the command
runs in-process through ``textcnn.cli.main``. Data errors are found before any training.
"""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import pytest

from conftest import tiny_config
from textcnn.cli import main


def _jsonl(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


TWO = [{"text": f"{w} film {i}", "label": i % 2} for i, w in enumerate(["good", "bad"] * 20)]
DATA: dict[str, bytes] = {
    "empty.jsonl": b"",
    "blank.jsonl": b"\n  \n\n",
    "header.csv": b"text,label\n",
    "latin1.jsonl": _jsonl(TWO[:3]) + '{"text": "caf\xe9", "label": 1}\n'.encode("latin-1"),
    "latin1.csv": b"text,label\nok,0\ncaf\xe9,1\n",
    "list.jsonl": _jsonl([*TWO[:2], {"text": "x", "label": [1]}]),
    "object.jsonl": _jsonl([*TWO[:2], {"text": "x", "label": {"id": 1}}]),
    "mixed.jsonl": _jsonl([*TWO, {"text": "what is an abbreviation", "label": "abbreviation"}]),
    "mixed.csv": b"text,label\n" + b"".join(b"t%d,%d\n" % (i, i % 2) for i in range(8))
                 + b"what,abbreviation\n",
    "one.jsonl": _jsonl([{"text": f"t {i}", "label": "spam"} for i in range(30)]),
    "nan.jsonl": _jsonl(TWO[:4]) + b'{"text": "x", "label": NaN}\n',
    "bool.jsonl": _jsonl([{"text": f"t {i}", "label": i % 2 == 0} for i in range(20)]),
    "half.jsonl": _jsonl([*TWO[:4], {"text": "x", "label": 0.5}]),
    "ids.jsonl": _jsonl([*TWO, {"text": "x", "label": 1.0}]),  # 1.0 is the id 1: trains
    "unseen/train.jsonl": _jsonl(TWO),
    "unseen/test.jsonl": _jsonl([*TWO[:4], {"text": "x", "label": 2}, {"text": "y", "label": 2}]),
    "named/dataset.json": b'{"label_names": ["no", "no"]}',
    "named/train.jsonl": _jsonl(TWO),
    "small.jsonl": _jsonl([{"text": f"{w} film {i}", "label": w}
                           for i, w in enumerate(["positive", "negative"] * 8)]),
    "afile": b"not a folder",
}

E, OK = 2, 0  # exit codes
TABLE = [
    # (data file, command (after the verb's own arguments are filled in), exit, message)
    ("empty.jsonl", "train", E, "empty.jsonl: no data rows (the file is empty"),
    ("blank.jsonl", "train", E, "blank.jsonl: no data rows (the file is empty"),
    ("header.csv", "train", E, "header.csv: no data rows (only a header line)"),
    ("latin1.jsonl", "train", E, "latin1.jsonl:4: not valid UTF-8 (byte 0xe9 at column 14)"),
    ("latin1.csv", "train", E, "latin1.csv:3: not valid UTF-8 (byte 0xe9"),
    ("list.jsonl", "train", E, "list.jsonl:3: label [1] is a list, not a class"),
    ("object.jsonl", "train", E, 'object.jsonl:3: label {{"id": 1}} is an object, not a class'),
    ("mixed.jsonl", "train", E, 'labels mix integers and strings (0 at {d}/mixed.jsonl:1, '
                                '"abbreviation" at {d}/mixed.jsonl:41)'),
    ("mixed.csv", "train", E, "labels mix numbers and names"),
    ("one.jsonl", "train", E, "one.jsonl: a classifier needs at least two classes, but all 30 "
                              "training rows are of the class 'spam'"),
    ("nan.jsonl", "train", E, "nan.jsonl:5: label NaN is not a number (a missing value?)"),
    ("bool.jsonl", "train", E, "bool.jsonl:1: label true is a boolean, not a class"),
    ("half.jsonl", "train", E, "half.jsonl:5: label 0.5 is a fractional number, not a class"),
    ("ids.jsonl", "train", OK, ""),
    ("unseen", "train", E, "unseen/test.jsonl:5: the class '2' is in the test split (2 rows) but "
                           "in no training row"),
    ("named", "train", E, "named/dataset.json: 'label_names' lists \"no\" more than once"),
    ("ids.jsonl", "train --output {d}/afile", E, "output folder {d}/afile is a file, not a folder"),
    ("ids.jsonl", "train --output {d}/afile/run", E,
     "cannot write {d}/afile/run: {d}/afile is a file, not a folder"),
    ("ids.jsonl", "train --output {d}/run [read-only]", E,
     "cannot write {d}/run/.textcnn.lock: Read-only file system"),
    ("ids.jsonl", "train --output {d}/run [full]", E, "MiB free on its file system, but this run "
                                                      "writes about"),
    ("small.jsonl", "evaluate {model}", OK, "note: {d}/small.jsonl has no fixed splits: 'test' is "
                                            "CV fold 0"),
    ("small.jsonl", "evaluate {model} --split all", OK, ""),
    ("afile", "predict {model} --file {d}/latin1.jsonl", E,
     "{d}/latin1.jsonl:4: not valid UTF-8 (byte 0xe9 at column 14); save the file as UTF-8"),
    ("afile", "predict {model} [a non-UTF-8 argument]", E,
     "TEXT argument 2 is not valid UTF-8 (byte 0xff at column 5)"),
    ("afile", "predict {huge} hello", E, "does not match config.json: its tensor"),
    ("afile", "serve {huge}", E, "does not match config.json: its tensor"),
]


@pytest.fixture
def data(tmp_path: Path) -> Path:
    for name, content in DATA.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(content)
    return tmp_path


def _huge_folder(model: Path, tmp_path: Path) -> Path:
    """A copy of ``model`` whose config.json asks for 10**6 channels."""
    folder = tmp_path / "huge"
    shutil.copytree(model, folder, ignore=shutil.ignore_patterns("*.png"))
    config = json.loads((folder / "config.json").read_text())
    config["model"]["channels"] = 10**6
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _simulate(tag: str, output: Path, monkeypatch) -> None:
    """What a row's ``[tag]`` stands for: a read-only or a full file system under ``output``
    (the first file a run creates there is its lock)."""
    import os

    import textcnn.outputs

    if tag == "read-only":
        output.mkdir()
        real_open = os.open

        def read_only(path, *args, **kwargs):
            if Path(path).parent == output:
                raise OSError(errno.EROFS, "Read-only file system", str(path))
            return real_open(path, *args, **kwargs)
        monkeypatch.setattr(textcnn.outputs.os, "open", read_only)
    elif tag == "full":
        usage = shutil.disk_usage(output.parent)._replace(free=1024)
        monkeypatch.setattr(textcnn.outputs.shutil, "disk_usage", lambda path: usage)


@pytest.mark.parametrize(("dataset", "command", "code", "message"), TABLE,
                         ids=[f"{r[1].split()[0]}-{r[0]}-{i}" for i, r in enumerate(TABLE)])
def test_bad_input(dataset, command, code, message, data, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, model = trained
    fill = {"d": data, "model": model}
    if "{huge}" in command:
        fill["huge"] = _huge_folder(model, tmp_path)
    command, _, tag = command.format(**fill).partition(" [")
    _simulate(tag.rstrip("]"), data / "run", monkeypatch)
    verb, *rest = command.split()
    if verb == "train":
        import yaml

        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(tiny_config(data / dataset, epochs=1)))
        rest = [str(config), *(rest or ["--output", str(tmp_path / "run")])]
    elif verb == "evaluate":
        rest += ["--dataset", str(data / dataset)]
    elif tag.startswith("a non-UTF-8"):
        rest += ["fine", "bad \udcff"]  # how Python hands over the argument byte 0xff
    if verb == "serve":
        import uvicorn

        monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("the folder loaded"))
    got = main([verb, *rest])
    err = capsys.readouterr().err
    assert got == code, err
    assert message.format(d=data) in err
    assert "Traceback" not in err
    if code == E:  # one error line, the last (a run may have logged its data first)
        lines = err.strip().splitlines()
        assert lines[-1].startswith("error: ") and sum(ln.startswith("error") for ln in lines) == 1
        assert "epoch 1" not in err  # found before any training
