"""How long a run trains and which epoch it keeps: the selecting score, the epoch cap and the
reason a run stopped.

The trainer validates after every epoch and keeps the weights of the epoch with the best
:func:`selection_score` (``train.select_metric``, averaged over the tasks; the first such epoch
on ties). Its :class:`StopRule` caps the run at :func:`epoch_cap` epochs (``train.epochs``,
raised by ``train.min_steps`` for a small training set) and ends it sooner after
``train.patience`` epochs without a better score (once ``train.min_steps`` steps are done) or
once its clock passes ``train.time_budget``. Every run records which of :data:`STOP_REASONS`
ended it.

Example
-------
>>> val = {"a": {"accuracy": 0.9, "macro_f1": 0.6}, "b": {"accuracy": 0.7, "macro_f1": 0.8}}
>>> selection_score(val, "accuracy"), selection_score(val, "macro_f1")
(0.8, 0.7)
>>> epoch_cap(epochs=2, min_steps=1000, steps_per_epoch=20)  # 1,000 rows in batches of 50
50
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

EPOCHS, PATIENCE, TIME_BUDGET = "epochs", "patience", "time budget"
# what ends a run: its epoch cap, its patience on validation, or train.time_budget
STOP_REASONS = (EPOCHS, PATIENCE, TIME_BUDGET)
# train.select_metric -> the history row / log name of its mean over tasks
SHORT_NAMES = {"accuracy": "acc"}


def clock() -> float:
    """The time ``train.time_budget`` is measured in: ``time.perf_counter()``, as the trainer's
    ``started`` and its history's ``elapsed_seconds``."""
    return time.perf_counter()


def head_score(metrics: dict[str, float], metric: str) -> float:
    """One head's validation ``metric``, higher is better (``loss`` is negated).

    A single-label head has no ``micro_f1``: with one label per row and one predicted, micro-F1
    equals accuracy, which is used.

    >>> head_score({"accuracy": 0.8, "macro_f1": 0.7, "loss": 0.5}, "micro_f1")
    0.8
    >>> head_score({"accuracy": 0.8, "macro_f1": 0.7, "loss": 0.5}, "loss")
    -0.5
    """
    if metric == "loss":
        return -metrics["loss"]
    if metric == "micro_f1" and metric not in metrics:
        return metrics["accuracy"]
    return metrics[metric]


def selection_score(validation: dict[str, dict[str, float]], metric: str) -> float:
    """The mean over tasks of :func:`head_score`: what picks the best epoch and what patience
    waits on."""
    return float(np.mean([head_score(m, metric) for m in validation.values()]))


def shown_score(score: float, metric: str) -> float:
    """The selecting value as reported (a mean loss is shown as a loss, not negated)."""
    return -score if metric == "loss" else score


def reported(metrics: dict[str, float], metric: str) -> str:
    """A split's scores for the log: the selecting metric first, then accuracy.

    >>> reported({"accuracy": 0.8, "macro_f1": 0.7, "loss": 0.5}, "macro_f1")
    'macro_f1 0.7000 acc 0.8000'
    """
    first = "" if metric == "accuracy" else \
        f"{metric} {shown_score(head_score(metrics, metric), metric):.4f} "
    return f"{first}acc {metrics['accuracy']:.4f}"


def epoch_cap(epochs: int, min_steps: int, steps_per_epoch: int) -> int:
    """The most epochs a run takes: ``epochs``, or enough epochs for ``min_steps`` optimizer
    steps when that is more (a small training set has few steps per epoch)."""
    return max(epochs, math.ceil(min_steps / max(steps_per_epoch, 1)))


