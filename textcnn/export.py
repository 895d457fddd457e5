"""``textcnn export``: a model folder's network written as ONNX beside its weights.

The graph is traced from the folder's torch model (:func:`textcnn.backends.onnx.to_onnx`) and
written only when onnxruntime, run on it, gives the torch model's probabilities within
:data:`PARITY_TOL` on random inputs; ``textcnn.load(folder, backend="onnx")`` then runs it
while it is at least as new as the weights.

Example
-------
>>> import shutil, textcnn
>>> folder = shutil.copytree(model_dir, tmp_dir / "model")
>>> path, diff = export(folder)  # writes model.onnx, checked against the torch model
>>> path.name, diff < PARITY_TOL
('model.onnx', True)
>>> textcnn.load(folder, backend="onnx", threads=1).backend
'onnx'
"""

from __future__ import annotations

from pathlib import Path

from .backends.onnx import OPSET, OnnxBackend, parity, to_onnx
from .classifier import load
from .errors import TextCNNError
from .fileio import atomic_write
from .folder import ONNX

PARITY_TOL = 1e-5  # max |p_onnx - p_torch| that export() accepts


def export(model_dir: str | Path, output: str | Path | None = None, fmt: str = "onnx",
           opset: int = OPSET) -> tuple[Path, float]:
    """Write ``model_dir/model.onnx`` (or ``output``); returns the path and the measured max
    probability difference to the torch model, which must be below :data:`PARITY_TOL`."""
    if fmt != "onnx":
        raise TextCNNError(f"unknown export format {fmt!r}; the only format is 'onnx'")
    clf = load(model_dir, backend="torch")
    data = to_onnx(clf.model, list(clf.heads), opset)
    onnx = OnnxBackend(clf.model, clf.heads, data, threads=1)
    diff = parity(clf.engine, onnx, list(clf.heads), clf.model.embedding.num_embeddings)
    if diff > PARITY_TOL:
        raise TextCNNError(f"ONNX export differs from the torch model by {diff:.2e} "
                           f"(> {PARITY_TOL:g}); not written")
    path = Path(output) if output else Path(model_dir) / ONNX
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(data))
    return path, diff
