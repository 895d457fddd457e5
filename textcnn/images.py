"""Image datasets for the 2D path, and the image model folder.

Datasets (a task's ``dataset`` in an image config, ``model.name: imagecnn``):

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, pixels 0-16; no download);
- ``mnist`` (or ``mnist-t10k``): ``<data dir>/mnist-t10k``, the data dir coming from
  ``--data-dir`` or ``$TEXTCNN_DATA_DIR``;
- a path: a folder of standard IDX files (``*-images-idx3-ubyte`` with ``*-labels-idx1-ubyte``,
  gzipped or not). ``train-*`` and ``t10k-*`` together give a train and a test split; one pair
  alone is an ``all`` split.

Like the text sets, an ``all`` split is cross-validated on folds from
``StratifiedKFold(10, shuffle=True, random_state=0)`` (``data.cv_folds``), so ``textcnn train``
tests on fold 0 and ``textcnn cv`` on every fold. Pixels are scaled to [0, 1].

An image model folder holds ``config.json`` (with ``heads``, ``textcnn_version`` and ``image``:
shape and pixel scale), ``model.safetensors``, ``metrics.json`` and ``history.jsonl``; there is no
tokenizer. Load it with :func:`load_image_model` (``TextClassifier`` is for text folders).

Example
-------
>>> raw = load_images(TaskConfig(dataset="digits"))
>>> raw.splits["all"].images.shape, raw.label_names[:3]
((1797, 1, 8, 8), ['0', '1', '2'])
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config, TaskConfig, from_dict
from .data import RawDataset, data_dir_from, make_splits
from .errors import ConfigError, DataError, ModelFolderError
from .fileio import atomic_write, write_json
from .inference import predict_logits
from .metrics import classification_metrics

MNIST_FOLDER = "mnist-t10k"  # what the name ``mnist`` resolves to in the data dir
NAMES = ("digits", "mnist", "mnist-t10k")
CONFIG, WEIGHTS = "config.json", "model.safetensors"

# IDX type codes (third magic byte) -> big-endian numpy dtype
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


@dataclass
class ImageSplit:
    """A split of images: what the Trainer needs (``len``, ``lengths``, ``labels``, ``batch``).

    ``lengths`` are all the image height (the Trainer buckets by them; equal lengths keep the
    shuffled order), and ``batch`` returns ``(images (b, C, H, W), lengths (b,))``.
    """

    images: np.ndarray  # (n, channels, height, width) float32 in [0, 1]
    labels: np.ndarray | None = None  # (n,) int64
    scale: float = 1.0  # what the raw pixels were divided by (digits 16, uint8 IDX 255)

    def __len__(self) -> int:
        return len(self.images)

    @property
    def lengths(self) -> np.ndarray:
        return np.full(len(self.images), self.images.shape[2], dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(v) for v in self.images.shape[1:])

    def subset(self, idx: np.ndarray) -> ImageSplit:
        labels = None if self.labels is None else self.labels[idx]
        return ImageSplit(self.images[idx], labels, self.scale)

    def batch(self, idx: np.ndarray, min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs for rows ``idx`` (``min_len`` is for text and ignored here)."""
        images = torch.from_numpy(self.images[idx])  # (b, C, H, W)
        return images, torch.full((len(images),), images.shape[2], dtype=torch.int64)


