"""How long a run trains and what it keeps: train.select_metric, train.class_weight,
train.min_steps and train.time_budget (--time-budget), and the recorded reason a run stopped."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from sklearn.utils.class_weight import compute_class_weight
from test_cli import run_cli, write_config
from test_schedules import Tiny, record_steps, tiny_data

from conftest import ROOT, read_jsonl, tiny_config, train_full_and_cut
from textcnn.card import STOPPED, model_card
from textcnn.config import from_dict, load_config
from textcnn.errors import ConfigError
from textcnn.metrics import head_loss
from textcnn.modality import load_datasets
from textcnn.runs import check_saved_config, cross_validate, train_and_evaluate
from textcnn.training import CHECKPOINT, Encoded, Trainer, balanced_weights, lr_factor, stopping
from textcnn.training.checkpoint import read_checkpoint


def make_trainer(data=None, checkpoint_dir=None, **train) -> Trainer:
    """A trainer of the tiny linear model: 40 training rows in batches of 10 (4 steps an epoch)."""
    cfg = from_dict({"tasks": {"t": {"dataset": "x"}},
                     "train": {"epochs": 2, "batch_size": 10, "lr": 0.1, "max_norm": 0,
                               "threads": 1, "optimizer": "adam", "device": "cpu", **train}})
    torch.manual_seed(0)
    lines: list[str] = []
    trainer = Trainer(cfg, Tiny(), data or tiny_data(), log=lines.append,
                      checkpoint_dir=checkpoint_dir)
    trainer.lines = lines
    return trainer


def script_validation(trainer: Trainer, scores: list[dict]) -> None:
    """Make the trainer's validation return ``scores[e]`` after epoch ``e + 1``."""
    it = iter(scores)
    trainer.validate = lambda: {"t": {"loss": 0.5, **next(it)}}


# -- train.select_metric -----------------------------------------------------------------------

# accuracy and macro-F1 disagree: accuracy is best at epoch 1, macro-F1 at epoch 2
DISAGREE = [{"accuracy": 0.80, "macro_f1": 0.50}, {"accuracy": 0.70, "macro_f1": 0.65},
            {"accuracy": 0.75, "macro_f1": 0.55}]


@pytest.mark.parametrize("metric, best", [("accuracy", 1), ("macro_f1", 2)])
def test_the_select_metric_picks_the_best_epoch_and_its_weights(metric, best):
    trainer = make_trainer(epochs=3, patience=5, select_metric=metric)
    script_validation(trainer, DISAGREE)
    _, weights = record_steps(trainer)
    history = trainer.fit()
    assert trainer.best_epoch == best and trainer.stopped == "epochs"
    # the weights kept are those at the end of the best epoch (4 steps an epoch)
    kept = weights[4 * best - 1]
    assert all(torch.equal(v, kept[k]) for k, v in trainer.model.state_dict().items())
    assert [row[f"validation_{metric}"] for row in history] == [s[metric] for s in DISAGREE]
    assert [row["validation_accuracy"] for row in history] == [0.80, 0.70, 0.75]
    shown = "acc" if metric == "accuracy" else metric
    assert f"val {shown} {DISAGREE[best - 1][metric]:.4f}  *" in trainer.lines[best]
    assert "best epoch by validation " + metric in trainer.lines[0]


def test_loss_selects_the_lowest_validation_loss_and_patience_waits_on_it():
    trainer = make_trainer(epochs=6, patience=2, select_metric="loss")
    losses = [0.7, 0.4, 0.5, 0.45, 0.3, 0.2]
    it = iter(losses)
    trainer.validate = lambda: {"t": {"accuracy": 0.5, "macro_f1": 0.5, "loss": next(it)}}
    history = trainer.fit()
    # best at epoch 2 (0.4); epochs 3 and 4 are no better: patience 2 stops after epoch 4
    assert (trainer.best_epoch, trainer.epoch, trainer.stopped) == (2, 4, "patience")
    assert [row["validation_loss"] for row in history] == losses[:4]
    assert trainer.lines[-1] == "stopped: patience (2 epochs without a better validation loss)"


