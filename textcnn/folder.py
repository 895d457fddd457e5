"""The model folder: its files, one writer, and the checks every reader makes, for every kind of
model.

A folder holds ``config.json`` (the resolved config at top level, plus ``kind``: "text" or
"image", ``heads``: ``{head: [label names]}``, ``textcnn_version``, ``weights_sha256`` (of the
weights file), ``trained_at`` (UTC, ISO 8601), for multi-label heads ``thresholds``:
``{head: {label: threshold}}``, and what the kind adds, e.g. ``image``: shape
and pixel scale), ``model.safetensors`` (the weights) and the kind's own files
(``tokenizer.json`` for text). :func:`textcnn.load` (:func:`textcnn.classifier.load`) opens
any folder onto the CPU with what is here: no training data and no GPU needed, no pickle read.

Before building the network, :func:`read_network` checks every tensor shape that
``config.json`` implies against the safetensors header (a few bytes; no tensor is read), so a
config that does not match its weights fails with the first differing tensor named, and nothing
large is allocated for it. Then it checks the weights file against ``config.json``'s
``weights_sha256`` (read in 1 MiB chunks), so weights changed after the folder was written fail
to load instead of answering silently; ``textcnn.load(path, verify=False)``, or the environment
variable ``TEXTCNN_VERIFY_WEIGHTS=0`` for the command line, skips that check.

Example
-------
>>> import textcnn
>>> clf = textcnn.load(model_dir, backend="auto")
>>> clf.kind, clf.backend
('text', 'folded')
>>> folder = clf.save(tmp_dir / "copy")
>>> sorted(p.name for p in folder.iterdir())
['config.json', 'model.safetensors', 'tokenizer.json']
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch.nn.modules.module import register_module_parameter_registration_hook
from torch.overrides import TorchFunctionMode

from ._version import __version__
from .config import Config, from_dict
from .errors import ConfigError, ModelFolderError
from .fileio import atomic_write, write_json
from .heads import head_outputs
from .models import build_model

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"
ONNX = "model.onnx"  # written by `textcnn export`
# config.json's keys that describe the folder rather than the run's settings
FOLDER_KEYS = ("kind", "heads", "textcnn_version", "image", "weights_sha256", "trained_at",
               "thresholds")


def write_folder(clf, path: str | Path) -> Path:
    """Write ``clf``'s model folder: weights, the kind's files, then config.json (each
    atomically: a run killed mid-write leaves the old file or none, never half of one)."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in clf.model.state_dict().items()}
    atomic_write(path / WEIGHTS, lambda tmp: save_file(state, tmp))
    clf.save_files(path)
    trained_at = getattr(clf, "trained_at", None) or \
        datetime.now(timezone.utc).isoformat(timespec="seconds")
    fitted: dict[str, dict] = {}  # {folder key: {head: value}}, e.g. thresholds
    for h, kind in clf.head_objects.items():
        for key, value in kind.folder_state(clf.heads[h]).items():
            fitted.setdefault(key, {})[h] = value
    write_json(path / CONFIG, {**clf.config.to_dict(), "kind": clf.kind, "heads": clf.heads,
                               **fitted,
                               **clf.folder_fields(), "textcnn_version": __version__,
                               "weights_sha256": weights_sha256(path), "trained_at": trained_at})
    return path


