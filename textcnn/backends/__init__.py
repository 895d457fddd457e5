"""Backends: how a trained model's forward pass runs, behind one small interface.

Every backend maps a prepared batch source (token ids and lengths, or images) to
``{head: logits}`` in input order; tokenising, softmax and top-k stay in the classifier, so all
backends answer in the same shapes:

- ``torch``: the trained network as it is (:class:`TorchBackend`);
- ``folded``: Kim's convolutions precomputed into the embedding table (:mod:`.folded`);
- ``onnx``: the network exported to ONNX and run by onnxruntime (:mod:`.onnx`);
- ``auto``: ``folded`` when the model folds within :data:`~.folded.MAX_TABLE_BYTES`, else
  ``torch``; the probabilities stay within 1e-5 of the trained model's either way. A model on a
  GPU (``--device cuda``) runs on ``torch``: ``folded`` and ``onnx`` run on the CPU.

Example
-------
>>> import torch
>>> from textcnn.models import TextCNN
>>> model = TextCNN(50, {"sentiment": 2}, embedding_dim=8, channels=4).eval()
>>> make_backend("auto", model, {"sentiment": ["neg", "pos"]}).name
'folded'
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from .base import Backend, BackendError, TorchBackend

BACKENDS = ("auto", "folded", "torch", "onnx")


def make_backend(name: str, model: nn.Module, heads: dict[str, list[str]],
                 onnx_graph: bytes | str | Path | None = None, threads: int = 0) -> Backend:
    """The backend ``name`` (one of :data:`BACKENDS`) for a trained ``model``.

    Parameters
    ----------
    name : str
        ``auto``, ``folded``, ``torch`` or ``onnx``.
    model : torch.nn.Module
        The trained network, in eval mode.
    heads : dict
        ``{head: label names}``; the ONNX graph's outputs are checked against them.
    onnx_graph : bytes or path, optional
        A graph exported earlier (``model.onnx``); exported in memory when omitted.
    threads : int
        onnxruntime intra-op threads (0 = its default); torch uses ``torch.set_num_threads``.

    Raises
    ------
    BackendError
        Unknown name, or ``folded`` for a model that does not fold (the message says why).
    """
    from ..devices import model_device
    from .folded import MAX_TABLE_BYTES, FoldedBackend, why_not_foldable

    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    device = model_device(model)
    if device.type != "cpu" and name in ("auto", "torch"):
        return TorchBackend(model)
    if device.type != "cpu":
        raise BackendError(f"backend {name!r} runs on the CPU; the model is on {device}: use "
                           "--backend torch (or auto) with --device")
    if name == "onnx":
        from .onnx import OnnxBackend

        return OnnxBackend(model, heads, onnx_graph, threads)
    if name == "torch":
        return TorchBackend(model)
    reason = why_not_foldable(model, MAX_TABLE_BYTES if name == "auto" else None)
    if reason is None:
        return FoldedBackend(model)
    if name == "folded":
        raise BackendError(f"backend 'folded' does not fit this model: {reason}")
    return TorchBackend(model)


__all__ = ["BACKENDS", "Backend", "BackendError", "TorchBackend", "make_backend"]
