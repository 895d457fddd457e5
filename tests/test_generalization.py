"""scripts/generalization.py: random stratified draws, table means, resuming, skipped systems."""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location("generalization",
                                              ROOT / "scripts" / "generalization.py")
gen = importlib.util.module_from_spec(spec)
sys.modules["generalization"] = gen  # dataclasses look their module up
spec.loader.exec_module(gen)

WORDS = ["apple", "river", "stone"]


def write_set(folder: Path, per_class=20, test_per_class=5, all_only=False) -> Path:
    """A 3-class set whose files are sorted by label, as the benchmark's are."""
    folder.mkdir(parents=True)

    def rows(n, offset):
        return [{"text": f"{WORDS[c]} {WORDS[c]} item {offset + i}", "label": c}
                for c in range(3) for i in range(n)]
    splits = {"train": rows(per_class, 0), "test": rows(test_per_class, 1000)}
    if all_only:
        every = splits["train"] + splits["test"]
        splits = {"all": [{**r, "fold": i % 10} for i, r in enumerate(every)]}
    for split, body in splits.items():
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in body),
                                               encoding="utf-8")
    meta = {"name": folder.name, "task": "topic", "text_column": "text", "label_column": "label",
            "label_names": WORDS, "splits": {k: len(v) for k, v in splits.items()},
            "cv_folds": 10 if all_only else None}
    (folder / "dataset.json").write_text(json.dumps(meta), encoding="utf-8")
    return folder


def test_draws_are_random_stratified_and_reproducible(tmp_path):
    folder = write_set(tmp_path / "toy")
    draws = gen.make_draws(folder, ["full", "12"], draws=3, seed=0)
    assert [(d.size, d.draw, d.seed) for d in draws] == [("full", 0, 0), ("12", 0, 0),
                                                         ("12", 1, 1), ("12", 2, 2)]
    assert len(draws[0].train) == 60 and len(draws[0].test) == 15
    drawn = [tuple(d.train.texts) for d in draws[1:]]
    for d in draws[1:]:
        assert np.bincount(d.train.labels).tolist() == [4, 4, 4]  # stratified
        assert len(d.test) == 15 and d.validation is None  # the full test split, no validation
    first_rows = tuple(json.loads(line)["text"] for line in
                       (folder / "train.jsonl").read_text().splitlines()[:12])
    assert first_rows not in drawn and len(set(drawn)) == 3  # random, and each draw its own
    again = gen.make_draws(folder, ["12"], draws=3, seed=0)
    assert [tuple(d.train.texts) for d in again] == drawn


def test_a_set_with_only_all_tests_on_fold_0(tmp_path):
    folder = write_set(tmp_path / "cv", all_only=True)
    rows = [json.loads(line) for line in (folder / "all.jsonl").read_text().splitlines()]
    _, train, validation, test = gen.load_pool(folder)
    assert sorted(test.texts) == sorted(r["text"] for r in rows if r["fold"] == 0)
    assert len(train) == 75 - len(test) and validation is None


def test_text_sets_skip_images_and_sets_without_training_rows(tmp_path):
    write_set(tmp_path / "toy")
    (tmp_path / "digits").mkdir()
    (tmp_path / "digits" / "dataset.json").write_text(
        json.dumps({"task": "image-classification", "splits": {"all": 10}}))
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "dataset.json").write_text(
        json.dumps({"task": "topic", "text_column": "text", "splits": {"test": 10}}))
    names, skipped = gen.text_sets(tmp_path)
    assert names == ["toy"]
    assert skipped == {"digits": "not a text set",
                       "news": "no training rows (splits: test)"}


def test_an_unknown_set_is_bad_usage(tmp_path, capsys):
    write_set(tmp_path / "toy")
    with pytest.raises(SystemExit) as exc:
        gen.main(["--data-dir", str(tmp_path), "--datasets", "news", "--output",
                  str(tmp_path / "r.jsonl")])
    assert exc.value.code == 2
    assert f"--datasets: news not a text set in {tmp_path}" in capsys.readouterr().err


def record(system, dataset, size, draw, acc, seconds=1.0, rate=100.0):
    return {"system": system, "dataset": dataset, "size": size, "draw": draw, "accuracy": acc,
            "macro_f1": acc / 2, "train_seconds": seconds, "sentences_per_second": rate}


def test_table_means_over_draws_and_average_over_sets():
    records = [record("tfidf_lr", "a", "250", 0, 0.80, 1.0, 100.0),
               record("tfidf_lr", "a", "250", 1, 0.70, 3.0, 300.0),
               record("tfidf_lr", "b", "250", 0, 0.50),
               record("fasttext", "a", "250", 0, 0.60),
               record("tfidf_lr", "a", "full", 0, 0.90)]
    text = gen.tables(records)
    assert text.index("### full training sets") < text.index("### 250 training rows")
    assert "| a | tfidf_lr | 2 | 75.0 | 37.5 | 2.0 | 200 |" in text
    assert "| b | tfidf_lr | 1 | 50.0 | 25.0 | 1.0 | 100 |" in text
    # the average over sets weighs each set once, whatever its draws
    assert "| average, 2 sets | tfidf_lr |  | 62.5 | 31.2 | 1.5 | 150 |" in text
    assert "| average, 1 set | fasttext |  | 60.0 | 30.0 | 1.0 | 100 |" in text
    assert "| a | tfidf_lr | 1 | 90.0 | 45.0 | 1.0 | 100 |" in text


