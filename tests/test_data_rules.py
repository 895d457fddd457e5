"""Data rules that hold on every path: the class check on the cut a run trains on (a CV fold),
text columns read as text, multi-label labels through the label rules, and a label column named
like a reserved key under ``--dataset``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from conftest import tiny_config, write_jsonl
from textcnn.cli import main
from textcnn.config import TaskConfig
from textcnn.data import check_trainable, load_raw, make_splits, select_split
from textcnn.errors import DataError

FAST = ["--set", "train.epochs=1", "--set", "train.min_steps=0", "--set", "model.channels=8",
        "--set", "tokenizer.max_length=32", "--set", "train.threads=1",
        "--set", "train.loss=cross_entropy"]  # the loss named: one recipe, not the candidates


def two_classes(n: int = 40) -> list[dict]:
    return [{"text": f"{word} film number {i}", "label": word, "fold": i % 10}
            for i in range(n) for word in ("good", "bad")]


# -- the class check runs on the cut (CV fold, carved validation), not only on the whole set --
def test_a_class_only_in_the_test_fold_is_refused(tmp_path, capsys):
    path = tmp_path / "folds.jsonl"
    rows = two_classes() + [{"text": "a so-so film", "label": "meh", "fold": 0},
                            {"text": "a film, so so", "label": "meh", "fold": 0}]
    write_jsonl(path, rows)
    raw = check_trainable(load_raw(TaskConfig(str(path))))  # every row together: 'meh' trains
    with pytest.raises(DataError) as refused:
        make_splits(raw, seed=0, fold=0)
    assert str(refused.value) == (
        f"{path}:81: the class 'meh' is in the test split (CV fold 0, 2 rows) but in no "
        "training row, so the model could never predict it; add training rows of it or drop "
        "it from test")
    assert set(make_splits(raw, seed=0, fold=1)["test"].labels) == {0, 1}  # 'meh' trains there
    assert len(select_split(raw, "test")) == 10  # scoring a folder is not refused
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(path, epochs=1)))
    assert main(["train", str(config), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [f"error: tasks.sentiment.dataset: {refused.value}"]
    assert not (tmp_path / "run").exists()


def test_a_class_carved_into_validation_only_is_refused(tmp_path):
    rows = [{"text": f"{w} {i}", "label": w} for i in range(30) for w in ("good", "bad")]
    # a class of one row: no stratified carve; find a seed whose random 10% takes that row
    write_jsonl(tmp_path / "train.jsonl", rows + [{"text": "odd", "label": "odd"}])
    raw = check_trainable(load_raw(TaskConfig(str(tmp_path))))
    seeds = [seed for seed in range(40) if "odd" not in
             [raw.label_names[i] for i in make_splits(raw, seed, check=False)["train"].labels]]
    assert seeds  # 4 of 61 rows go to validation: some seed takes the odd one
    with pytest.raises(DataError, match=r"train.jsonl:61: the class 'odd' is in the validation "
                                        r"split \(carved from the training rows, 1 row\)"):
        make_splits(raw, seeds[0])


# -- typed reading keeps the text column as text ------------------------------------------------
def test_a_csv_whose_texts_are_all_digits_trains(tmp_path, capsys):
    path = tmp_path / "codes.csv"
    lines = ["text,label"] + [f"{'00' if i % 2 else '9'}{i},{i % 2}" for i in range(60)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = load_raw(TaskConfig(str(path)))
    assert raw.splits["all"].texts[:3] == ["90", "001", "92"]  # text as written: zeros kept
    assert raw.label_names == ["0", "1"]  # the label column is still read as numbers
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(tiny_config(path, epochs=1)))
    assert main(["train", str(config), "--output", str(tmp_path / "run")]) == 0
    assert json.loads((tmp_path / "run" / "config.json").read_text())["heads"] == {
        "sentiment": ["0", "1"]}
    path.write_text("text,label\n12,0\n,1\n34,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"codes.csv: row 2 .*missing text field 'text'"):
        load_raw(TaskConfig(str(path)))


# -- multi-label: the label rules, and a set with no labels -------------------------------------
def test_multi_label_ids_follow_the_label_rules(tmp_path):
    path = tmp_path / "tags.jsonl"
    write_jsonl(path, [{"text": "a", "label": [0]}, {"text": "b", "label": ["0", 1]}])
    with pytest.raises(DataError, match=r"labels mix integers and strings \(0 at .*tags.jsonl:1, "
                                        r'"0" at .*tags.jsonl:2\)'):
        load_raw(TaskConfig(str(path), multi_label=True))
    write_jsonl(path, [{"text": "a", "label": [2, 0.0]}, {"text": "b", "label": [2.0]}])
    raw = load_raw(TaskConfig(str(path), multi_label=True))
    assert raw.label_names == ["0", "2"]  # 2.0 is the id 2: one label, not two named alike
    np.testing.assert_array_equal(raw.splits["all"].labels, [[1, 1], [0, 1]])
    write_jsonl(path, [{"text": "a", "label": ["x", True]}])
    with pytest.raises(DataError, match=r"tags.jsonl:1: label true is a boolean"):
        load_raw(TaskConfig(str(path), multi_label=True))


def test_a_multi_label_set_without_labels_says_so(tmp_path, capsys):
    path = tmp_path / "empty_sets.jsonl"
    write_jsonl(path, [{"text": f"film {i}", "tags": []} for i in range(40)])
    with pytest.raises(DataError, match=r"empty_sets.jsonl: no labels: every row's label set in "
                                        r"column 'tags' is empty"):
        load_raw(TaskConfig(str(path), label_column="tags", multi_label=True))
    data = tiny_config(path, epochs=1)
    data["tasks"]["sentiment"].update(label_column="tags", multi_label=True)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(data))
    assert main(["train", str(config), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "no labels" in err and "diverged" not in err and "train.lr" not in err


# -- --dataset: a label column named like a reserved key ----------------------------------------
def test_a_label_column_named_like_a_timing_key_trains_under_the_head_label(tmp_path, capsys):
    path = tmp_path / "timed.csv"
    path.write_text("text,seconds\n" + "".join(
        f"{'quick' if i % 2 else 'slow'} run {i},{'fast' if i % 2 else 'slow'}\n"
        for i in range(60)), encoding="utf-8")
    out = tmp_path / "run"
    code = main(["train", "--dataset", str(path), "--label-column", "seconds", "--output",
                 str(out), *FAST])
    err = capsys.readouterr().err
    assert code == 0, err
    assert ("note: the head learning column 'seconds' is named 'label': metrics.json gives the "
            "run's timing under 'seconds'") in err
    config = json.loads((out / "config.json").read_text())
    assert config["heads"] == {"label": ["fast", "slow"]}
    assert config["tasks"]["label"]["label_column"] == "seconds"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["label"]) == {"validation", "test"} and metrics["seconds"] > 0