def weights_sha256(path: str | Path) -> str:
    """The SHA-256 of the folder's ``model.safetensors``: which trained model it is."""
    digest = hashlib.sha256()
    with open(Path(path) / WEIGHTS, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_weights(path: str | Path, raw: dict, verify: bool | None = None) -> str | None:
    """Check the folder's weights file against ``config.json``'s ``weights_sha256`` (``raw``);
    returns the file's digest, or None when nothing was checked (a folder that records no hash,
    or ``verify`` False; None follows ``$TEXTCNN_VERIFY_WEIGHTS``, on unless ``0``)."""
    if verify is None:
        verify = os.environ.get("TEXTCNN_VERIFY_WEIGHTS", "1").strip().lower() \
            not in ("0", "false", "no", "off")
    expected = raw.get("weights_sha256")
    if not verify or expected is None:
        return None
    if not isinstance(expected, str):
        raise ModelFolderError(f"corrupt {Path(path) / CONFIG}: 'weights_sha256' must be a hex "
                               f"string, got {json.dumps(expected)}")
    digest = weights_sha256(path)
    if digest != expected.lower():
        raise ModelFolderError(
            f"{Path(path) / WEIGHTS} does not match {CONFIG}: its SHA-256 is {digest[:12]}..., "
            f"but {CONFIG} records {expected[:12]}... (the weights were changed after the folder "
            "was written); to load them anyway use textcnn.load(path, verify=False), or set "
            "TEXTCNN_VERIFY_WEIGHTS=0 for the command line")
    return digest


def fresh_onnx_graph(path: str | Path) -> Path | None:
    """``path/model.onnx`` when it exists and is at least as new as the weights, else None."""
    graph, weights = Path(path) / ONNX, Path(path) / WEIGHTS
    if graph.is_file() and weights.is_file() and graph.stat().st_mtime >= weights.stat().st_mtime:
        return graph
    return None


def read_config(path: str | Path) -> tuple[dict, Config]:
    """``(config.json as data, Config)`` of a model folder; a bad file is a ModelFolderError."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"model folder not found: {path}")
    if not (path / CONFIG).is_file():
        raise ModelFolderError(f"model folder {path} is missing {CONFIG}{_unfinished_hint(path)}")
    try:
        raw = json.loads((path / CONFIG).read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError(f"expected a JSON object, got {type(raw).__name__}")
        if "kind" not in raw:
            raise ValueError("'kind' is missing (text or image)")
        _check_heads(raw.get("heads"))
        _check_thresholds(raw.get("thresholds", {}), raw["heads"])
        config = from_dict({k: v for k, v in raw.items() if k not in FOLDER_KEYS})
    except (ValueError, TypeError, ConfigError) as exc:
        raise ModelFolderError(f"corrupt {path / CONFIG}: {exc}") from None
    return raw, config


def _check_heads(heads) -> None:
    if not isinstance(heads, dict) or not heads:
        raise ValueError("'heads' must map each head name to its list of label names")
    for head, names in heads.items():
        if not isinstance(names, list) or not names or \
                not all(isinstance(n, str) for n in names):
            raise ValueError(f"'heads.{head}' must be a non-empty list of label names")


def _check_thresholds(thresholds, heads: dict) -> None:
    if not isinstance(thresholds, dict):
        raise ValueError("'thresholds' must map each multi-label head to {label: threshold}")
    for head, values in thresholds.items():
        if head not in heads or not isinstance(values, dict) or set(values) != set(heads[head]) \
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           for v in values.values()):
            raise ValueError(f"'thresholds.{head}' must give a number for each label of head "
                             f"'{head}'")


def _unfinished_hint(path: Path) -> str:
    if (path / "checkpoint.safetensors").is_file():
        return " (an unfinished run? try `textcnn train ... --resume`)"
    return ""


def weight_shapes(path: str | Path) -> dict[str, tuple[int, ...]]:
    """``{tensor name: shape}`` from a safetensors file's header (no tensor is read)."""
    try:
        with safe_open(str(path), framework="pt") as fh:
            return {k: tuple(fh.get_slice(k).get_shape()) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFolderError(f"corrupt {path}: {exc}") from None


TOKENIZER_BASE_BYTES = 8 << 20  # a tokenizer.json's size besides its vocabulary: 8 MiB
TOKENIZER_BYTES_PER_ROW = 1024  # and 1 KiB per embedding row (a JSON entry takes ~20 bytes)


def check_tokenizer_size(tokenizer: Path, weights: Path) -> None:
    """Fail before reading a ``tokenizer.json`` larger than the weights' vocabulary allows.

    The vocabulary a model can use is at most the largest first dimension of its tensors (the
    embedding table's rows), read from the safetensors header; a tokenizer file over
    :data:`TOKENIZER_BASE_BYTES` plus :data:`TOKENIZER_BYTES_PER_ROW` per row cannot be the
    tokenizer of these weights, and loading it could take many times its size in memory.
    """
    if not tokenizer.is_file() or not weights.is_file():
        return  # the caller names the missing file
    rows = max((shape[0] for shape in weight_shapes(weights).values() if shape), default=0)
    limit = TOKENIZER_BASE_BYTES + TOKENIZER_BYTES_PER_ROW * rows
    size = tokenizer.stat().st_size
    if size > limit:
        raise ModelFolderError(
            f"{tokenizer} is {size:,} bytes, too large for the {rows:,}-row vocabulary of "
            f"{weights.name} (at most {limit:,} bytes): it is not this model's tokenizer")


def check_weights(config: Config, input_size: int, heads: dict[str, list[str]],
                  path: str | Path) -> None:
    """Fail naming the first tensor whose shape ``config`` does not imply, before building.

    The network is built on the ``meta`` device (shapes only, nothing allocated) and its
    state-dict shapes are compared with the header of the weights file at ``path``; the build
    stops as soon as it registers more parameters than the file holds (a ``depth`` of 10**6).
    """
    have = weight_shapes(path)
    with torch.device("meta"), _SkipInit(), _at_most_parameters(len(have), path):
        skeleton = build_model(config.model, input_size, head_outputs(config, heads))
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            problem = f"it has no tensor '{name}', which {CONFIG} implies"
        elif name not in want:
            problem = f"it has a tensor '{name}', which {CONFIG} does not imply"
        elif want[name] != have[name]:
            problem = (f"its tensor '{name}' is {list(have[name])} but {CONFIG} implies "
                       f"{list(want[name])}")
        else:
            continue
        raise ModelFolderError(f"{path} does not match {CONFIG}: {problem}")


class _SkipInit(TorchFunctionMode):
    """Initializers return their tensor untouched: a skeleton's values are never read, and
    torch's ``normal_`` on the meta device would import its compiler (~80 MB resident)."""

    INIT = frozenset(getattr(torch.nn.init, n) for n in dir(torch.nn.init)
                     if n.endswith("_") and not n.startswith("_"))
    METHODS = frozenset(("normal_", "uniform_", "zero_", "fill_", "copy_"))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.INIT or getattr(func, "__name__", "") in self.METHODS:
            return args[0] if args else kwargs.get("tensor", kwargs.get("self"))
        return func(*args, **kwargs)


@contextlib.contextmanager
def _at_most_parameters(limit: int, path: str | Path) -> Iterator[None]:
    """Fail once the modules built in the block register more than ``limit`` parameters."""
    count = 0

    def counted(module, name, param):
        nonlocal count
        count += param is not None
        if count > limit:
            raise ModelFolderError(f"{path} does not match {CONFIG}: it holds {limit} tensors but "
                                   f"{CONFIG} implies more (a larger depth or more layers)")

    handle = register_module_parameter_registration_hook(counted)
    try:
        yield
    finally:
        handle.remove()


def require_files(path: Path, names) -> None:
    """Fail naming the first of ``names`` missing from the model folder ``path``."""
    for name in names:
        if not (path / name).is_file():
            raise ModelFolderError(f"model folder {path} is missing {name}{_unfinished_hint(path)}")


def read_network(path: Path, raw: dict, config: Config, input_size: int,
                 verify: bool | None = None) -> torch.nn.Module:
    """The folder's network on the CPU, built from ``config`` once the weights' header matches
    it (:func:`check_weights`) and the weights their hash (:func:`verify_weights`)."""
    check_weights(config, input_size, raw["heads"], path / WEIGHTS)
    verify_weights(path, raw, verify)
    try:
        state = load_file(str(path / WEIGHTS), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFolderError(f"corrupt {path / WEIGHTS}: {exc}") from None
    model = build_model(config.model, input_size, head_outputs(config, raw["heads"]))
    model.load_state_dict(state)
    return model