# -- IDX files ----------------------------------------------------------------------------------
def read_idx(path: str | Path, ndim: int | None = None) -> np.ndarray:
    """Read one IDX file (gzipped or not) into an array; bad files fail naming the file.

    ``ndim`` (3 for images, 1 for labels) is checked against the magic number.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            raw = fh.read()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, zlib.error) as exc:  # OSError includes gzip.BadGzipFile
        raise DataError(f"{path}: cannot be read: {exc}") from None
    except EOFError:
        raise DataError(f"{path}: truncated gzip data (the file ends early)") from None
    if len(raw) < 4:
        raise DataError(f"{path}: truncated: {len(raw)} bytes, not even an IDX magic number")
    magic = int.from_bytes(raw[:4], "big")
    code, dims = raw[2], raw[3]
    if raw[:2] != b"\0\0" or code not in _IDX_TYPES or dims == 0 or (ndim and dims != ndim):
        want = f" (expected 0x{0x0800 + ndim:08x} for {ndim}-d uint8 data)" if ndim else ""
        raise DataError(f"{path}: wrong magic number 0x{magic:08x}{want}; not an IDX file?")
    header = 4 + 4 * dims
    if len(raw) < header:
        raise DataError(f"{path}: truncated header ({len(raw)} bytes)")
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims))
    dtype = np.dtype(_IDX_TYPES[code])
    need = int(np.prod(shape)) * dtype.itemsize
    have = len(raw) - header
    if have != need:
        what = "truncated" if have < need else "has trailing bytes"
        raise DataError(f"{path}: {what}: the header says {'x'.join(map(str, shape))} "
                        f"{dtype.name} ({need} bytes of data) but {have} bytes follow")
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    return data.astype(dtype.newbyteorder("="))  # native byte order, writable


def _find(folder: Path, prefix: str, kind: str) -> Path | None:
    for sep in ("-", "."):
        for suffix in ("", ".gz"):
            path = folder / f"{prefix}-{kind}{sep}idx{3 if kind == 'images' else 1}-ubyte{suffix}"
            if path.is_file():
                return path
    return None


def load_idx_folder(folder: str | Path) -> RawDataset:
    """A folder of IDX files: ``train-*`` / ``t10k-*`` pairs (see module docstring)."""
    folder = Path(folder)
    pairs = {}
    for prefix in ("train", "t10k"):
        images, labels = _find(folder, prefix, "images"), _find(folder, prefix, "labels")
        if (images is None) != (labels is None):
            have, miss = (images, "labels") if labels is None else (labels, "images")
            raise DataError(f"{folder}: found {have.name} but no matching {prefix}-{miss} file")
        if images is not None:
            pairs[prefix] = (images, labels)
    if not pairs:
        raise DataError(f"{folder}: no IDX files (expected e.g. t10k-images-idx3-ubyte.gz and "
                        "t10k-labels-idx1-ubyte.gz)")
    names = [str(i) for i in range(10)]
    meta = folder / "dataset.json"
    if meta.is_file():
        try:
            names = [str(n) for n in json.loads(meta.read_text(encoding="utf-8"))["label_names"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(f"{meta}: cannot read label_names: {exc}") from None
    splits = {}
    for prefix, (img_path, lab_path) in pairs.items():
        images, labels = read_idx(img_path, 3), read_idx(lab_path, 1)
        if len(images) != len(labels):
            raise DataError(f"{lab_path}: {len(labels)} labels for {len(images)} images in "
                            f"{img_path.name}")
        bad = (labels < 0) | (labels >= len(names))
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{lab_path}: label {int(labels[row])} at row {row} is outside the "
                            f"{len(names)} label names")
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        split = "all" if len(pairs) == 1 else ("train" if prefix == "train" else "test")
        splits[split] = ImageSplit((images[:, None] / scale).astype(np.float32),
                                   labels.astype(np.int64), scale)
    return RawDataset(str(folder), names, splits)


def load_digits() -> RawDataset:
    """scikit-learn's 8x8 digits as an ``all`` split (CV folds like the text sets)."""
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = (bunch.images[:, None] / 16.0).astype(np.float32)  # pixels 0..16
    return RawDataset("sklearn:load_digits", [str(i) for i in bunch.target_names],
                      {"all": ImageSplit(images, bunch.target.astype(np.int64), 16.0)})


def load_images(task: TaskConfig, data_dir: str | os.PathLike | None = None) -> RawDataset:
    """Resolve an image task's ``dataset``: a folder path, ``digits`` or ``mnist``."""
    spec = task.dataset
    path = Path(spec).expanduser()
    if path.is_dir():
        return load_idx_folder(path)
    if path.is_file():
        raise DataError(f"{path}: an image dataset is a folder of IDX files, not one file")
    if spec == "digits":
        return load_digits()
    if spec in ("mnist", MNIST_FOLDER):
        root = data_dir_from(data_dir)
        if root is None:
            raise DataError(f"'{spec}' is looked up as <data dir>/{MNIST_FOLDER}: set --data-dir "
                            "or $TEXTCNN_DATA_DIR, or give the folder's path")
        if not (root / MNIST_FOLDER).is_dir():
            raise DataError(f"'{spec}' not found: looked in {root / MNIST_FOLDER}")
        return load_idx_folder(root / MNIST_FOLDER)
    raise DataError(f"'{spec}' is not an image dataset (known: {', '.join(NAMES)}, or a folder "
                    "of IDX files); text datasets need a text model (model.name: textcnn)")


def image_format(raws: dict[str, RawDataset]) -> tuple[tuple[int, int, int], float]:
    """The one (channels, height, width) and pixel scale shared by every task's images."""
    firsts = {name: next(iter(raw.splits.values())) for name, raw in raws.items()}
    formats = {name: (s.shape, s.scale) for name, s in firsts.items()}
    if len(set(formats.values())) > 1:
        raise DataError(f"tasks have different image shapes or pixel scales {formats}; one "
                        "model takes one kind of image")
    return next(iter(formats.values()))


