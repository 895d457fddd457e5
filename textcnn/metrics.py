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


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Element-wise logistic function: a multi-label head's probability per label.

    Examples
    --------
    >>> sigmoid(np.array([[0.0, 2.0]])).round(3).tolist()
    [[0.5, 0.881]]
    """
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # no overflow for large |logits|


def cross_entropy(logits: torch.Tensor, ids: torch.Tensor, label_smoothing: float = 0.0,
                  reduction: str = "mean", class_weight: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """Cross-entropy against label ids ``(n,)``; ``class_weight`` ``(classes,)`` weighs each
    row by its label's weight (``mean`` divides by the rows' summed weight, as torch's
    ``cross_entropy(weight=...)``, whose label smoothing weighs each class's share by it)."""
    return torch.nn.functional.cross_entropy(logits, ids, weight=class_weight,
                                             label_smoothing=label_smoothing, reduction=reduction)


def binary_cross_entropy(logits: torch.Tensor, hot: torch.Tensor, label_smoothing: float = 0.0,
                         reduction: str = "mean") -> torch.Tensor:
    """Binary cross-entropy of one sigmoid per label against multi-hot rows ``(n, labels)``;
    a row's loss is the mean over its labels, label smoothing moves targets toward 0.5."""
    targets = hot.float()
    if label_smoothing:
        targets = targets * (1 - label_smoothing) + label_smoothing / 2
    per_row = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, targets, reduction="none").mean(dim=1)  # (n,)
    return per_row.sum() if reduction == "sum" else per_row.mean()


def squared_hinge(logits: torch.Tensor, signs: torch.Tensor, reduction: str = "mean",
                  row_weight: torch.Tensor | None = None) -> torch.Tensor:
    """One-vs-rest squared hinge, ``sum_k max(0, 1 - s_k * logit_k)^2`` with ``s_k = +1``
    where ``signs`` ``(n, classes)`` is 1 and ``-1`` where it is 0 (LinearSVC's loss): a logit
    stops moving once it is on the right side of its margin. ``row_weight`` ``(n,)`` weighs
    rows (``mean`` then divides by their sum)."""
    per_row = (1 - (2 * signs - 1) * logits).clamp(min=0).pow(2).sum(dim=1)
    if row_weight is not None:
        return (per_row * row_weight).sum() / (1.0 if reduction == "sum" else row_weight.sum())
    return per_row.sum() if reduction == "sum" else per_row.mean()


def head_loss(logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0,
              reduction: str = "mean", kind: str = "cross_entropy",
              class_weight: torch.Tensor | None = None) -> torch.Tensor:
    """A loss read off its targets, for callers that hold targets rather than a head
    (training asks its :class:`textcnn.heads.Head`): :func:`cross_entropy` against label ids
    ``(n,)``, :func:`binary_cross_entropy` against multi-hot rows ``(n, labels)``, or with
    ``kind="squared_hinge"`` :func:`squared_hinge` against either (``label_smoothing`` is not
    used); ``class_weight`` is for label ids only.

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
    hot = targets.dim() == 2  # multi-hot rows, else label ids
    if class_weight is not None and hot:
        raise ValueError("class weights are for label ids, not multi-hot rows")
    if kind == "squared_hinge":
        signs = targets.float() if hot else torch.nn.functional.one_hot(
            targets, logits.shape[1]).float()
        rows = class_weight[targets] if class_weight is not None else None
        return squared_hinge(logits, signs, reduction, rows)
    if hot:
        return binary_cross_entropy(logits, targets, label_smoothing, reduction)
    return cross_entropy(logits, targets, label_smoothing, reduction, class_weight)


def summed_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The cross-entropy of label ids ``labels`` under ``softmax(logits)``, summed over rows
    (in float64 from float32 logits, as every split's ``loss`` is).

    >>> round(summed_cross_entropy(np.zeros((2, 2)), np.array([0, 1])), 4)  # 2 log 2
    1.3863
    """
    return torch.nn.functional.cross_entropy(
        torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels),
        reduction="sum").double().item()


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy of ``logits`` (n, classes) against label ids
    ``labels`` (n,): a single-label head's (a multi-label head's: :func:`multilabel_metrics`).

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
    >>> m["accuracy"], m["macro_f1"]
    (1.0, 1.0)
    """
    labels, logits = np.asarray(labels), np.asarray(logits)
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
    labels = np.asarray(labels)
    probabilities = sigmoid(np.asarray(logits, dtype=np.float64))
    cut = 0.5 if thresholds is None else np.asarray(thresholds)
    loss = binary_cross_entropy(torch.as_tensor(logits, dtype=torch.float32),
                                torch.as_tensor(labels)).item() if len(labels) else float("nan")
    return {**multilabel_scores(labels, probabilities >= cut), "loss": round(float(loss), 6)}


class RunningMetrics:
    """:func:`classification_metrics` accumulated over chunks (a confusion matrix and a loss
    sum), so a split is scored without holding it.

    ``head`` (a single-label :class:`textcnn.heads.Head`) says how logits become predicted
    label ids (``decode``) and the summed negative log-likelihood (``summed_nll``); without
    one, the argmax and the cross-entropy of the softmax.

    Examples
    --------
    >>> running = RunningMetrics(2)
    >>> running.add(np.array([0]), np.array([[2.0, 0.0]]))
    >>> running.add(np.array([1]), np.array([[2.0, 0.0]]))
    >>> running.result() == classification_metrics(np.array([0, 1]),
    ...                                            np.array([[2.0, 0.0], [2.0, 0.0]]))
    True
    """

    def __init__(self, classes: int, head=None):
        self.confusion = np.zeros((classes, classes), dtype=np.int64)  # (true, predicted)
        self.loss_sum = 0.0
        self.head = head

    def add(self, labels: np.ndarray, logits: np.ndarray) -> None:
        """Count a chunk: ``labels (n,)`` ids and ``logits (n, outputs)``."""
        labels = np.asarray(labels, dtype=np.int64)
        predicted = logits.argmax(axis=1) if self.head is None else self.head.decode(logits)
        np.add.at(self.confusion, (labels, predicted), 1)
        if len(labels):
            self.loss_sum += summed_cross_entropy(logits, labels) if self.head is None \
                else self.head.summed_nll(logits, labels)

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
