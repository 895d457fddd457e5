"""Faults a hostile input can cause, each with a bounded outcome: one ``error:`` line (exit 2) or
a documented cut. Memory is measured as the peak resident size of a child process (``ru_maxrss``
of ``RUSAGE_CHILDREN``); the big cases themselves (1 GB lines, a 2 GB file, a 500 MB
tokenizer) are ``scripts/fault_probe.py``'s.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

import textcnn
from conftest import read_jsonl, tiny_config, write_jsonl
from textcnn.cli import main
from textcnn.data.formats import count_rows, read_rows
from textcnn.data.stream import StreamSource
from textcnn.errors import DataError, InputError, ModelFolderError
from textcnn.serve import create_app
from textcnn.texts import MAX_LINE_BYTES

ROOT = Path(__file__).resolve().parents[1]
PEAK_LIMIT_MB = 1024  # the bound every case must stay under


def run_child(code: str, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """Run Python ``code`` in a fresh process; ``(result, its peak resident size in MB)``."""
    probe = textwrap.dedent("""
        import resource, subprocess, sys
        done = subprocess.run([sys.executable, "-c", sys.argv[1], *sys.argv[2:]],
                              capture_output=True, text=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        sys.stdout.write(f"{done.returncode}\\n{peak}\\n{done.stdout}\\0{done.stderr}")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", probe, code, *args], capture_output=True,
                         text=True, env=env, timeout=600).stdout
    code_line, peak, rest = out.split("\n", 2)
    stdout, stderr = rest.split("\0", 1)
    return subprocess.CompletedProcess(args, int(code_line), stdout, stderr), float(peak)


CLI = "import sys; from textcnn.cli import main; sys.exit(main(sys.argv[1:]))"


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


