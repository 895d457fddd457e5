"""The ``onnx`` backend: the network exported to ONNX and run by onnxruntime.

The graph takes ``ids`` (batch, time) int64 and ``lengths`` (batch,) int64, both axes dynamic,
and returns one logits output per head, named after the head. It is traced from the torch model
on an input at least as wide as the widest kernel, so the torch code's "pad inputs shorter than
the widest kernel" branch is *not* in the graph: :class:`OnnxBackend` pads every batch to at
least that width itself (padded positions are masked by ``lengths`` inside the graph, exactly as
in torch), so empty and one-token texts score the same on both backends.

A folder's graph is written by :func:`textcnn.export.export` (``textcnn export``).

Example
-------
>>> import textcnn
>>> clf = textcnn.load(model_dir, backend="torch")
>>> onnx = OnnxBackend(clf.model, clf.heads, to_onnx(clf.model, list(clf.heads)), threads=1)
>>> parity(clf.engine, onnx, list(clf.heads), clf.model.embedding.num_embeddings) < 1e-5
True
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..data.batch import Encoded, sorted_batches
from ..errors import ModelFolderError, TextCNNError
from ..heads import softmax
from ..models import min_input_length
from .base import Backend

OPSET = 17  # onnxruntime >= 1.17 runs it; nothing newer is needed


class _Ordered(nn.Module):
    """The model with its ``{head: logits}`` dict returned as a tuple in ``heads`` order."""

    def __init__(self, model: nn.Module, heads: list[str]):
        super().__init__()
        self.model, self.heads = model, heads

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(ids, lengths)
        return tuple(out[h] for h in self.heads)


def to_onnx(model: nn.Module, heads: list[str], opset: int = OPSET) -> bytes:
    """A text model as a serialized ONNX graph with dynamic batch and time axes.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(ids, lengths)`` to ``{head: logits}``; left in eval mode.
    heads : list of str
        The graph's outputs, in this order.
    opset : int
    """
    heads = list(heads)
    width = min_input_length(model) + 3  # wider than every kernel: no padding branch traced
    vocab = model.embedding.num_embeddings
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, max(vocab, 2), (2, width), generator=gen)
    lengths = torch.tensor([width, 1])
    axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    axes.update({h: {0: "batch"} for h in heads})
    buf = io.BytesIO()
    model.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # the TorchScript-based exporter: no onnxscript dependency, and it warns about its own
        # deprecation and about the traced shape check (which we handle by padding, see above)
        warnings.simplefilter("ignore")
        # eval() on the wrapper: the exporter restores the wrapper's mode, and with it the model's
        torch.onnx.export(_Ordered(model, heads).eval(), (ids, lengths), buf, dynamo=False,
                          input_names=["ids", "lengths"], output_names=heads,
                          dynamic_axes=axes, opset_version=opset)
    return buf.getvalue()


def session(onnx_model: bytes | str | Path, threads: int = 0):
    """An onnxruntime CPU session; ``threads`` intra-op threads (0 = onnxruntime's default)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = int(threads)
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3  # errors only
    data = onnx_model if isinstance(onnx_model, bytes) else str(onnx_model)
    return ort.InferenceSession(data, sess_options=opts, providers=["CPUExecutionProvider"])



class OnnxBackend(Backend):
    """The ``onnx`` backend: onnxruntime runs the exported graph over length-sorted batches.

    Parameters
    ----------
    model : torch.nn.Module
        The trained text model (exported in memory when ``graph`` is None).
    heads : dict
        ``{head: label names}``; the graph's outputs must be exactly these heads.
    graph : bytes or path, optional
        A graph written by :func:`textcnn.export.export` (``model.onnx``).
    threads : int
        onnxruntime intra-op threads (0 = its default, one per core).

    Raises
    ------
    ModelFolderError
        The graph cannot be loaded or does not answer for the model's heads.
    """

    name = "onnx"

    def __init__(self, model: nn.Module, heads: dict[str, list[str]],
                 graph: bytes | str | Path | None = None, threads: int = 0):
        super().__init__(model)
        if not hasattr(model, "embedding"):
            raise TextCNNError("backend 'onnx' runs text models; this model reads images")
        self.heads = heads
        self.min_len = min_input_length(model)
        try:
            self.session = session(graph if graph is not None else to_onnx(model, list(heads)),
                                   threads)
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            raise ModelFolderError(f"cannot load {graph}: {str(exc)[:200]}") from None
        self.outputs = [o.name for o in self.session.get_outputs()]
        if sorted(self.outputs) != sorted(heads):
            raise ModelFolderError(f"ONNX graph outputs {self.outputs} do not match the heads "
                                   f"{list(heads)}; re-run `textcnn export`")

    def logits(self, data: Encoded, batch_size: int) -> dict[str, np.ndarray]:
        ids, lengths = data.ids, data.lengths
        out: dict[str, np.ndarray] = {}  # sized by the graph's outputs (a head's logits)
        for idx in sorted_batches(lengths, batch_size):
            lens = lengths[idx]
            width = max(int(lens.max(initial=0)), self.min_len)  # >= widest kernel, see above
            batch = np.zeros((len(idx), width), dtype=np.int64)
            have = min(width, ids.shape[1])
            batch[:, :have] = ids[idx, :have]
            results = self.session.run(None, {"ids": batch, "lengths": lens.astype(np.int64)})
            for name, logits in zip(self.outputs, results):
                if name not in out:
                    out[name] = np.empty((len(lengths), logits.shape[1]), dtype=np.float32)
                out[name][idx] = logits
        for h in self.heads:  # no rows, no batch: one column per label
            out.setdefault(h, np.empty((0, len(self.heads[h])), dtype=np.float32))
        return out


def parity(reference: Backend, other: Backend, heads: list[str], vocab_size: int, n: int = 64,
           seed: int = 0) -> float:
    """Max |p_other - p_reference| over random token-id inputs of lengths 0 .. 40 (both backends
    see exactly the same ids, so only the forward passes are compared)."""
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[0, 1, 2], rng.integers(0, 41, n - 3)]).astype(np.int64)
    ids = np.zeros((n, int(lengths.max())), dtype=np.int32)
    for row, length in zip(ids, lengths):
        row[:length] = rng.integers(2, max(vocab_size, 3), length)
    data = Encoded(ids, lengths)
    a, b = reference.logits(data, 16), other.logits(data, 16)
    return max(float(np.abs(softmax(a[h]) - softmax(b[h])).max()) for h in heads)
