"""``report.md`` of ``textcnn compare``: results table, figures, filters and parity checks.

Example
-------
>>> write_report(Path("compare-report"), sides, [], parity_checks(), figures, filters,
...              ReportContext("textcnn compare", 61.0, 2, TRAIN))  # doctest: +SKIP
PosixPath('compare-report/report.md')
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

import torch

from ...fileio import write_text
from .parity import TOLERANCE


@dataclass
class ReportContext:
    """How the report was made, stated in its first paragraph and its results table.

    Attributes
    ----------
    command : str
        The command line (or call) that produced the report.
    seconds : float
        Wall time of the whole run.
    threads : int
        Torch threads used.
    train_settings : dict
        The training settings both sides share (``batch_size``, ``lr``...).
    """

    command: str
    seconds: float
    threads: int
    train_settings: dict


# what a reader of the filters section should know about the two kinds of first-layer filter
FILTERS_DIFFER = (
    "The two first layers are the same operation on differently shaped inputs (the parity "
    "checks below measure it): a text filter of width k is a 2D kernel k tokens tall and as wide "
    "as the embedding, so it slides along the sentence only, while an image filter is a small "
    "square that slides along both axes of the picture. That is why only the image filters are "
    "drawn as pictures. Neighbouring pixels are ordered and alike, so a 3x3 tile of weights reads "
    "as a stroke or edge detector; the embedding's dimensions have no order, so a k x E text "
    "kernel drawn as a picture is noise, and the way to read it is by the n-grams it responds to "
    "most. The pooling differs for the same reason: the text model max-pools each filter over "
    "the whole sentence right after its one conv layer (where a phrase occurs does not matter, "
    "only how strongly it occurs), while the image model pools only 2x2 neighbourhoods after its "
    "first block, so its second block still sees how the strokes lie against each other (which "
    "is what tells one digit from another), and max-pools over every position only at the end."
)


def _with_unit(n: float) -> str:
    """``1.23 M`` style: G, M or k, else the integer."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def _model_settings(side: dict) -> str:
    m = side["config"].to_dict()["model"]
    return ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("residual", "separable"))


READING_RESULTS = (
    "How to read this table: each column is one model, trained on its own data (text: "
    "sentences, image: pixels) with the same conv block, trainer and settings. The rows are "
    "what each costs (parameters, FLOPs, speed, time) and what it reaches (accuracy). The "
    "accuracies are on different tasks, so they do not rank the two models; the table shows "
    "what the one conv core costs and learns on each kind of input.")


def _best_epoch(side: dict) -> int:
    return max(side["history"], key=lambda r: r["validation_accuracy"])["epoch"]


_RESULT_ROWS = (  # (label, cell of one side)
    ("model settings", _model_settings),
    ("train / validation / test", lambda s: " / ".join(
        str(s["sizes"].get(k, "-")) for k in ("train", "validation", "test"))),
    ("parameters (of which embedding)", lambda s: f"{s['params']:,} ({s['embedding_params']:,})"),
    ("FLOPs per example (conv + linear)", lambda s: f"{_with_unit(s['flops'])} at {s['flops_at']}"),
    ("training examples/s", lambda s: f"{s['train_speed']:,.0f}"),
    ("inference examples/s", lambda s: f"{s['infer_speed']:,.0f}"),
    ("epochs (best)", lambda s: f"{len(s['history'])} ({_best_epoch(s)})"),
    ("training seconds (fit, with validation)", lambda s: f"{s['seconds']:.1f}"),
    ("validation accuracy", lambda s: f"{s['metrics']['validation']['accuracy']:.4f}"),
    ("test accuracy", lambda s: f"{s['metrics'].get('test', {}).get('accuracy', 0):.4f}"),
)


def _results_section(sides: dict, train_settings: dict) -> list[str]:
    shared = ", ".join(f"{k} {v}" for k, v in train_settings.items())
    lines = ["## Results", "", READING_RESULTS, "", f"Shared training settings: {shared}.", "",
             "| | " + " | ".join(f"{n} ({s['dataset']})" for n, s in sides.items()) + " |",
             "|---|" + "---|" * len(sides)]
    for label, cell in _RESULT_ROWS:
        lines.append(f"| {label} | " + " | ".join(cell(s) for s in sides.values()) + " |")
    return lines + [
        "", "FLOPs count 2 x multiply-adds of every conv and linear layer, from their shapes "
        "(text: one sentence of the mean training length; the embedding lookup is free). Speeds: "
        "training = forward + backward + AdamW step in batches of "
        f"{train_settings['batch_size']} (length-bucketed for text); inference = "
        "`predict_logits` on the test split, batches of 500.", ""]


