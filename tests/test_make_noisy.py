"""scripts/make_noisy.py: a seeded, reproducible noisy-text copy of a dataset folder."""

from __future__ import annotations

import importlib.util
import json
import random

from conftest import ROOT

spec = importlib.util.spec_from_file_location("make_noisy", ROOT / "scripts" / "make_noisy.py")
noisy = importlib.util.module_from_spec(spec)
spec.loader.exec_module(noisy)


def write_dataset(folder, rows):
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"name": "toy", "splits": {"train": 2,
                                                     "test": 1}, "hub_id": "x/toy"}))
    for split, part in (("train", rows[:2]), ("test", rows[2:])):
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in part))


def test_typos_are_seeded_at_the_rate_and_keep_spaces():
    text = "the quick brown fox jumps over the lazy dog " * 20
    a = noisy.add_typos(text, 0.1, random.Random(1))
    assert a == noisy.add_typos(text, 0.1, random.Random(1)) != text
    assert a.count(" ") == text.count(" ")  # words stay words: spaces are never hit
    changed = sum(x != y for x, y in zip(a.split(), text.split()))
    assert 0.2 < changed / len(text.split()) < 0.6  # about 1 - 0.9 ** 3.5 of the words
    assert noisy.add_typos(text, 0.0, random.Random(1)) == text
    assert noisy.add_typos("ab", 1.0, random.Random(0)) in {"ba", "", "aabb", "a", "b", "aab",
                                                             "abb", "aa", "bb"}


def test_every_split_is_copied_with_labels_and_the_recipe_recorded(tmp_path):
    rows = [{"text": "what is a good film ?", "label": 0},
            {"text": "who wrote hamlet ?", "label": 1}, {"text": "where is rome ?", "label": 2}]
    write_dataset(tmp_path / "toy", rows)
    out = noisy.make_noisy(tmp_path / "toy", tmp_path / "out", 0.5, 7)
    again = noisy.make_noisy(tmp_path / "toy", tmp_path / "again", 0.5, 7)
    meta = json.loads((out / "dataset.json").read_text())
    assert out.name == "toy-noisy" and meta["name"] == "toy-noisy" and "hub_id" not in meta
    assert meta["noise"]["rate"] == 0.5 and meta["noise"]["seed"] == 7
    for split in ("train", "test"):
        got = [json.loads(line) for line in (out / f"{split}.jsonl").read_text().splitlines()]
        assert (out / f"{split}.jsonl").read_text() == (again / f"{split}.jsonl").read_text()
        want = rows[:2] if split == "train" else rows[2:]
        assert [r["label"] for r in got] == [r["label"] for r in want]
        assert [r["text"] for r in got] != [r["text"] for r in want]


def test_bad_rate_and_missing_data_exit_2(tmp_path, capsys):
    assert noisy.main(["nowhere", "--data-dir", str(tmp_path), "--output", str(tmp_path)]) == 2
    write_dataset(tmp_path / "toy", [{"text": "a", "label": 0}] * 3)
    assert noisy.main([str(tmp_path / "toy"), "--rate", "2", "--output", str(tmp_path)]) == 2
    assert "--rate" in capsys.readouterr().err
