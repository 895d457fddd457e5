"""The learning-rate schedule: the multiple of ``train.lr`` at each optimizer step."""

from __future__ import annotations

import math


def _cos_anneal(start: float, end: float, pct: float) -> float:
    """From ``start`` (``pct = 0``) to ``end`` (``pct = 1``) along half a cosine."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1.0)


def lr_factor(step: int, total: int, schedule: str = "constant", warmup: float = 0.0) -> float:
    """The multiple of ``train.lr`` used by optimizer step ``step`` (0-based) of ``total``.

    A pure function of the step count, so a resumed run continues the schedule exactly. The
    first ``w = round(warmup * total)`` steps warm up, the peak (factor 1) is at step ``w``.

    Parameters
    ----------
    step, total : int
        The global optimizer step and the number of steps of all ``train.epochs`` epochs.
    schedule : str
        ``constant``: linear warm-up ``(step + 1) / (w + 1)``, then 1. ``cosine``: the same
        warm-up, then half a cosine from 1 at step ``w`` toward 0 at step ``total`` (the last
        step taken is small but not 0). ``onecycle``: ``torch.optim.lr_scheduler.OneCycleLR``
        (cosine annealing, ``div_factor=25``, ``final_div_factor=1e4``) peaking at step ``w``:
        a cosine up from 1/25 to 1, then down to 1/25e4 at the last step.
    warmup : float
        Fraction of ``total`` in [0, 1).

    Returns
    -------
    float

    Examples
    --------
    >>> lr_factor(0, 10, "constant", warmup=0.2), lr_factor(5, 10)
    (0.3333333333333333, 1.0)
    """
    w = min(round(warmup * total), max(total - 1, 0))
    if schedule == "onecycle":
        if step < w:
            return _cos_anneal(1.0 / 25.0, 1.0, step / w)
        return _cos_anneal(1.0, 1.0 / 25e4, min(1.0, (step - w) / max(total - 1 - w, 1)))
    if step < w:
        return (step + 1) / (w + 1)
    if schedule == "cosine":
        return _cos_anneal(1.0, 0.0, min(1.0, (step - w) / max(total - w, 1)))
    return 1.0
