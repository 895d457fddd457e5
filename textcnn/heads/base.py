"""The head protocol and the heads every run may need: :class:`Head`, the registry
(:data:`HEADS`, :func:`register`), the softmax, squared-hinge and multi-label heads, and which
head a task gets (:func:`head_for`). The package (:mod:`textcnn.heads`) re-exports them and
loads the heads that register themselves from modules of their own (:mod:`.ordinal`), which
build on this module alone."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch

from ..calibration import fit_temperature, fold_temperature
from ..metrics import (
    RunningMetrics,
    binary_cross_entropy,
    cross_entropy,
    multilabel_metrics,
    sigmoid,
    squared_hinge,
    summed_cross_entropy,
)
from ..multilabel import DEFAULT_THRESHOLD, tune_thresholds

__all__ = ["HEADS", "Head", "head_for", "head_name", "head_outputs", "register", "sigmoid",
           "softmax"]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``logits`` (n, classes), computed stably.

    Examples
    --------
    >>> softmax(np.array([[0.0, 0.0], [2.0, 0.0]])).round(3).tolist()
    [[0.5, 0.5], [0.881, 0.119]]
    """
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class Head:
    """What one task's logits mean. Subclasses override what differs; ``__init__`` only
    stores the training loss that ``train.loss`` names (a head may ignore it).

    Class attributes: ``name`` (its ``tasks.<name>.head`` value), ``multi_label`` (its rows
    hold label sets, read as multi-hot rows, and it answers every label over its threshold),
    ``fits`` (it fits something on the validation split after training), ``minimises_nll``
    (its training loss is the validation ``loss`` it reports, so ``train.select_metric: loss``
    suits it), ``folder_keys`` (the ``config.json`` entries, each ``{head: value}``, it keeps
    its fitted state in).
    """

    name: ClassVar[str] = ""
    multi_label: ClassVar[bool] = False
    fits: ClassVar[bool] = False
    minimises_nll: ClassVar[bool] = True
    folder_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self, loss: str = "cross_entropy"):
        self.loss_kind = loss

    # -- the network's side ----------------------------------------------------------------
    def outputs(self, labels: int) -> int:
        """Logits the network gives this head for ``labels`` labels."""
        return labels

    def labels(self, outputs: int) -> int:
        """Labels of a head with ``outputs`` logits (the inverse of :meth:`outputs`)."""
        return outputs

    def loss(self, logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
             reduction: str = "mean", class_weight: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss of a batch: ``reduction`` ``mean`` or ``sum`` over rows."""
        raise NotImplementedError

    # -- predictions -----------------------------------------------------------------------
    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """``(n, labels)`` probabilities of ``(n, outputs)`` logits."""
        return softmax(logits)

    def ranked(self, probabilities: np.ndarray, k: int) -> list[np.ndarray]:
        """Per row, the label ids a prediction answers, best first: the ``k`` most probable."""
        order = np.argsort(-probabilities, axis=1, kind="stable")
        return list(order[:, :min(k, probabilities.shape[1])])

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """The predicted label id of each row (single-label heads)."""
        raise NotImplementedError(f"a {self.name} head answers label sets, not one label")

    def metrics(self, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        """``metrics.json``'s entry of one split: labels against ``(n, outputs)`` logits."""
        raise NotImplementedError

    def running(self, labels: int) -> Any:
        """An accumulator of :meth:`metrics` over chunks (``add(labels, logits)``,
        ``result()``), or None when this head is scored only in one piece."""
        return None

    # -- after training, and the model folder ----------------------------------------------
    def fit(self, model: torch.nn.Module, head: str, logits: np.ndarray,
            labels: np.ndarray) -> tuple[str, str] | None:
        """Fit on the validation split's ``logits`` and ``labels`` (when :attr:`fits`); returns
        a note for the run's log, ``(what, "head value")``, or None."""
        return None

    def folder_state(self, names: list[str]) -> dict[str, Any]:
        """``{folder key: value}`` of this head for ``config.json`` (see :attr:`folder_keys`)."""
        return {}

    def load_state(self, state: dict[str, Any], names: list[str]) -> None:
        """Take back what :meth:`folder_state` wrote (the keys present for this head)."""


class SingleLabel(Head):
    """One label per row, predicted as its most probable label; scored by accuracy, macro-F1
    and the mean cross-entropy of its probabilities."""

    def decode(self, logits: np.ndarray) -> np.ndarray:
        """The predicted label id of each row."""
        return logits.argmax(axis=1)

    def summed_nll(self, logits: np.ndarray, labels: np.ndarray) -> float:
        """The summed negative log-likelihood of ``labels`` (the metrics' ``loss`` x rows)."""
        return summed_cross_entropy(logits, labels)

    def running(self, labels: int) -> RunningMetrics:
        return RunningMetrics(labels, self)

    def metrics(self, labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
        labels, logits = np.asarray(labels), np.asarray(logits)
        running = self.running(max(self.labels(logits.shape[1]), int(labels.max(initial=-1)) + 1))
        running.add(labels, logits)
        return running.result()


HEADS: dict[str, type[Head]] = {}


def register(cls: type[Head]) -> type[Head]:
    """Add a head class to :data:`HEADS` under its ``name`` (a class decorator)."""
    HEADS[cls.name] = cls
    return cls


@register
class SoftmaxHead(SingleLabel):
    """One label per row: cross-entropy and the softmax over labels (Kim's head)."""

    name = "softmax"

    def loss(self, logits, targets, label_smoothing=0.0, reduction="mean", class_weight=None):
        return cross_entropy(logits, targets, label_smoothing, reduction, class_weight)


@register
class SquaredHingeHead(SingleLabel):
    """One label per row trained on the one-vs-rest squared hinge; a temperature fitted on
    validation and folded into the weights turns its margins into probabilities."""

    name = "squared_hinge"
    fits = True
    minimises_nll = False  # margins; their cross-entropy is what the temperature fixes

    def loss(self, logits, targets, label_smoothing=0.0, reduction="mean", class_weight=None):
        signs = torch.nn.functional.one_hot(targets, logits.shape[1]).float()
        rows = class_weight[targets] if class_weight is not None else None  # (n,)
        return squared_hinge(logits, signs, reduction, rows)

    def fit(self, model, head, logits, labels):
        temperature = fit_temperature(logits, labels)
        fold_temperature(model, head, temperature)
        return "probabilities: temperature", f"{head} {temperature:.3g}"


@register
class MultiLabelHead(Head):
    """A set of labels per row: a sigmoid per label, every label at or over its threshold
    (tuned on validation, kept in ``config.json``'s ``thresholds``)."""

    name = "multi_label"
    multi_label = True
    fits = True
    folder_keys = ("thresholds",)

    def __init__(self, loss: str = "cross_entropy"):
        super().__init__(loss)
        self.thresholds: np.ndarray | None = None  # one per label; None: DEFAULT_THRESHOLD

    def threshold(self, labels: int) -> np.ndarray:
        """The threshold of each of ``labels`` labels, in label order."""
        return self.thresholds if self.thresholds is not None else \
            np.full(labels, DEFAULT_THRESHOLD)

    def loss(self, logits, targets, label_smoothing=0.0, reduction="mean", class_weight=None):
        if class_weight is not None:
            raise ValueError("class weights are for label ids, not multi-hot rows")
        if self.loss_kind == "squared_hinge":
            return squared_hinge(logits, targets.float(), reduction)
        return binary_cross_entropy(logits, targets, label_smoothing, reduction)

    def probabilities(self, logits):
        return sigmoid(logits)

    def ranked(self, probabilities, k):
        keep = probabilities >= self.threshold(probabilities.shape[1])
        order = np.argsort(-probabilities, axis=1, kind="stable")
        return [ranks[keep[row, ranks]] for row, ranks in enumerate(order)]

    def metrics(self, labels, logits):
        return multilabel_metrics(labels, logits, self.threshold(np.shape(logits)[1]))

    def fit(self, model, head, logits, labels):
        self.thresholds = tune_thresholds(labels, sigmoid(logits))
        return None

    def folder_state(self, names):
        return {"thresholds": dict(zip(names, self.threshold(len(names)).tolist()))}

    def load_state(self, state, names):
        if "thresholds" in state:
            self.thresholds = np.array([state["thresholds"][n] for n in names])


def head_name(task: Any, loss: str = "cross_entropy") -> str:
    """The head of a task (a ``TaskConfig``, or None for a head with no task) under
    ``train.loss`` ``loss``: its ``head`` when set, else the one its settings imply.

    >>> from textcnn.config import TaskConfig
    >>> head_name(TaskConfig(multi_label=True)), head_name(None, "squared_hinge")
    ('multi_label', 'squared_hinge')
    """
    if task is not None and task.head:
        return task.head
    if task is not None and task.multi_label:
        return "multi_label"
    return "squared_hinge" if loss == "squared_hinge" else "softmax"


def head_for(config: Any, task: str) -> Head:
    """A new :class:`Head` for ``task`` of ``config`` (a head with no task of its own is a
    ``softmax`` or ``squared_hinge`` one, as ``train.loss`` says)."""
    return HEADS[head_name(config.tasks.get(task), config.train.loss)](config.train.loss)


def head_outputs(config: Any, heads: dict[str, list[str]]) -> dict[str, int]:
    """``{head: logits}`` the network needs for ``heads`` (``{head: label names}``)."""
    return {h: head_for(config, h).outputs(len(names)) for h, names in heads.items()}

