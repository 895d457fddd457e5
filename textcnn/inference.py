"""Inference: batched, length-sorted forward passes of a model and their metrics.

Used by the classifiers, serving and the trainer's validation. It reads the batch type of
:mod:`textcnn.data.batch`, as training does, so neither imports the other's package to feed a
model.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .data.batch import Encoded, sorted_batches
from .devices import model_device, to_device
from .heads import Head


@torch.inference_mode()
def predict_logits(model: nn.Module, data: Encoded, batch_size: int = 500) -> dict[str, np.ndarray]:
    """Logits per head, in input order, from length-sorted batches.

    Parameters
    ----------
    model : nn.Module
        Maps ``(ids, lengths)`` to ``{head: logits (b, classes)}``; put in eval mode. Batches
        are built on the host and moved to the model's device.
    data : Encoded
        The rows (or any split with ``len``, ``lengths`` and ``batch(idx)``).
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    dict
        ``{head: (n, classes) float32 logits}``.
    """
    model.eval()
    device = model_device(model)
    out: dict[str, np.ndarray] = {}
    for idx in sorted_batches(data.lengths, batch_size):
        for head, logits in model(*to_device(data.batch(idx), device)).items():  # (b, classes)
            if head not in out:
                out[head] = np.empty((len(data), logits.shape[1]), dtype=np.float32)
            out[head][idx] = logits.float().cpu().numpy()
    return out


def evaluate(model: nn.Module, data: Encoded, head: str, kind: Head, batch_size: int = 500
             ) -> dict:
    """Metrics of ``head`` on a labelled split.

    Parameters
    ----------
    model : nn.Module
        As for :func:`predict_logits`.
    data : Encoded
        The rows, with ``labels``.
    head : str
        The head scored.
    kind : Head
        What its logits mean (:func:`textcnn.heads.head_for`), with what it fitted.
    batch_size : int
        Rows per forward pass.

    Returns
    -------
    dict
        :meth:`textcnn.heads.Head.metrics` of its predictions.
    """
    logits = predict_logits(model, data, batch_size)[head]
    return kind.metrics(data.labels, logits)