# -- the image model folder ---------------------------------------------------------------------
def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


class ImageClassifier:
    """A trained image model with its label names, image shape and pixel scale.

    ``predict_proba`` / ``predict`` take raw pixels as in the dataset files ((n, H, W) or
    (n, C, H, W); digits 0-16, MNIST 0-255) and answer in the shape of ``TextClassifier``.
    """

    def __init__(self, model: torch.nn.Module, config: Config, heads: dict[str, list[str]],
                 shape: tuple[int, int, int], scale: float = 255.0):
        self.model = model
        self.config = config
        self.heads = heads
        self.shape = tuple(shape)
        self.scale = scale

    def save_pretrained(self, path: str | Path) -> Path:
        from safetensors.torch import save_file

        from . import __version__

        path = Path(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        atomic_write(path / WEIGHTS, lambda tmp: save_file(state, tmp))
        write_json(path / CONFIG, {**self.config.to_dict(), "heads": self.heads,
                                   "image": {"shape": list(self.shape), "scale": self.scale},
                                   "textcnn_version": __version__})
        return path

    def predict_proba(self, images: np.ndarray, head: str | None = None) -> dict[str, np.ndarray]:
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if images.shape[1:] != self.shape:
            raise DataError(f"images of shape {images.shape[1:]}; this model takes {self.shape}")
        data = ImageSplit(np.ascontiguousarray(images / self.scale))
        logits = predict_logits(self.model, data, self.config.train.eval_batch_size)
        return {h: _softmax(v) for h, v in logits.items() if head in (None, h)}

    def predict(self, images: np.ndarray, top_k: int = 1) -> list[dict[str, list[dict]]]:
        probs = self.predict_proba(images)
        out: list[dict] = [{} for _ in range(len(images))]
        for h, p in probs.items():
            top = np.argsort(-p, axis=1, kind="stable")[:, :top_k]
            for row, ranks in enumerate(top):
                out[row][h] = [{"label": self.heads[h][j], "score": round(float(p[row, j]), 6)}
                               for j in ranks]
        return out


def is_image_folder(path: str | Path) -> bool:
    """True when ``path/config.json`` describes an image model."""
    try:
        raw = json.loads((Path(path) / CONFIG).read_text(encoding="utf-8"))
        return isinstance(raw, dict) and "image" in raw
    except (OSError, ValueError):
        return False


def load_image_model(path: str | Path) -> ImageClassifier:
    """Load an image model folder onto the CPU (the image twin of ``from_pretrained``)."""
    from safetensors.torch import load_file

    from .models import build_model

    path = Path(path)
    for name in (CONFIG, WEIGHTS):
        if not (path / name).is_file():
            raise ModelFolderError(f"model folder {path} is missing {name}")
    try:
        raw = json.loads((path / CONFIG).read_text(encoding="utf-8"))
        image, heads = raw.pop("image"), raw["heads"]
        config = from_dict(raw, saved=True)
        shape, scale = tuple(image["shape"]), float(image["scale"])
    except (ValueError, KeyError, TypeError, ConfigError) as exc:
        raise ModelFolderError(f"corrupt {path / CONFIG}: {exc}") from None
    model = build_model(config.model, shape[0], {h: len(n) for h, n in heads.items()})
    try:
        model.load_state_dict(load_file(str(path / WEIGHTS), device="cpu"))
    except Exception as exc:  # safetensors / shape mismatch
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelFolderError(f"{path / WEIGHTS}: {first}") from None
    model.eval()
    return ImageClassifier(model, config, heads, shape, scale)


def evaluate_image_folder(model_dir, dataset: str, split: str = "test", data_dir=None,
                          head: str | None = None) -> dict:
    """Metrics of a saved image model on ``split`` of an image dataset (``textcnn evaluate``)."""
    clf = load_image_model(model_dir)
    head = head or next(iter(clf.heads))
    if head not in clf.heads:
        raise ConfigError(f"--head {head!r}: this model has {', '.join(clf.heads)}")
    raw = load_images(TaskConfig(dataset=dataset), data_dir)
    parts = make_splits(raw, clf.config.train.seed) if split in ("train", "validation") \
        or raw.is_cv else raw.splits
    if split not in parts:
        raise DataError(f"{raw.source} has no split '{split}' (has: {', '.join(parts)})")
    if raw.label_names != clf.heads[head]:
        raise DataError(f"{raw.source}: labels {raw.label_names} do not match head '{head}'")
    logits = predict_logits(clf.model, parts[split], clf.config.train.eval_batch_size)[head]
    return {head: {split: classification_metrics(parts[split].labels, logits)}}