def test_selection_averages_tasks_and_reads_micro_f1_of_either_head():
    single = {"accuracy": 0.9, "macro_f1": 0.6, "loss": 0.3}
    multi = {"accuracy": 0.2, "subset_accuracy": 0.2, "micro_f1": 0.7, "macro_f1": 0.4,
             "loss": 0.5}
    assert stopping.selection_score({"a": single, "b": multi}, "micro_f1") == pytest.approx(0.8)
    assert stopping.selection_score({"a": single, "b": multi}, "macro_f1") == pytest.approx(0.5)
    assert stopping.selection_score({"a": single, "b": multi}, "loss") == pytest.approx(-0.4)


@pytest.mark.parametrize("train, message", [
    ({"select_metric": "f1"}, r"'train\.select_metric' must be one of \('accuracy', "
                              r"'macro_f1', 'micro_f1', 'loss'\), got 'f1'"),
    ({"select_metric": "loss", "loss": "squared_hinge"}, "'loss' is the validation cross-entropy"),
    ({"class_weight": "auto"}, r"'train\.class_weight' must be one of \('none', 'balanced'\)"),
    ({"min_steps": -1}, r"'train\.min_steps' must be >= 0"),
    ({"time_budget": -5}, r"'train\.time_budget' must be >= 0"),
])
def test_bad_values_name_the_key(train, message):
    with pytest.raises(ConfigError, match=message):
        from_dict({"tasks": {"t": {"dataset": "x"}}, "train": train})


# -- train.class_weight ------------------------------------------------------------------------


def test_balanced_weights_are_scikit_learns():
    labels = np.array([0] * 30 + [1] * 6 + [3] * 4)  # skewed, class 2 absent
    ours = balanced_weights(labels, 4)
    expected = compute_class_weight("balanced", classes=np.array([0, 1, 3]), y=labels)
    np.testing.assert_allclose([ours[0], ours[1], ours[3]], expected)
    assert ours == pytest.approx([40 / (3 * 30), 40 / (3 * 6), 1.0, 40 / (3 * 4)])


def skewed_data() -> dict:
    """10 training rows (one batch), 8 of class 0 and 2 of class 1."""
    ids = np.array([[1, 1, 1]] * 8 + [[2, 2, 2]] * 2, dtype=np.int32)
    labels = np.array([0] * 8 + [1] * 2, dtype=np.int64)
    split = Encoded(ids, np.full(10, 3, dtype=np.int64), labels)
    return {"t": {"train": split, "validation": split}}


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_hinge"])
def test_balanced_weights_reach_the_training_loss(loss):
    data = skewed_data()
    trainer = make_trainer(data, class_weight="balanced", loss=loss)
    split = data["t"]["train"]
    with torch.no_grad():
        logits = trainer.model(*split.batch(np.arange(10)))["t"]
    y = torch.from_numpy(split.labels)
    per_row = head_loss(logits, y, reduction="none", kind="cross_entropy") if loss == \
        "cross_entropy" else torch.stack([head_loss(logits[i:i + 1], y[i:i + 1], kind=loss)
                                          for i in range(10)])
    weights = torch.tensor([10 / (2 * 8)] * 8 + [10 / (2 * 2)] * 2)  # 0.625 and 2.5
    expected = (per_row * weights).sum().item() / 10  # a batch's summed loss over its rows
    assert trainer.train_epoch() == pytest.approx(expected, rel=1e-6)
    unweighted = make_trainer(data, loss=loss).train_epoch()
    assert unweighted == pytest.approx(per_row.mean().item(), rel=1e-6) != expected
    assert trainer.class_weights("t", 2).tolist() == [0.625, 2.5]


@pytest.mark.parametrize("task, why", [
    ({"multi_label": True}, "a multi-label head's labels are not exclusive classes"),
    ({"stream": True}, "the labels of a streamed split are not counted before training"),
])
def test_class_weight_is_refused_where_classes_are_not_counted(task, why):
    with pytest.raises(ConfigError, match=rf"'train\.class_weight'.*task 't': {why}"):
        from_dict({"tasks": {"t": {"dataset": "x", **task}},
                   "train": {"class_weight": "balanced"}})


