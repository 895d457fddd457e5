import json
import subprocess
import sys

import pytest

from conftest import tiny_config
from textcnn.cli import main


def run_cli(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def write_config(tmp_path, data, name="c.yaml"):
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_predict_prints_json_lines(trained, capsys, tmp_path):
    _, folder = trained
    code, out, _ = run_cli(capsys, "predict", folder, "a fine film", "", "--top-k", "2")
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(rows) == 2 and len(rows[0]["predictions"]["sentiment"]) == 2
    texts = tmp_path / "texts.txt"
    texts.write_text("one\ntwo\n" + "long " * 3000 + "\n")  # 15,000 characters: within limits
    code, out, _ = run_cli(capsys, "predict", folder, "--file", texts)
    assert code == 0 and len(out.splitlines()) == 3


def test_predict_file_answers_every_line_blank_ones_included(trained, capsys, tmp_path,
                                                             monkeypatch):
    import io

    clf, folder = trained
    path = tmp_path / "texts.txt"
    path.write_bytes(b"\nfirst\r\n\r\n   \nlast\n\n")  # line i of the file is output line i
    texts = ["", "first", "", "   ", "last", ""]
    want = [{"id": i, "text": t, "predictions": p} for i, (t, p) in
            enumerate(zip(texts, clf.predict(texts), strict=True))]
    code, out, err = run_cli(capsys, "predict", folder, "--file", path)
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == want
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(path.read_bytes())))
    code, out, err = run_cli(capsys, "predict", folder)  # the same on stdin
    assert code == 0 and [json.loads(line) for line in out.splitlines()] == want, err
    # JSON lines: an empty text is answered; a blank line holds no object and is skipped
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": ""}\n\n{"text": "last", "id": "r2"}\n')
    code, out, err = run_cli(capsys, "predict", folder, "--file", rows)
    assert code == 0, err
    assert [json.loads(line) for line in out.splitlines()] == [
        {"id": 0, "text": "", "predictions": want[0]["predictions"]},
        {"id": "r2", "text": "last", "predictions": want[4]["predictions"]}]


def test_evaluate_prints_metrics(trained, sst2_slice, capsys):
    _, folder = trained
    code, out, _ = run_cli(capsys, "evaluate", folder, "--dataset", sst2_slice)
    result = json.loads(out)
    saved = json.loads((folder / "metrics.json").read_text())
    assert code == 0
    assert result["sentiment"]["test"]["accuracy"] == saved["sentiment"]["test"]["accuracy"]


def test_cv_writes_cv_metrics(tmp_path, capsys):
    rows = [{"text": f"{w} film number {i}", "label": int(w == "great")}
            for i in range(60) for w in ("great", "awful")]
    path = tmp_path / "toy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = write_config(tmp_path, tiny_config(path, epochs=3, batch_size=10))  # 54 train rows
    code, _, err = run_cli(capsys, "cv", config, "--folds", 2, "--output", tmp_path / "cv")
    assert code == 0, err
    result = json.loads((tmp_path / "cv" / "cv_metrics.json").read_text())["sentiment"]
    assert len(result["folds"]) == 2 and set(result["mean"]) == {"accuracy", "macro_f1"}
    assert result["mean"]["accuracy"] > 0.9
    assert len(result["seconds"]) == 2 and all(s > 0 for s in result["seconds"])


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "{cfg_bad_key}"], "config key 'train.epochz'"),
        (["train", "{cfg_no_data}", "--data-dir", "{tmp}"], "looked in"),
        (["train", "{cfg_bad_jsonl}"], "train.jsonl:2"),
        (["train", "{cfg_ok}", "--set", "model.channels=lots"], "config key 'model.channels'"),
        (["train", "{cfg_ok}", "--output", "{tmp}/fresh", "--resume"], "no checkpoint"),
        (["predict", "{tmp}/nowhere", "hi"], "model folder not found"),
        (["evaluate", "{tmp}", "--dataset", "sst2"], "missing config.json"),
    ],
)
def test_bad_input_exits_2_with_one_line(args, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # a run without --output writes to runs/<config name> here
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.jsonl").write_text('{"text": "a", "label": 0}\n{"text": "b" "label": 1}\n')
    configs = {
        "cfg_bad_key": write_config(tmp_path, {"tasks": {"s": {"dataset": "sst2"}},
                                               "train": {"epochz": 1}}, "bad_key.yaml"),
        "cfg_no_data": write_config(tmp_path, {"tasks": {"s": {"dataset": "sst2"}}}, "nd.yaml"),
        "cfg_bad_jsonl": write_config(tmp_path, tiny_config(bad), "bj.yaml"),
        "cfg_ok": write_config(tmp_path, tiny_config(bad), "ok.yaml"),
        "tmp": tmp_path,
    }
    args = [a.format(**configs) for a in args]
    code, out, err = run_cli(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "fresh").exists() and not (tmp_path / "runs").exists()  # no empty one


def test_real_process_exit_codes(tmp_path):
    cmd = [sys.executable, "-m", "textcnn.cli"]
    bad = subprocess.run(cmd + ["predict", str(tmp_path / "none"), "x"], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and bad.stderr.startswith("error: model folder not found")
    usage = subprocess.run(cmd + ["evaluate"], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage:" in usage.stderr
    helped = subprocess.run(cmd + ["predict", "--help"], capture_output=True, text=True)
    assert helped.returncode == 0 and "example:" in helped.stdout