def test_runs_resume_and_a_missing_package_is_skipped(tmp_path, monkeypatch, capsys):
    write_set(tmp_path / "data" / "toy")
    out = tmp_path / "results.jsonl"
    monkeypatch.setitem(gen.SYSTEMS, "fasttext",
                        (gen.SYSTEMS["fasttext"][0], ("no_such_module_here",)))
    argv = ["--data-dir", str(tmp_path / "data"), "--systems", "tfidf_lr", "fasttext",
            "--sizes", "full", "12", "--draws", "2", "--output", str(out)]
    gen.main(argv)
    printed = capsys.readouterr().out
    assert "skipping fasttext: no_such_module_here is not installed" in printed
    records = gen.read_results(out)
    assert sorted((r["size"], r["draw"]) for r in records) == [("12", 0), ("12", 1),
                                                               ("full", 0)]
    assert {r["system"] for r in records} == {"tfidf_lr"}
    assert [r["train_rows"] for r in records] == [60, 12, 12]
    assert all(r["threads"] == 1 and len(r["load_average"]) == 2 for r in records)
    for r in records:  # a fraction of the 15 test rows
        assert round(r["accuracy"] * 15, 6) == round(r["accuracy"] * 15)
    # the keyword separates the classes: the full set is learnt
    assert records[0]["accuracy"] == 1.0

    out.write_text("\n".join(json.dumps(r) for r in records[:2]) + "\n", encoding="utf-8")
    ran = []
    real = gen.run_one
    monkeypatch.setattr(gen, "run_one", lambda system, draw, opts: ran.append(
        (system, draw.size, draw.draw)) or real(system, draw, opts))
    gen.main(argv)
    assert ran == [("tfidf_lr", "12", 1)]  # only the run missing from the file
    assert len(gen.read_results(out)) == 3
    gen.main(argv)
    assert ran == [("tfidf_lr", "12", 1)]  # nothing left to run


def test_a_failed_run_is_reported_left_out_and_the_others_go_on(tmp_path, monkeypatch, capsys):
    write_set(tmp_path / "data" / "toy")
    out = tmp_path / "results.jsonl"

    def broken(draw, work, opts):
        raise RuntimeError("textcnn train exited 2: bad key")
    monkeypatch.setitem(gen.SYSTEMS, "textcnn_cli", (broken, ()))
    with pytest.raises(SystemExit) as exc:
        gen.main(["--data-dir", str(tmp_path / "data"), "--systems", "textcnn_cli", "tfidf_lr",
                  "--sizes", "12", "--draws", "2", "--output", str(out)])
    assert exc.value.code == 1
    assert "FAILED textcnn_cli on toy 12 draw 1: textcnn train exited 2: bad key" in \
        capsys.readouterr().out
    assert [(r["system"], r["draw"]) for r in gen.read_results(out)] == [("tfidf_lr", 0),
                                                                         ("tfidf_lr", 1)]


TINY = ["tokenizer.kind=word", "model.pretrained=''", "model.embedding_mode=non-static",
        "model.embedding_dim=16", "model.channels=8", "model.ngram_buckets=0",
        "train.epochs=3", "train.min_steps=0", "train.batch_size=8", "train.lr=0.01"]


def test_textcnn_cli_and_estimator_score_a_draw(tmp_path):
    write_set(tmp_path / "data" / "toy")
    out = tmp_path / "results.jsonl"
    argv = ["--data-dir", str(tmp_path / "data"), "--systems", "textcnn_cli",
            "textcnn_estimator", "--sizes", "30", "--draws", "1", "--output", str(out)]
    for item in TINY:
        argv += ["--textcnn-set", item]
    gen.main(argv)
    records = {r["system"]: r for r in gen.read_results(out)}
    assert set(records) == {"textcnn_cli", "textcnn_estimator"}
    for r in records.values():
        assert (r["train_rows"], r["test_rows"], r["size"], r["seed"]) == (30, 15, "30", 0)
        # the keyword separates the classes: both learn it, and the predicted names map back
        # onto the right label ids
        assert r["accuracy"] > 0.9 and r["sentences_per_second"] > 0
        assert round(r["accuracy"] * 15, 6) == round(r["accuracy"] * 15)
    # one recipe for both doors: the same rows and seed give the same model
    assert records["textcnn_cli"]["accuracy"] == records["textcnn_estimator"]["accuracy"]


def test_textcnn_teacher_is_the_cli_with_the_switch_on_capped_sizes(tmp_path, monkeypatch):
    write_set(tmp_path / "data" / "toy")
    calls = []

    def cli(draw, work, opts, switch=()):
        calls.append((draw.size, switch))
        return draw.test.labels, 1.0, 0.1

    monkeypatch.setattr(gen, "run_textcnn_cli", cli)
    monkeypatch.setitem(gen.SYSTEMS, "textcnn_teacher", (gen.run_textcnn_teacher, ()))
    gen.main(["--data-dir", str(tmp_path / "data"), "--systems", "textcnn_teacher", "--sizes",
              "full", "12", "--draws", "1", "--setfit-max-rows", "20", "--output",
              str(tmp_path / "results.jsonl")])
    assert calls == [("12", ("--teacher", "minilm"))]  # a transformer: not at full size
