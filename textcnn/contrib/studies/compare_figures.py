"""The PNG figures of ``textcnn compare``: learning curves side by side and first-layer filters.

Each function returns False, drawing nothing, when matplotlib is not installed.

Example
-------
>>> plot_curves_side_by_side(sides, Path("curves.png"))  # doctest: +SKIP
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

from ...metrics import pyplot


def plot_curves_side_by_side(sides: dict, path: Path, dpi: int = 100) -> bool:
    """One panel per side: train and validation loss, and validation accuracy, per epoch.

    Parameters
    ----------
    sides : dict
        Side name -> ``history`` (the rows of ``history.jsonl``), ``head``, ``dataset`` and
        ``config``.
    path : Path
        The PNG file to write.
    dpi : int
        Resolution.
    """
    plt = pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(sides), figsize=(4.6 * len(sides), 3.3), squeeze=False)
    for ax, (name, side) in zip(axes[0], sides.items()):
        hist = side["history"]
        epochs = [r["epoch"] for r in hist]
        head = side["head"]
        ax.plot(epochs, [r["train_loss"] for r in hist], "o-", label="train loss")
        ax.plot(epochs, [r["validation"][head]["loss"] for r in hist], "s-",
                label="validation loss")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="epoch", ylabel="cross-entropy",
               title=f"{name}: {side['dataset']} ({side['config'].model.name})")
        acc = ax.twinx()
        acc.plot(epochs, [r["validation"][head]["accuracy"] for r in hist], "^-", color="C2",
                 label="validation accuracy")
        acc.set(ylabel="accuracy", ylim=(0, 1.02))
        lines = ax.get_lines() + acc.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True


def first_conv(model: nn.Module) -> nn.Module:
    """The first 1D or 2D convolution of ``model``."""
    return next(m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))


def plot_image_filters(model: nn.Module, path: Path, n: int = 32, dpi: int = 100) -> bool:
    """The first block's 2D kernels (input channel 0), one tile each, in a single image with a
    colour bar of the weights' scale."""
    plt = pyplot()
    if plt is None:
        return False
    fig = image_filters_figure(plt, first_conv(model).weight.detach()[:n, 0].numpy())
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return True


def image_filters_figure(plt, w: np.ndarray):
    """The figure of :func:`plot_image_filters` for kernels ``w`` (n, kh, kw): a mosaic of
    tiles on a symmetric red-blue scale and its colour bar."""
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    kh, kw = w.shape[1:]
    mosaic = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan)  # NaN: gaps
    for i, kernel in enumerate(w):
        r, c = divmod(i, cols)
        mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = kernel
    lim = float(np.abs(w).max())
    fig, ax = plt.subplots(figsize=(0.75 * cols + 1.3, 0.75 * rows + 0.5))
    image = ax.imshow(mosaic, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.axis("off")
    ax.set_title(f"first-layer {kh}x{kw} kernels (red +, blue -)", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8, label="weight")
    return fig


def plot_text_filters(rows: list[dict], path: Path, dpi: int = 100) -> bool:
    """A table of 1D filters and their top n-grams (the rows of ``top_ngrams``), one n-gram a
    column and each column as wide as its longest n-gram, so no n-gram is cut off."""
    plt = pyplot()
    if plt is None or not rows:
        return False
    k = max(len(r["ngrams"]) for r in rows)
    cells = [[f"#{r['filter']} (→ {r['favours']})"]
             + [g for g, _ in r["ngrams"]] + [""] * (k - len(r["ngrams"])) for r in rows]
    header = [f"1D filter (width {rows[0]['width']})"] + [f"n-gram {i + 1}" for i in range(k)]
    chars = sum(max(len(row[c]) for row in [header, *cells]) for c in range(k + 1))
    fig, ax = plt.subplots(figsize=(max(4.0, 0.075 * chars + 0.6), 0.42 * len(rows) + 0.9))
    ax.axis("off")
    ax.set_title("training n-grams that activate each filter most, strongest first",
                 fontsize=9)
    table = ax.table(cells, colLabels=header, loc="center", cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.auto_set_column_width(list(range(k + 1)))
    table.scale(1, 1.3)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return True