@dataclass
class StopRule:
    """When a run stops: at its epoch cap, after ``patience`` epochs without a better score
    once ``min_steps`` steps are done, or once :func:`clock` has passed ``budget`` seconds (0:
    no budget) after the run started.

    >>> rule = StopRule(epochs=60, patience=5, min_steps=1000)  # 20 steps an epoch
    >>> rule.limit(epoch=7, best_epoch=2, step=140) is None  # patience waits for min_steps
    True
    >>> rule.limit(epoch=55, best_epoch=50, step=1100), rule.limit(60, 58, 1200)
    ('patience', 'epochs')
    """

    epochs: int  # the cap
    patience: int
    min_steps: int = 0
    budget: float = 0.0

    @classmethod
    def of(cls, train_cfg, steps_per_epoch: int) -> StopRule:
        """The rule of ``train_cfg`` (a :class:`~textcnn.config.TrainConfig`) for a run of
        ``steps_per_epoch`` optimizer steps per epoch."""
        return cls(epoch_cap(train_cfg.epochs, train_cfg.min_steps, steps_per_epoch),
                   train_cfg.patience, train_cfg.min_steps, train_cfg.time_budget)

    def limit(self, epoch: int, best_epoch: int, step: int) -> str | None:
        """:data:`EPOCHS` or :data:`PATIENCE` after ``epoch`` epochs (``step`` optimizer steps,
        the best at ``best_epoch``), else None (train on)."""
        if epoch >= self.epochs:
            return EPOCHS
        if epoch - best_epoch >= self.patience and step >= self.min_steps:
            return PATIENCE
        return None

    def out_of_time(self, started: float) -> bool:
        """Whether :func:`clock` is past :attr:`budget` seconds after ``started``."""
        return bool(self.budget) and clock() - started > self.budget


def plan_line(rule: StopRule, train_cfg, steps_per_epoch: int,
              class_weights: dict[str, list[float]]) -> str:
    """The log line saying how long a run may be and what selects its best epoch.

    >>> from types import SimpleNamespace
    >>> rule = StopRule(epochs=50, patience=5, min_steps=1000, budget=120)
    >>> cfg = SimpleNamespace(epochs=2, min_steps=1000, select_metric="macro_f1", patience=5,
    ...                       time_budget=120.0)
    >>> plan_line(rule, cfg, 20, {"topic": [0.5, 2.0]})  # doctest: +NORMALIZE_WHITESPACE
    'training: up to 50 epochs of 20 steps (for train.min_steps 1000); best epoch by validation
     macro_f1, patience 5; time budget 120 s; topic class weights 0.5 2'
    """
    raised = (f" (for train.min_steps {train_cfg.min_steps})"
              if rule.epochs > train_cfg.epochs else "")
    line = (f"training: up to {rule.epochs} epochs of {steps_per_epoch} steps{raised}; best "
            f"epoch by validation {train_cfg.select_metric}, patience {train_cfg.patience}")
    if rule.budget:
        line += f"; time budget {rule.budget:g} s"
    for task, weights in class_weights.items():
        line += f"; {task} class weights " + " ".join(f"{w:.3g}" for w in weights)
    return line


def describe_stop(reason: str, patience: int, metric: str, budget: float) -> str:
    """The log's ``stopped: ...`` line.

    >>> describe_stop("patience", 3, "macro_f1", 0.0)
    'stopped: patience (3 epochs without a better validation macro_f1)'
    """
    detail = {EPOCHS: "the epoch cap",
              PATIENCE: f"{patience} epochs without a better validation {metric}",
              TIME_BUDGET: f"past train.time_budget, {budget:g} s"}.get(reason, reason)
    return f"stopped: {reason} ({detail})"


def balanced_weights(labels, classes: int) -> list[float]:
    """scikit-learn's ``class_weight="balanced"``: ``n / (k * count_c)`` for each of the ``k``
    classes present in ``labels`` (label ids), 1.0 for a class absent from them (no row of it
    is trained on, so its weight never counts).

    >>> balanced_weights([0, 0, 0, 1], 3)  # 4 rows, 2 classes present
    [0.6666666666666666, 2.0, 1.0]
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=classes)  # (classes,)
    n, present = counts.sum(), np.count_nonzero(counts)
    return [float(n / (present * c)) if c else 1.0 for c in counts.tolist()]
