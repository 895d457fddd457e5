"""Probabilities from margins: a temperature fitted on validation and folded into the weights.

A head trained on ``train.loss: squared_hinge`` learns margins (logits near +1 for its label and
-1 for the others), so the softmax of its logits is far too flat to read as a probability (20
classes: about 0.3 for a sure prediction). After training, the ``squared_hinge`` head
(:mod:`textcnn.heads`) finds with :func:`fit_temperature` the temperature ``T`` whose
``softmax(logits / T)`` has the least negative log-likelihood on the validation split (Guo et
al., 2017), and :func:`fold_temperature` divides the head's last linear layer, and the wide
branch's columns for that head, by ``T``. The division happens in the
weights, so the torch, folded and ONNX backends, serving and the saved folder all give the
calibrated probabilities with no extra step, and the predicted labels do not change.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> labels = rng.integers(0, 20, 500)  # 20 classes, 96 % of the margins right
>>> margins = np.where(np.eye(20)[labels] > 0, 1.0, -1.0) + rng.normal(0, 0.5, (500, 20))
>>> t = fit_temperature(margins, labels)
>>> round(t, 2)  # sharpen: margins of +-1 are surer than their softmax says
0.12
>>> [round(float(np.exp(-nll(m, labels))), 2) for m in (margins, margins / t)]  # p(label)
[0.25, 0.91]
>>> bool(nll(margins / t, labels) < nll(margins, labels))
True
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["fit_temperature", "fold_temperature", "nll"]

# log10 of the temperatures tried: 0.01 to 100, 1 % apart
_LOG_T = np.linspace(-2.0, 2.0, 401)


def nll(logits: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits)``.

    >>> round(nll(np.zeros((2, 4)), np.array([0, 3])), 4)  # log 4
    1.3863
    """
    z = logits - logits.max(axis=1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(labels)), labels].mean())


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` (0.01 to 100) minimising ``nll(logits / T, labels)``."""
    logits = np.asarray(logits, dtype=np.float64)
    scores = [nll(logits / 10.0 ** lt, labels) for lt in _LOG_T]
    return float(10.0 ** _LOG_T[int(np.argmin(scores))])


@torch.no_grad()
def fold_temperature(model: nn.Module, head: str, temperature: float) -> None:
    """Divide ``head``'s logits by ``temperature`` inside ``model``: its last linear layer and,
    when the model has a wide branch, that head's columns of the branch's weight."""
    layer = model.heads.layers[head]
    layer.weight.div_(temperature)
    layer.bias.div_(temperature)
    wide = getattr(model, "wide", None)
    if wide is not None:
        wide.weight[:, wide.head_columns(head)] /= temperature