def _filters_section(figures: dict, filters: list[dict]) -> list[str]:
    lines = []
    if figures.get("image_filters") or filters:
        lines += ["## First-layer filters", ""]
    if figures.get("image_filters"):
        lines += ["2D kernels of the image model's first block (input channel 0), one tile "
                  "each: a tile's colour is a weight, on the colour bar's scale (red positive, "
                  "blue negative, white zero). A tile with a red side and a blue side responds "
                  "to a change of intensity across it, such as a stroke's edge.", "",
                  "![image filters](image_filters.png)", ""]
    if filters:
        also = " (also drawn in `text_filters.png`)" if figures.get("text_filters") else ""
        lines += [f"1D filters of width {filters[0]['width']} that weigh most in the text head, "
                  f"each with the training n-grams that activate it most{also}. A filter's "
                  "max-pooled activation is one input of the linear head; `favours` is the "
                  "class whose logit that input raises most, and the activation is the filter's "
                  "response to the n-gram (the higher, the more the n-gram raises that logit "
                  "when it is the sentence's strongest window for the filter):", "",
                  "| filter | favours | top n-grams (activation) |", "|---|---|---|"]
        for r in filters:
            grams = ", ".join(f"`{g}` ({a:.2f})" for g, a in r["ngrams"])
            lines.append(f"| {r['filter']} | {r['favours']} | {grams} |")
        lines.append("")
    if figures.get("image_filters") and filters:
        lines += ["### Why the two sides' filters are shown differently", "",
                  FILTERS_DIFFER, ""]
    return lines


def _parity_section(parity: dict[str, float]) -> list[str]:
    lines = ["## Parity checks", "", "Each row computes one operation twice, on the 1D text "
             "path and on the 2D image path, and gives the largest absolute difference between "
             "the two outputs: below the tolerance, the two are the same operation up to float "
             f"rounding. Max absolute difference, float32, random weights and "
             f"inputs (pass: < {TOLERANCE:g}); the same checks run in `tests/test_parity.py`.",
             "", "| check | max difference | |", "|---|---|---|"]
    for name, diff in parity.items():
        lines.append(f"| {name} | {diff:.2e} | {'pass' if diff < TOLERANCE else 'FAIL'} |")
    return lines + [""]


def write_report(out: Path, sides: dict, missing: list[str], parity: dict[str, float],
                 figures: dict, filters: list[dict], context: ReportContext) -> Path:
    """Write ``out/report.md``.

    Parameters
    ----------
    out : Path
        The report folder (figures already written there).
    sides : dict
        Side name (``text``, ``image``) -> its measurements.
    missing : list of str
        Why a side was not run, one line each.
    parity : dict
        Parity check name -> max absolute difference.
    figures : dict
        Figure name (``curves``, ``image_filters``, ``text_filters``) -> whether it was drawn.
    filters : list of dict
        The text model's filters and their top n-grams.
    context : ReportContext
        The command, wall time, threads and shared training settings.

    Returns
    -------
    Path
        The written file.
    """
    lines = ["# Image vs text: one conv core", "",
             f"`{context.command}`: {context.seconds:.0f} s on {platform.machine()} with torch "
             f"{torch.__version__}, {context.threads} thread(s). Both models are built from "
             "`textcnn.core.ConvBlock` (text: 1D, images: 2D), trained by the same Trainer and "
             "scored by the same metrics; each side's model folder is next to this file.", ""]
    if missing:
        lines += ["## Missing", ""] + [f"- **not run**: {m}" for m in missing] + [""]
    if sides:
        lines += _results_section(sides, context.train_settings)
    if figures.get("curves"):
        lines += ["## Learning curves", "", "![learning curves](curves.png)", ""]
    lines += _filters_section(figures, filters)
    lines += _parity_section(parity)
    return write_text(out / "report.md", "\n".join(lines))
