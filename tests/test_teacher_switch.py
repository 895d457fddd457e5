"""The teacher switch: `textcnn train --dataset FOLDER --teacher NAME` and
`TextCNNClassifier(teacher=NAME)` fine-tune a teacher on the run's own rows and distil it into
the default recipe's CNN; a tiny random BERT made in the test stands in for MiniLM (no
download), on a synthetic task it learns."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_cli import run_cli, write_config
from test_distill import CUES, FILLER, write_task
from tiny_bert import tiny_bert

import textcnn
from textcnn.cli import build_parser, interrupted
from textcnn.config import from_dict
from textcnn.contrib.distill.augment import augment
from textcnn.contrib.distill.switch import PRESET, teacher_folder, teacher_overrides
from textcnn.contrib.distill.teacher import Teacher
from textcnn.data import load_raw, make_splits
from textcnn.errors import ConfigError
from textcnn.estimator import TextCNNClassifier
from textcnn.runs import train, train_and_evaluate

# the tiny teacher learns in a few dozen steps (1 epoch asked, min_steps makes it 3: 270 training
# rows are 17 steps of 16); the student is the recipe, shortened
ITEMS = ["teacher.lr=0.005", "teacher.max_length=16", "teacher.epochs=1", "teacher.min_steps=40",
         "distill.augment=2", "train.epochs=3", "train.min_steps=0", "train.lr=0.01",
         "model.channels=8", "tokenizer.max_length=32", "train.threads=1"]
SET = [arg for item in ITEMS for arg in ("--set", item)]


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    """A two-class cue task with train and test rows only (both doors carve validation the same
    way) and a tiny BERT whose vocabulary holds its words."""
    root = tmp_path_factory.mktemp("switch")
    folder = write_task(root / "cues", CUES["sentiment"], sizes=(300, 0, 80))
    (folder / "validation.jsonl").unlink()
    bert = tiny_bert(root / "bert", [w for c in CUES["sentiment"] for w in c] + FILLER, hidden=32)
    return folder, bert


def rows(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def test_train_with_a_teacher_writes_an_ordinary_student_folder(task, tmp_path, capsys):
    folder, bert = task
    more = tmp_path / "more.txt"
    more.write_text("a superb story\nthe poor cast\n")
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--teacher", bert, "--unlabeled",
                           more, "--output", out, *SET)
    assert code == 0, err
    assert "fine-tuning on 270 texts, validation 30" in err  # the student's own cut
    assert f"teacher {bert}: 1 thread (" in err  # train.threads, before the teacher trains
    metrics = json.loads((out / "metrics.json").read_text())
    teacher = metrics["teacher"]["label"]
    assert teacher["teacher"] == str(bert) and teacher["epochs"] == 3  # min_steps: 40 > 17
    assert teacher["validation"]["accuracy"] >= 0.9
    history = json.loads((teacher_folder(out) / "label" / "teacher.json").read_text())["history"]
    assert teacher["best_epoch"] == 1 + int(np.argmax(
        [row["validation"]["accuracy"] for row in history]))
    assert Path(teacher["folder"]) == teacher_folder(out) / "label"
    assert Teacher(teacher["folder"]).labels == ["c0", "c1"]
    # the student saw the training texts, their augmented copies and the unlabeled lines
    clf = textcnn.load(out)
    train = make_splits(load_raw(clf.config.tasks["label"]), 0)["train"]
    copies = len(augment(train.texts, 2, seed=0))
    assert f"label: +{copies + 2} texts for its teacher" in err, err
    # an ordinary model folder: it loads, predicts and names its teacher in the card
    assert not any((out / name).exists() for name in ("teacher", "label", "logits"))
    assert metrics["label"]["test"]["accuracy"] >= 0.9
    top = clf.predict(["the superb cast", "a dull plot"])
    assert [p["label"][0]["label"] for p in top] == ["c1", "c0"]
    card = (out / "README.md").read_text()
    assert "## Teacher" in card and str(bert).replace("_", "\\_") in card.replace("`", "")
    assert f"{teacher['validation']['accuracy']:.4f}" in card
    assert clf.config.distill.teacher == str(bert)


def test_a_rerun_into_the_same_folder_reuses_its_teacher_and_its_scores(task, tmp_path, capsys,
                                                                       monkeypatch):
    import textcnn.contrib.distill.teacher

    folder, bert = task
    args = ["train", "--dataset", folder, "--teacher", bert, "--output", tmp_path / "run", *SET]
    assert run_cli(capsys, *args)[0] == 0
    first = json.loads((tmp_path / "run" / "metrics.json").read_text())["teacher"]["label"]
    calls, real = [], textcnn.contrib.distill.teacher.fine_tune
    monkeypatch.setattr(textcnn.contrib.distill.teacher, "fine_tune",
                        lambda *a: calls.append(1) or real(*a))
    code, _, err = run_cli(capsys, *args, "--set", "train.epochs=2")  # the student retuned
    second = json.loads((tmp_path / "run" / "metrics.json").read_text())["teacher"]["label"]
    assert code == 0 and calls == [], err
    assert (first["reused"], second["reused"]) == (False, True)
    assert second["validation"] == first["validation"] and second["seconds"] == first["seconds"]
    assert "reused from" in err and "label: +" in err and ", 0 scored now" in err
    # other teacher settings: the teacher is fine-tuned again, in place of the first
    code, _, err = run_cli(capsys, *args, "--set", "teacher.lr=0.004")
    third = json.loads((tmp_path / "run" / "metrics.json").read_text())["teacher"]["label"]
    assert code == 0 and calls == [1] and third["reused"] is False, err


def test_the_estimator_runs_the_same_code_path(task, tmp_path, capsys):
    folder, bert = task
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--teacher", bert, "--output",
                           tmp_path / "run", *SET)
    assert code == 0, err
    names = ["c0", "c1"]
    train = rows(folder / "train.jsonl")
    est = TextCNNClassifier(teacher=str(bert), overrides=ITEMS)
    est.fit([r["text"] for r in train], [names[r["label"]] for r in train])
    cli, ours = textcnn.load(tmp_path / "run"), est.classifier_
    # the same teacher fine-tuned on the same rows, the same soft targets, the same student
    theirs = cli.model.state_dict()
    assert all(torch.equal(tensor, theirs[name])
               for name, tensor in ours.model.state_dict().items())
    texts = [r["text"] for r in rows(folder / "test.jsonl")]
    np.testing.assert_array_equal(est.predict_proba(texts), cli.predict_proba(texts)["label"])
    # the estimator's teacher lived in a temporary folder, gone once fit returned
    assert not Path(ours.config.distill.teachers["label"]).exists()
    assert ours.config.distill.teacher == str(bert)


def test_without_the_distill_extra_the_switch_is_one_line_naming_it(task, tmp_path, capsys,
                                                                    monkeypatch):
    folder, _ = task
    monkeypatch.setitem(sys.modules, "transformers", None)  # as if not installed
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--teacher", "minilm",
                           "--output", tmp_path / "run")
    assert code == 2
    assert err.count("\n") == 1 and "pip install 'textcnn[distill]'" in err, err
    assert not (tmp_path / "run").exists()
    with pytest.raises(ConfigError, match=r"'distill' extra .*pip install 'textcnn\[distill\]'"):
        TextCNNClassifier(teacher="minilm").to_config()


def test_the_switch_is_refused_where_it_cannot_work(task, tmp_path, capsys):
    folder, bert = task
    config = write_config(tmp_path, {"tasks": {"label": {"dataset": str(folder)}}})
    code, _, err = run_cli(capsys, "train", config, "--teacher", bert)
    assert code == 2 and "--teacher goes with --dataset" in err
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--unlabeled", config)
    assert code == 2 and "--unlabeled goes with --teacher" in err
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--teacher", tmp_path / "none")
    assert code == 2 and "names no model" in err
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--teacher", bert, "--resume",
                           "--output", tmp_path / "run", *SET)
    assert code == 2 and "does not resume" in err
    args = build_parser().parse_args(["train", "--dataset", str(folder), "--teacher", str(bert)])
    assert interrupted(args, [], "interrupted (SIGINT)") == (  # it never says --resume
        "interrupted (SIGINT); a run with --teacher does not resume: run the command again")
    data = {"tasks": {"label": {"dataset": str(folder)}}, "distill": {"teacher": str(bert)}}
    with pytest.raises(ConfigError, match="'distill.teacher'"):  # what a CV fold runs
        config = from_dict(data)
        train_and_evaluate(config, {"label": load_raw(config.tasks["label"])}, fold=1,
                           log=lambda line: None, write_folder=False)
    with pytest.raises(ConfigError, match="'distill.teachers'"):
        train(from_dict({**data, "distill": {"teacher": str(bert), "teachers": {"label": "x"}}}))
    with pytest.raises(ConfigError, match="'train.loss'"):
        from_dict({**data, "train": {"loss": "squared_hinge"}})


def test_the_switch_is_its_preset_then_the_set_items():
    items = teacher_overrides("minilm")
    assert items == ["distill.teacher=minilm", *PRESET]
    config = TextCNNClassifier(teacher="minilm", overrides=["teacher.epochs=5"]).to_config()
    assert (config.distill.teacher, config.distill.augment, config.teacher.min_steps,
            config.teacher.epochs) == ("minilm", 8, 250, 5)