def test_class_weight_is_refused_for_a_distilled_head(tmp_path):
    with pytest.raises(ConfigError, match="teacher's soft targets"):
        from_dict({"tasks": {"t": {"dataset": "x"}}, "train": {"class_weight": "balanced"},
                   "distill": {"teachers": {"t": str(tmp_path)}}})


# -- train.min_steps ---------------------------------------------------------------------------


def test_min_steps_raises_the_epoch_cap_and_the_schedule_spans_it():
    trainer = make_trainer(epochs=2, min_steps=18, patience=50, schedule="cosine")
    assert (trainer.stop_rule.epochs, trainer.total_steps) == (5, 20)  # ceil(18 / 4) epochs
    lrs, _ = record_steps(trainer)
    trainer.fit()
    assert (trainer.epoch, trainer.step, trainer.stopped) == (5, 20, "epochs")
    np.testing.assert_allclose(lrs, [0.1 * lr_factor(s, 20, "cosine") for s in range(20)])
    assert "up to 5 epochs of 4 steps (for train.min_steps 18)" in trainer.lines[0]


def test_min_steps_leaves_a_large_set_alone():
    trainer = make_trainer(epochs=3, min_steps=8)  # 12 steps in 3 epochs already
    assert (trainer.stop_rule.epochs, trainer.total_steps) == (3, 12)


def test_patience_waits_until_min_steps_are_done():
    falling = [{"accuracy": a, "macro_f1": a} for a in (0.9, 0.8, 0.7, 0.6, 0.5)]
    plain = make_trainer(epochs=5, patience=1)
    script_validation(plain, falling)
    plain.fit()
    assert (plain.epoch, plain.stopped) == (2, "patience")
    waiting = make_trainer(epochs=5, patience=1, min_steps=12)
    script_validation(waiting, falling)
    waiting.fit()
    assert (waiting.epoch, waiting.step, waiting.best_epoch, waiting.stopped) == \
        (3, 12, 1, "patience")


# -- train.time_budget -------------------------------------------------------------------------


def test_the_time_budget_stops_after_the_epoch_that_passes_it(monkeypatch):
    trainer = make_trainer(epochs=5, patience=5, time_budget=10)
    script_validation(trainer, [{"accuracy": a, "macro_f1": a} for a in (0.6, 0.8, 0.7, 0.9)])
    seconds = iter([4.0, 9.0, 12.0])  # the clock after epochs 1, 2 and 3
    monkeypatch.setattr(stopping, "clock", lambda: trainer.started + next(seconds))
    history = trainer.fit()
    assert (len(history), trainer.best_epoch, trainer.stopped) == (3, 2, "time budget")
    assert trainer.lines[-1] == "stopped: time budget (past train.time_budget, 10 s)"
    assert "time budget 10 s" in trainer.lines[0]


def test_the_reason_is_checkpointed_and_a_finished_run_resumes_to_nothing(tmp_path):
    trainer = make_trainer(epochs=3, patience=1, checkpoint_dir=tmp_path)
    script_validation(trainer, [{"accuracy": a, "macro_f1": a} for a in (0.9, 0.8, 0.7)])
    trainer.fit()
    assert trainer.stopped == "patience" and trainer.epoch == 2
    _, meta = read_checkpoint(tmp_path / CHECKPOINT, tensors=False)
    assert meta["stopped"] == "patience"
    again = make_trainer(epochs=3, patience=1)
    again.validate = lambda: pytest.fail("a finished run trained on")
    again.load_checkpoint(tmp_path / CHECKPOINT)
    assert again.fit() == trainer.history and again.stopped == "patience"


