"""Metrics and the plots written into a model folder.

Metric values are fractions (0.8214), never percentages; they are computed from confusion counts
with numpy and equal scikit-learn's (``tests/test_metrics.py`` compares them), without the
seconds scikit-learn takes to import. matplotlib is imported when first used, so
``import textcnn`` stays fast (tests/test_first_use.py).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def head_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
              reduction: str = "mean", kind: str = "cross_entropy",
              class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """A head's loss: cross-entropy against label ids ``(n,)``, binary cross-entropy of one
    sigmoid per label against multi-hot rows ``(n, labels)`` (a multi-label head; a row's loss
    is the mean over its labels).

    ``label_smoothing`` moves the targets toward uniform (for multi-hot rows: toward 0.5);
    ``reduction`` is ``mean`` (over rows) or ``sum`` (over rows). ``kind="squared_hinge"``
    replaces either loss with one-vs-rest squared hinge, ``sum_k max(0, 1 - s_k * logit_k)^2``
    with ``s_k = +1`` for the row's label(s) and ``-1`` otherwise (LinearSVC's loss): a logit
    stops moving once it is on the right side of its margin, where cross-entropy keeps growing
    the weights of a separable training set (``label_smoothing`` is not used).

    ``class_weight`` ``(classes,)`` (label ids only) weighs each row's loss by its label's
    weight: ``sum`` adds the weighted losses, ``mean`` divides them by the rows' summed weight
    (torch's ``cross_entropy(weight=...)``, whose label smoothing weighs each class's share by
    that class's weight).

    Examples
    --------
    >>> logits = torch.tensor([[0.0, 0.0]])
    >>> round(head_loss(logits, torch.tensor([1])).item(), 4)  # log 2
    0.6931
    >>> round(head_loss(logits, torch.tensor([[1.0, 0.0]])).item(), 4)  # log 2 per label
    0.6931
    >>> head_loss(torch.tensor([[2.0, -0.5]]), torch.tensor([0]), kind="squared_hinge").item()
    0.25
    """
    if class_weight is not None and targets.dim() == 2:
        raise ValueError("class weights are for label ids, not multi-hot rows")
    if kind == "squared_hinge":
        signs = targets.float() if targets.dim() == 2 else torch.nn.functional.one_hot(
            targets, logits.shape[1]).float()
        per_row = (1 - (2 * signs - 1) * logits).clamp(min=0).pow(2).sum(dim=1)
        if class_weight is not None:
            rows = class_weight[targets]  # (n,)
            return (per_row * rows).sum() / (1.0 if reduction == "sum" else rows.sum())
        return per_row.sum() if reduction == "sum" else per_row.mean()
    if targets.dim() == 2:
        targets = targets.float()
        if label_smoothing:
            targets = targets * (1 - label_smoothing) + label_smoothing / 2
        per_row = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, targets, reduction="none").mean(dim=1)  # (n,)
        return per_row.sum() if reduction == "sum" else per_row.mean()
    return torch.nn.functional.cross_entropy(logits, targets, weight=class_weight,
                                             label_smoothing=label_smoothing, reduction=reduction)


def _mean_loss(labels: np.ndarray, logits: np.ndarray) -> float:
    if not len(labels):
        return float("nan")
    targets = torch.as_tensor(labels, dtype=torch.long if labels.ndim == 1 else torch.float32)
    return head_loss(torch.as_tensor(logits, dtype=torch.float32), targets).item()


def classification_metrics(labels: np.ndarray, logits: np.ndarray,
                           thresholds: np.ndarray | None = None) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy of ``logits`` (n, classes) against ``labels``.

    ``labels`` of shape ``(n, labels)`` (multi-hot) are a multi-label head's: then see
    :func:`multilabel_metrics` (``thresholds`` is used only there).

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
    >>> m["accuracy"], m["macro_f1"]
    (1.0, 1.0)
    """
    labels = np.asarray(labels)
    if labels.ndim == 2:
        return multilabel_metrics(labels, logits, thresholds)
    logits = np.asarray(logits)
    running = RunningMetrics(max(logits.shape[1], int(labels.max(initial=-1)) + 1))
    running.add(labels, logits)
    return running.result()


def _f1(hits: np.ndarray, true: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """F1 per entry from counts: ``2 hits / (true + predicted)``, 0 where both are 0."""
    total = (true + predicted).astype(float)
    return np.divide(2 * hits, total, out=np.zeros_like(total), where=total > 0)


def multilabel_scores(labels: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Subset accuracy (every label of a row right; also under ``accuracy``), micro-F1 (over
    every label decision) and macro-F1 (the mean of the per-label F1s; a label never true and
    never predicted counts 0) of multi-hot ``predicted`` against ``labels``.

    Examples
    --------
    >>> multilabel_scores(np.array([[1, 0], [1, 1]]), np.array([[1, 0], [1, 0]]))
    {'accuracy': 0.5, 'subset_accuracy': 0.5, 'micro_f1': 0.8, 'macro_f1': 0.5}
    """
    labels, predicted = np.asarray(labels) > 0.5, np.asarray(predicted) > 0.5
    subset = round(float((labels == predicted).all(axis=1).mean()), 6) if len(labels) else 0.0
    hits, true, pred = (labels & predicted).sum(axis=0), labels.sum(axis=0), predicted.sum(axis=0)
    return {
        "accuracy": subset,
        "subset_accuracy": subset,
        "micro_f1": round(float(_f1(hits.sum(), true.sum(), pred.sum())), 6),
        "macro_f1": round(float(_f1(hits, true, pred).mean()), 6) if labels.shape[1] else 0.0,
    }


def multilabel_metrics(labels: np.ndarray, logits: np.ndarray,
                       thresholds: np.ndarray | None = None) -> dict[str, float]:
    """:func:`multilabel_scores` of a multi-label head, plus its mean binary cross-entropy.

    A label is predicted when its sigmoid is at or over its threshold (``thresholds``, one per
    label; 0.5 when None).

    Examples
    --------
    >>> m = multilabel_metrics(np.array([[1, 0], [1, 1]]), np.array([[3.0, -1.0], [2.0, 0.5]]))
    >>> m["micro_f1"], m["subset_accuracy"]
    (1.0, 1.0)
    """
    from .classifier import sigmoid  # the classifier's own (it imports this module)

    labels = np.asarray(labels)
    probabilities = sigmoid(np.asarray(logits, dtype=np.float64))
    cut = 0.5 if thresholds is None else np.asarray(thresholds)
    return {**multilabel_scores(labels, probabilities >= cut),
            "loss": round(float(_mean_loss(labels, logits)), 6)}


class RunningMetrics:
    """:func:`classification_metrics` accumulated over chunks (a confusion matrix and a loss
    sum), so a split is scored without holding it.

    Examples
    --------
    >>> running = RunningMetrics(2)
    >>> running.add(np.array([0]), np.array([[2.0, 0.0]]))
    >>> running.add(np.array([1]), np.array([[2.0, 0.0]]))
    >>> running.result() == classification_metrics(np.array([0, 1]),
    ...                                            np.array([[2.0, 0.0], [2.0, 0.0]]))
    True
    """

    def __init__(self, classes: int):
        self.confusion = np.zeros((classes, classes), dtype=np.int64)  # (true, predicted)
        self.loss_sum = 0.0

    def add(self, labels: np.ndarray, logits: np.ndarray) -> None:
        """Count a chunk: ``labels (n,)`` ids and ``logits (n, classes)``."""
        labels = np.asarray(labels, dtype=np.int64)
        np.add.at(self.confusion, (labels, logits.argmax(axis=1)), 1)
        if len(labels):
            self.loss_sum += torch.nn.functional.cross_entropy(
                torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels),
                reduction="sum").double().item()

    def result(self) -> dict[str, float]:
        """Accuracy, macro-F1 (over the classes present in labels or predictions, as
        scikit-learn's) and mean cross-entropy."""
        n = int(self.confusion.sum())
        hits = np.diag(self.confusion).astype(float)
        true, pred = self.confusion.sum(axis=1), self.confusion.sum(axis=0)
        present = (true + pred) > 0
        return {
            "accuracy": round(float(hits.sum() / n), 6) if n else 0.0,
            "macro_f1": round(float(_f1(hits, true, pred)[present].mean()), 6)
            if present.any() else 0.0,
            "loss": round(self.loss_sum / n, 6) if n else float("nan"),
        }


def summarize_folds(folds: list[dict[str, float]]) -> dict:
    """``{"folds": [...], "mean": {...}, "std": {...}}`` over per-fold metric dicts."""
    keys = [k for k in folds[0] if k != "loss"]
    return {
        "folds": [{k: f[k] for k in keys} for f in folds],
        "mean": {k: round(float(np.mean([f[k] for f in folds])), 6) for k in keys},
        "std": {k: round(float(np.std([f[k] for f in folds])), 6) for k in keys},
    }


def pyplot():
    """matplotlib's ``pyplot`` on the Agg backend (no display), imported on first use; None
    when matplotlib (the ``plots`` extra) is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_curves(history: list[dict], path: str | Path) -> bool:
    """Loss and validation accuracy per epoch; False when matplotlib is not installed."""
    plt = pyplot()
    if plt is None or not history:
        return False
    epochs = [row["epoch"] for row in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax_loss.plot(epochs, [row["train_loss"] for row in history], label="train")
    heads = list(history[0]["validation"])
    for head in heads:
        ax_loss.plot(epochs, [row["validation"][head]["loss"] for row in history],
                     label=f"validation ({head})")
        ax_acc.plot(epochs, [row["validation"][head]["accuracy"] for row in history], label=head)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    ax_loss.legend()
    ax_acc.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_confusion(labels: np.ndarray, pred: np.ndarray, names: list[str], path: str | Path,
                   title: str = "test confusion matrix") -> bool:
    plt = pyplot()
    if plt is None:
        return False
    k = len(names)
    cm = np.bincount(np.asarray(labels) * k + np.asarray(pred), minlength=k * k).reshape(k, k)
    size = max(4.0, 0.45 * len(names) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(len(names)), names, rotation=90 if len(names) > 6 else 0)
    ax.set_yticks(range(len(names)), names)
    if len(names) <= 12:
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