@pytest.fixture(scope="module")
def huge_line() -> bytes:
    return b"word " * ((64 << 20) // 5)  # 64 MB of text on one line


# -- one huge line ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["train.jsonl", "train.csv"])
def test_a_64_mb_line_in_a_training_file_fails_naming_it_with_a_small_peak(
        name, huge_line, tmp_path):
    path = tmp_path / name
    with open(path, "wb") as fh:
        if name.endswith(".csv"):
            fh.write(b"text,label\nfine,0\n" + huge_line + b",1\n")
        else:
            fh.write(b'{"text": "fine", "label": 0}\n{"text": "' + huge_line + b'", "label": 1}\n')
    done, peak = run_child(CLI, "train", "--dataset", str(path), "--output",
                           str(tmp_path / "out"), "--set", "train.threads=1")
    lines = error_lines(done.stderr)
    assert done.returncode == 2 and len(lines) == 1, done.stderr[-2000:]
    line = 3 if name.endswith(".csv") else 2
    assert lines[0].startswith("error: ") and lines[0].endswith(
        f"{path}:{line}: line is longer than {MAX_LINE_BYTES:,} bytes (the most a line may "
        "hold); split or shorten it")
    assert peak < PEAK_LIMIT_MB


def test_a_64_mb_line_in_predict_file_fails_naming_it_with_a_small_peak(
        trained, huge_line, tmp_path):
    _, folder = trained
    path = tmp_path / "texts.txt"
    path.write_bytes(b"a fine film\n" + huge_line)
    done, peak = run_child(CLI, "predict", str(folder), "--file", str(path))
    assert done.returncode == 2 and done.stdout == ""  # refused while reading the first chunk
    assert error_lines(done.stderr) == [f"error: {path}:2: line is longer than "
                                        f"{MAX_LINE_BYTES:,} bytes (the most a line may hold); "
                                        "split or shorten it"]
    assert peak < PEAK_LIMIT_MB


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_streamed_rows_never_hold_a_line_over_the_limit(suffix, tmp_path):
    path = tmp_path / f"train{suffix}"
    header = b"text,label\n" if suffix == ".csv" else b""
    path.write_bytes(header + b"x" * (MAX_LINE_BYTES + 10) + b"\n")
    with pytest.raises(DataError, match=rf"train{suffix}:{1 + bool(header)}: line is longer"):
        list(read_rows(path, "text", "label"))
    with pytest.raises(DataError, match="line is longer"):
        count_rows(path)


def test_a_text_over_the_character_limit_is_cut_before_tokenizing_in_training(
        sst2_slice, tmp_path):
    rows = read_jsonl(sst2_slice / "train.jsonl")[:200]
    rows[0] = {"text": "great " * 1_000_000, "label": rows[0]["label"]}  # 6 MB: under the line cap
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", rows)
    for split in ("validation", "test"):
        shutil.copy(sst2_slice / f"{split}.jsonl", folder / f"{split}.jsonl")
    shutil.copy(sst2_slice / "dataset.json", folder / "dataset.json")
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps({**tiny_config(folder), "train": {
        **tiny_config(folder)["train"], "epochs": 1}}))
    done, peak = run_child(CLI, "train", str(config), "--output", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 text(s) over 20,000 characters cut to that length before tokenizing" in done.stderr
    assert peak < PEAK_LIMIT_MB


def test_a_csv_field_longer_than_the_csv_modules_default_limit_is_read(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("text,label\n" + "y" * 200_000 + ",1\n", encoding="utf-8")
    assert [(len(t), label) for t, label, _ in read_rows(path, "text", "label")] == [(200_000, 1)]


# -- truncation reported, one character rule -------------------------------------------------
def test_predict_marks_and_counts_texts_cut_at_max_length(trained, capsys):
    clf, folder = trained
    long = " ".join(["a gorgeous, witty film"] * 40)  # 160 tokens; max_length is 64
    code = main(["predict", str(folder), "a fine film", long])
    out, err = capsys.readouterr()
    first, second = (json.loads(line) for line in out.splitlines())
    assert code == 0 and "truncated" not in first and second["truncated"] is True
    assert second["predictions"] == clf.predict([long])[0]
    assert set(second) == {"id", "text", "predictions", "truncated"}
    assert err.splitlines() == ['note: 1 of 2 text(s) had more than max_length (64) tokens; the '
                                'model read the first 64 of each (marked "truncated": true)']


def test_predict_reads_a_text_over_the_limit_as_far_as_the_model_does(trained, capsys,
                                                                      tmp_path):
    """A 40,000-character document (20 Newsgroups has them) is answered, marked as cut, on the
    CLI and in Python; the server refuses it, as its contract says."""
    clf, folder = trained
    long = "great film " * 4000  # 44,000 characters
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps({"text": "ok"}) + "\n" + json.dumps({"text": long}) + "\n")
    assert main(["predict", str(folder), "--file", str(path)]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert "truncated" not in rows[0] and rows[1]["truncated"] is True
    assert rows[1]["predictions"] == clf.predict([long[:clf.max_chars]])[0]
    assert "note: 1 of 2 text(s)" in err
    assert clf.prepare(clf.admit([long])).truncated.tolist() == [True]
    with TestClient(create_app(folder)) as client:
        r = client.post("/v1/classify", json={"texts": ["x" * 20_001]})
        ok = client.post("/v1/classify", json={"texts": ["x" * 20_000]})
    assert r.status_code == 422 and r.json()["detail"][0]["limit"] == {"name": "max_chars",
                                                                        "value": clf.max_chars}
    assert ok.status_code == 200


def test_the_server_may_lower_the_character_limit_but_not_raise_it(trained):
    from textcnn.serve import ServeSettings

    _, folder = trained
    with pytest.raises(textcnn.TextCNNError, match="--max-chars 30000 is over this model's limit"):
        create_app(folder, ServeSettings(max_chars=30_000))
    assert create_app(folder, ServeSettings(max_chars=100)).state.settings \
        .max_chars == 100


# -- the text rule on every path -------------------------------------------------------------
SURROGATE = "text holds a lone surrogate (U+D800) at character 3; texts must be valid Unicode"
NUL = "text holds a NUL character (U+0000) at character 3; is the file UTF-16 or binary?"


@pytest.mark.parametrize("bad,message", [("a \ud800 film", SURROGATE), ("a \x00 film", NUL)])
def test_every_path_refuses_the_same_texts_with_the_same_message(bad, message, trained,
                                                                 capsys, tmp_path):
    clf, folder = trained
    rows = [{"text": "fine", "label": 0}, {"text": bad, "label": 1}] * 6
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert main(["train", "--dataset", str(data), "--output", str(tmp_path / "o"),
                 "--set", "train.threads=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.endswith(f"{data}:2: {message}\n")
    with pytest.raises(DataError) as caught:
        list(StreamSource([str(data)]).rows())
    assert str(caught.value) == f"{data}:2: {message}"
    assert main(["predict", str(folder), "--file", str(data)]) == 2
    assert capsys.readouterr().err.endswith(f"{data}:2: {message}\n")
    for call in (clf.predict, clf.explain):
        with pytest.raises(InputError) as caught:
            call(["ok", bad])
        assert str(caught.value) == f"texts[1]: {message}"
    with TestClient(create_app(folder)) as client:
        for path in ("/v1/classify", "/v1/explain"):
            body = json.dumps({"texts": ["ok", bad]})  # JSON spells both as \\u escapes
            detail = client.post(path, content=body).json()["detail"][0]
            assert detail["field"] == "texts[1]" and detail["msg"] == message


def test_explain_checks_its_arguments_as_predict_does(trained, capsys):
    _, folder = trained
    raw = os.fsdecode(b"a \xed\xa0\x80 film")  # the UTF-8-style bytes of "\ud800" in argv
    assert main(["explain", str(folder), raw]) == 2
    assert capsys.readouterr().err.startswith("error: TEXT argument 1 is not valid UTF-8 (byte "
                                              "0xed at column 3)")


def test_a_byte_order_mark_at_the_start_of_a_file_is_skipped_everywhere(trained, capsys,
                                                                       tmp_path):
    _, folder = trained
    bom = b"\xef\xbb\xbf"
    jsonl, csv, text = tmp_path / "d.jsonl", tmp_path / "d.csv", tmp_path / "t.txt"
    jsonl.write_bytes(bom + b'{"text": "fine", "label": 0}\n{"text": "dull", "label": 1}\n')
    csv.write_bytes(bom + b"text,label\nfine,0\ndull,1\n")
    text.write_bytes(bom + b"a fine film\n")
    for path in (jsonl, csv):
        assert [t for t, _, _ in read_rows(path, "text", "label")] == ["fine", "dull"]
    from textcnn.config import TaskConfig
    from textcnn.data import load_raw

    for path in (jsonl, csv):
        assert load_raw(TaskConfig(dataset=str(path))).splits["all"].texts == ["fine", "dull"]
    assert main(["predict", str(folder), "--file", str(text)]) == 0
    assert json.loads(capsys.readouterr().out)["text"] == "a fine film"


def test_streamed_csv_with_bad_utf8_names_the_line(tmp_path):
    path = tmp_path / "train.csv"
    path.write_bytes(b"text,label\nfine,0\ncaf\xe9,1\n")
    with pytest.raises(DataError, match=r"train\.csv:3: not valid UTF-8 \(byte 0xe9 at column "
                                        r"4\); save the file as UTF-8"):
        count_rows(path)
    with pytest.raises(DataError, match=r"train\.csv:3: not valid UTF-8"):
        list(read_rows(path, "text", "label"))


# -- model folders ---------------------------------------------------------------------------
def copy_folder(folder: Path, tmp_path: Path) -> Path:
    out = tmp_path / "copy"
    shutil.copytree(folder, out)
    return out


def test_a_tokenizer_too_large_for_the_weights_is_refused_before_loading(trained, tmp_path,
                                                                         capsys):
    from textcnn.folder import TOKENIZER_BASE_BYTES, TOKENIZER_BYTES_PER_ROW, weight_shapes

    clf, folder = trained
    copy = copy_folder(folder, tmp_path)
    rows = max(s[0] for s in weight_shapes(copy / "model.safetensors").values() if s)
    assert rows == clf.tokenizer.get_vocab_size()
    limit = TOKENIZER_BASE_BYTES + TOKENIZER_BYTES_PER_ROW * rows
    with open(copy / "tokenizer.json", "ab") as fh:  # still valid JSON: loads without the check
        fh.write(b" " * (limit - fh.tell() + 1))
    with pytest.raises(ModelFolderError, match=rf"tokenizer.json is {limit + 1:,} bytes, too "
                                               rf"large for the {rows:,}-row vocabulary"):
        textcnn.load(copy)
    assert main(["predict", str(copy), "a film"]) == 2
    assert len(capsys.readouterr().err.splitlines()) == 1


def panicking_folder(folder: Path, tmp_path: Path) -> Path:
    """A copy of ``folder`` whose tokenizer's pattern exceeds the regex engine's retry limit
    on a long run of 'a' (the tokenizers library then panics)."""
    copy = copy_folder(folder, tmp_path)
    data = json.loads((copy / "tokenizer.json").read_text(encoding="utf-8"))
    data["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": "(a+)+b"},
                             "behavior": "Isolated", "invert": False}
    (copy / "tokenizer.json").write_text(json.dumps(data), encoding="utf-8")
    return copy


def test_a_tokenizer_that_panics_gives_one_error_line(trained, tmp_path):
    copy = panicking_folder(trained[1], tmp_path)
    for verb in ("predict", "explain"):
        done, _ = run_child(CLI, verb, str(copy), "a" * 40)
        assert done.returncode == 2, done.stderr[-2000:]
        assert error_lines(done.stderr) == [
            "error: the tokenizer failed on a text (Onig: Regex search error: retry-limit-in-match "
            "over): its tokenizer.json holds a pattern that cannot match such texts"]


def test_explain_answers_a_panic_in_the_json_error_shape_of_classify(trained, tmp_path):
    copy = panicking_folder(trained[1], tmp_path)
    with TestClient(create_app(copy)) as client:
        answers = [client.post(path, json={"texts": ["a" * 40]})
                   for path in ("/v1/classify", "/v1/explain")]
        fine = client.post("/v1/explain", json={"texts": ["b"]})
    for r in answers:
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        (detail,) = r.json()["detail"]
        assert detail["type"] == "forward_failed" and set(detail) == {"loc", "field", "msg",
                                                                       "type"}
    assert fine.status_code == 200


# -- a lost training process -----------------------------------------------------------------
SIM = textwrap.dedent("""
    import os, sys, time
    from textcnn.errors import PeerLost
    from textcnn.training.distributed import session
    try:
        with session("cpu") as world:
            world.all_sum([1.0])
            if world.rank == 0:
                os._exit(9)  # killed
            time.sleep(1)
            world.all_sum([1.0])
    except PeerLost as exc:
        print(exc)
        sys.exit(1)
""")


def test_a_rank_whose_peer_was_killed_raises_peer_lost(tmp_path):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port), "WORLD_SIZE": "2", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", SIM], env={**env, "RANK": str(r),
                                                                "LOCAL_RANK": str(r)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for r in (0, 1)]
    out, err = procs[1].communicate(timeout=300)
    procs[0].wait(timeout=60)
    assert procs[1].returncode == 1, err[-2000:]
    assert out.strip() == ("training process 1 of 2 lost its connection to another (Connection "
                           "closed by peer): one was killed or crashed")


def test_the_cli_says_how_to_resume_when_a_peer_was_lost(monkeypatch, tmp_path, capsys):
    import textcnn.runs
    from textcnn.errors import PeerLost
    from textcnn.training import CHECKPOINT

    out = tmp_path / "out"
    out.mkdir()

    def lost(*args, **kwargs):
        raise PeerLost("training process 1 of 2 lost its connection to another (Connection "
                       "closed by peer): one was killed or crashed")

    monkeypatch.setattr(textcnn.runs, "train", lost)
    monkeypatch.setenv("WORLD_SIZE", "2")
    data = tmp_path / "x.jsonl"  # the recipe reads its rows before training
    data.write_text("".join(json.dumps({"text": f"text {i}", "label": i % 2}) + "\n"
                            for i in range(8)), encoding="utf-8")
    code = main(["train", "--dataset", str(data), "--output", str(out)])
    shape, err = capsys.readouterr().err.split("\n", 1)
    assert shape.startswith("default recipe: 8 training rows")
    assert code == 1 and err == (
        "error: training process 1 of 2 lost its connection to another (Connection closed by "
        f"peer): one was killed or crashed before the first epoch ended: no checkpoint in {out}; "
        "run the command again\n")
    assert not (out / CHECKPOINT).exists()


def test_the_estimator_follows_the_text_rule():
    from textcnn import TextCNNClassifier

    estimator = TextCNNClassifier()
    for call in (lambda: estimator.fit(["fine", "a \ud800 film"], [0, 1]),
                 lambda: estimator.fit(["fine", "a \x00 film"], [0, 1])):
        with pytest.raises(ValueError, match=r"^X\[1\]: text holds a"):
            call()


def test_the_fault_probe_reports_exit_code_and_peak_per_case(tmp_path, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("fault_probe", ROOT / "scripts" /
                                                  "fault_probe.py")
    probe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(probe)
    assert probe.main(["--sizes-mb", "9", "--predict-mb", "0", "--tokenizer-mb", "0",
                       "--work", str(tmp_path)]) == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines()
            if line.startswith("| train") or line.startswith("| streamed")]
    assert [row[0] for row in rows] == ["| train, 9 MB line, JSONL",
                                        "| streamed train, 9 MB line, JSONL",
                                        "| train, 9 MB line, CSV",
                                        "| streamed train, 9 MB line, CSV"]
    assert all(row[1] == "2" and 0 < float(row[2]) < PEAK_LIMIT_MB for row in rows)
    assert list(tmp_path.iterdir()) == []  # the big files are gone


def test_a_streamed_run_counts_the_texts_it_cuts(sst2_slice, tmp_path):
    from textcnn.config import from_dict
    from textcnn.modality import modality_for

    folder = tmp_path / "stream"
    folder.mkdir()
    rows = read_jsonl(sst2_slice / "train.jsonl")[:300]
    rows[5] = {"text": "great " * 5000, "label": rows[5]["label"]}  # 30,000 characters
    write_jsonl(folder / "train.jsonl", rows)
    shutil.copy(sst2_slice / "validation.jsonl", folder / "validation.jsonl")
    shutil.copy(sst2_slice / "dataset.json", folder / "dataset.json")
    config = from_dict({"tasks": {"sentiment": {"dataset": str(folder), "stream": True}},
                        "tokenizer": {"sample": 300}})
    modality = modality_for(config)
    data = modality.prepare(config, {"sentiment": modality.load_dataset(
        config.tasks["sentiment"])})
    assert data.description.endswith("; 1 text(s) over 20,000 characters cut to that length "
                                     "before tokenizing")


def test_the_nproc_launcher_names_the_process_that_failed_in_one_line(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text("import os, sys, time\n"
                      "if os.environ['RANK'] == '0':\n"
                      "    print('error: rank 0 gave up', file=sys.stderr)\n"
                      "    sys.exit(3)\n"
                      "time.sleep(120)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "textcnn.training.launcher", "--standalone",
                           "--nproc-per-node", "2", str(script)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "error: rank 0 gave up" in done.stderr
    assert done.stderr.splitlines()[-1] == ("error: training process 0 of 2 ended with exit code "
                                            "3 first (the lines above say why)")
