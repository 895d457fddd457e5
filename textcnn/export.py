"""ONNX export and an onnxruntime predictor with :class:`~textcnn.pipeline.TextClassifier`'s
interface.

The graph takes ``ids`` (batch, time) int64 and ``lengths`` (batch,) int64, both axes dynamic,
and returns one logits output per head, named after the head. It is traced from the torch model
on an input at least as wide as the widest kernel, so the torch code's "pad inputs shorter than
the widest kernel" branch is *not* in the graph: :class:`OnnxClassifier` pads every batch to at
least that width itself (padded positions are masked by ``lengths`` inside the graph, exactly as
in torch), so empty and one-token texts score the same on both backends.

Example
-------
>>> path, diff = export("runs/sst2")  # doctest: +SKIP  (writes runs/sst2/model.onnx)
>>> clf = OnnxClassifier.from_pretrained("runs/sst2", threads=2)  # doctest: +SKIP
>>> clf.predict(["a gorgeous, witty film"])  # doctest: +SKIP
[{'sentiment': [{'label': 'positive', 'score': 0.97}]}]
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import ModelFolderError, TextCNNError
from .fileio import atomic_write
from .models import min_input_length
from .pipeline import WEIGHTS, TextClassifier, _softmax
from .training import sorted_batches

ONNX = "model.onnx"
OPSET = 17  # onnxruntime >= 1.17 runs it; nothing newer is needed
PARITY_TOL = 1e-5  # max |p_onnx - p_torch| that export() accepts (tested in tests/test_export.py)


class _Ordered(nn.Module):
    """The model with its ``{head: logits}`` dict returned as a tuple in ``heads`` order."""

    def __init__(self, model: nn.Module, heads: list[str]):
        super().__init__()
        self.model, self.heads = model, heads

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(ids, lengths)
        return tuple(out[h] for h in self.heads)


def to_onnx(clf: TextClassifier, opset: int = OPSET) -> bytes:
    """The classifier's model as a serialized ONNX graph with dynamic batch and time axes."""
    heads = list(clf.heads)
    width = min_input_length(clf.model) + 3  # wider than every kernel: no padding branch traced
    vocab = clf.tokenizer.get_vocab_size()
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(1, max(vocab, 2), (2, width), generator=gen)
    lengths = torch.tensor([width, 1])
    axes = {"ids": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    axes.update({h: {0: "batch"} for h in heads})
    buf = io.BytesIO()
    clf.model.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        # the TorchScript-based exporter: no onnxscript dependency, and it warns about its own
        # deprecation and about the traced shape check (which we handle by padding, see above)
        warnings.simplefilter("ignore")
        # eval() on the wrapper: the exporter restores the wrapper's mode, and with it the model's
        torch.onnx.export(_Ordered(clf.model, heads).eval(), (ids, lengths), buf, dynamo=False,
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


class OnnxClassifier(TextClassifier):
    """A :class:`TextClassifier` whose forward pass runs in onnxruntime.

    Tokenising, length-sorted batching, softmax and top-k are the torch classifier's own code
    (only its ``_logits`` hook is replaced), so ``predict`` / ``predict_proba`` take the same
    arguments and return the same shapes.

    Parameters
    ----------
    clf : TextClassifier
        Supplies the tokenizer, config, heads and (for re-export) the torch model.
    onnx_model : bytes or path, optional
        A graph from :func:`to_onnx`; exported from ``clf`` when omitted.
    threads : int
        onnxruntime intra-op threads (0 = its default, one per core).
    """

    def __init__(self, clf: TextClassifier, onnx_model: bytes | str | Path | None = None,
                 threads: int = 0):
        super().__init__(clf.model, clf.tokenizer, clf.config, clf.heads)
        self.backend = "onnx"
        self.threads = threads
        self.min_len = min_input_length(clf.model)
        self.session = session(onnx_model if onnx_model is not None else to_onnx(clf), threads)
        names = [o.name for o in self.session.get_outputs()]
        if sorted(names) != sorted(self.heads):
            raise ModelFolderError(f"ONNX graph outputs {names} do not match the heads "
                                   f"{list(self.heads)}; re-run `textcnn export`")
        self.outputs = names

    @classmethod
    def from_pretrained(cls, path: str | Path, threads: int = 0) -> OnnxClassifier:
        """Load a model folder; uses its ``model.onnx`` unless missing or older than the
        weights, in which case the graph is exported in memory (the folder is not written)."""
        path = Path(path)
        clf = TextClassifier.from_pretrained(path, backend="torch")
        graph = path / ONNX
        fresh = graph.is_file() and graph.stat().st_mtime >= (path / WEIGHTS).stat().st_mtime
        try:
            return cls(clf, graph if fresh else None, threads)
        except ModelFolderError:
            raise
        except Exception as exc:  # noqa: BLE001 - onnxruntime's own error types
            raise ModelFolderError(f"cannot load {graph}: {str(exc)[:200]}") from None

    def _logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int
                ) -> dict[str, np.ndarray]:
        out = {h: np.empty((len(lengths), len(self.heads[h])), dtype=np.float32)
               for h in self.heads}
        for idx in sorted_batches(lengths, batch_size):
            lens = lengths[idx]
            width = max(int(lens.max(initial=0)), self.min_len)  # >= widest kernel, see above
            batch = np.zeros((len(idx), width), dtype=np.int64)
            have = min(width, ids.shape[1])
            batch[:, :have] = ids[idx, :have]
            results = self.session.run(None, {"ids": batch, "lengths": lens.astype(np.int64)})
            for name, logits in zip(self.outputs, results):
                out[name][idx] = logits
        return out


def parity(clf: TextClassifier, other: TextClassifier, n: int = 64, seed: int = 0) -> float:
    """Max |p_other - p_clf| over random token-id inputs of lengths 0 .. 40 (both models see
    exactly the same ids, so only the forward passes are compared)."""
    rng = np.random.default_rng(seed)
    vocab = clf.tokenizer.get_vocab_size()
    lengths = np.concatenate([[0, 1, 2], rng.integers(0, 41, n - 3)]).astype(np.int64)
    ids = np.zeros((n, int(lengths.max())), dtype=np.int32)
    for row, length in zip(ids, lengths):
        row[:length] = rng.integers(2, max(vocab, 3), length)
    a, b = clf._logits(ids, lengths, 16), other._logits(ids, lengths, 16)
    return max(float(np.abs(_softmax(a[h]) - _softmax(b[h])).max()) for h in clf.heads)


def export(model_dir: str | Path, output: str | Path | None = None, fmt: str = "onnx",
           opset: int = OPSET) -> tuple[Path, float]:
    """Write ``model_dir/model.onnx`` (or ``output``); returns the path and the measured max
    probability difference to the torch model, which must be below ``PARITY_TOL``."""
    if fmt != "onnx":
        raise TextCNNError(f"unknown export format {fmt!r}; the only format is 'onnx'")
    clf = TextClassifier.from_pretrained(model_dir, backend="torch")
    data = to_onnx(clf, opset)
    diff = parity(clf, OnnxClassifier(clf, data, threads=1))
    if diff > PARITY_TOL:
        raise TextCNNError(f"ONNX export differs from the torch model by {diff:.2e} "
                           f"(> {PARITY_TOL:g}); not written")
    path = Path(output) if output else Path(model_dir) / ONNX
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path, diff