def test_cli_time_budget_stops_the_run_and_says_so(small_slice, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(stopping, "clock", lambda: float("inf"))  # every budget is spent
    config = write_config(tmp_path, tiny_config(small_slice, epochs=4, patience=4,
                                                select_metric="macro_f1",
                                                class_weight="balanced"))
    code, _, err = run_cli(capsys, "train", config, "--output", tmp_path / "m",
                           "--time-budget", "30")
    assert code == 0, err
    metrics = json.loads((tmp_path / "m" / "metrics.json").read_text())
    assert (metrics["epochs"], metrics["stopped"], metrics["select_metric"]) == \
        (1, "time budget", "macro_f1")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())["train"]
    assert (saved["time_budget"], saved["class_weight"]) == (30.0, "balanced")
    assert "stopped: time budget (past train.time_budget, 30 s)" in err
    card = model_card(tmp_path / "m")
    assert "The best epoch (by validation `macro_f1`, `train.select_metric`)" in card
    assert "The run stopped at its time budget" in card and 'class_weight="balanced"' in card
    code, _, err = run_cli(capsys, "train", config, "--time-budget", "-1")
    assert code == 2 and err == "error: --time-budget must be >= 0 seconds, got -1.0\n"


# -- every run, and resume ---------------------------------------------------------------------


def test_every_run_records_what_stopped_it(trained):
    _, folder = trained
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["select_metric"] == "accuracy"
    history = read_jsonl(folder / "history.jsonl")
    expected = "epochs" if metrics["epochs"] == 4 else "patience"  # tiny_config: 4, patience 3
    assert metrics["stopped"] == expected
    assert f"The run stopped at its {STOPPED[expected]}." in (folder / "README.md").read_text()
    assert len(history) == metrics["epochs"]


def test_resume_with_the_new_keys_is_exact(small_slice, tmp_path):
    # 600 rows in batches of 50: 12 steps an epoch; min_steps 30 makes the cap 3 epochs
    config = from_dict(tiny_config(small_slice, epochs=2, min_steps=30, patience=5,
                                   select_metric="macro_f1", class_weight="balanced",
                                   schedule="cosine"))
    raws = load_datasets(config)
    full = train_full_and_cut(config, raws, tmp_path)
    with safe_open(str(tmp_path / "cut" / CHECKPOINT), "pt") as fh:
        assert json.loads(fh.metadata()["state"])["stopped"] is None  # cut after epoch 1
    _, resumed = train_and_evaluate(config, raws, tmp_path / "cut", resume=True,
                                    log=lambda line: None)
    assert resumed == full
    for run in ("full", "cut"):
        saved = json.loads((tmp_path / run / "metrics.json").read_text())
        assert (saved["epochs"], saved["stopped"]) == (3, "epochs")
    a = read_jsonl(tmp_path / "full" / "history.jsonl")
    b = read_jsonl(tmp_path / "cut" / "history.jsonl")
    strip = [{k: v for k, v in r.items() if not k.endswith("seconds")} for r in a + b]
    assert strip[:3] == strip[3:]
    assert all("validation_macro_f1" in r for r in a)


def test_a_checkpoint_resumes_under_another_time_budget_but_not_another_length():
    config = from_dict(tiny_config("x", min_steps=100, select_metric="macro_f1"))
    saved = config.to_dict()
    check_saved_config(from_dict(tiny_config("x", min_steps=100, select_metric="macro_f1",
                                             time_budget=60)), saved)
    for key in ("select_metric", "class_weight", "min_steps", "time_budget"):
        del saved["train"][key]  # a checkpoint from before these keys: their defaults
    check_saved_config(from_dict(tiny_config("x")), saved)
    with pytest.raises(ConfigError, match="config differs"):
        check_saved_config(config, saved)


def test_cv_records_what_stopped_each_fold():
    config = load_config(ROOT / "configs" / "images" / "digits.yaml",
                         ["train.epochs=1", "model.blocks=[8]", "train.threads=1"])
    result = cross_validate(config, folds=2, log=lambda line: None)["digit"]
    assert result["stopped"] == ["epochs", "epochs"] and len(result["seconds"]) == 2
