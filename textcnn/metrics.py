"""Metrics (scikit-learn) and the plots written into a model folder.

Metric values are fractions (0.8214), never percentages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch


def classification_metrics(labels: np.ndarray, logits: np.ndarray) -> dict[str, float]:
    """Accuracy, macro-F1 and mean cross-entropy of ``logits`` (n, classes) against ``labels``.

    Examples
    --------
    >>> m = classification_metrics(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))
    >>> m["accuracy"], m["macro_f1"]
    (1.0, 1.0)
    """
    from sklearn.metrics import accuracy_score, f1_score  # here: loading a model needs no sklearn

    labels = np.asarray(labels)
    pred = logits.argmax(axis=1)
    loss = torch.nn.functional.cross_entropy(
        torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.long)
    ).item() if len(labels) else float("nan")
    return {
        "accuracy": round(float(accuracy_score(labels, pred)), 6),
        "macro_f1": round(float(f1_score(labels, pred, average="macro", zero_division=0)), 6),
        "loss": round(float(loss), 6),
    }


def summarize_folds(folds: list[dict[str, float]]) -> dict:
    """``{"folds": [...], "mean": {...}, "std": {...}}`` over per-fold metric dicts."""
    keys = [k for k in folds[0] if k != "loss"]
    return {
        "folds": [{k: f[k] for k in keys} for f in folds],
        "mean": {k: round(float(np.mean([f[k] for f in folds])), 6) for k in keys},
        "std": {k: round(float(np.std([f[k] for f in folds])), 6) for k in keys},
    }


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    return plt


def plot_curves(history: list[dict], path: str | Path) -> bool:
    """Loss and validation accuracy per epoch; False when matplotlib is not installed."""
    plt = _pyplot()
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
    plt = _pyplot()
    if plt is None:
        return False
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(labels, pred, labels=list(range(len(names))))
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
