"""Image datasets for the 2D path: scikit-learn's digits, MNIST and folders of IDX files.

Datasets (a task's ``dataset`` in an image config, ``model.name: imagecnn``):

- ``digits``: scikit-learn's bundled 8x8 digits (1,797 images, pixels 0-16; no download);
- ``mnist`` (or ``mnist-t10k``): ``<data dir>/mnist-t10k``, the data dir coming from
  ``--data-dir`` or ``$TEXTCNN_DATA_DIR``;
- a path: a folder of standard IDX files (``*-images-idx3-ubyte`` with ``*-labels-idx1-ubyte``,
  gzipped or not). ``train-*`` and ``t10k-*`` together give a train and a test split; one pair
  alone is an ``all`` split.

Like the text sets, an ``all`` split is cross-validated on folds from
``StratifiedKFold(10, shuffle=True, random_state=0)`` (``splits.cv_folds``), so ``textcnn train``
tests on fold 0 and ``textcnn cv`` on every fold. Pixels are scaled to [0, 1].

Image models are trained, saved and loaded like text models (``textcnn.load`` opens either
folder); their classifier, :class:`~textcnn.ImageClassifier`, takes raw pixels.

Example
-------
>>> raw = load_images(TaskConfig(dataset="digits"))
>>> raw.splits["all"].images.shape, raw.label_names[:3]
((1797, 1, 8, 8), ['0', '1', '2'])
"""

from __future__ import annotations

import gzip
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..config import TaskConfig
from ..errors import DataError
from .dataset import RawDataset
from .labels import LabelMap
from .resolve import data_dir_from, read_meta, resolve

MNIST_FOLDER = "mnist-t10k"  # what the name ``mnist`` resolves to in the data dir
NAMES = ("digits", "mnist", "mnist-t10k")

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
    meta = read_meta(folder)
    if meta.path is not None and meta.label_names is None:
        raise DataError(f"{meta.path}: cannot read label_names: it has none")
    names = meta.label_names or [str(i) for i in range(10)]
    splits = {}
    for prefix, (img_path, lab_path) in pairs.items():
        images, labels = read_idx(img_path, 3), read_idx(lab_path, 1)
        if len(images) != len(labels):
            raise DataError(f"{lab_path}: {len(labels)} labels for {len(images)} images in "
                            f"{img_path.name}")
        labels = LabelMap.declared(names).column(labels.tolist(),
                                                 lambda i, p=lab_path: f"{p}: row {i + 1}")
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        split = "all" if len(pairs) == 1 else ("train" if prefix == "train" else "test")
        splits[split] = ImageSplit((images[:, None] / scale).astype(np.float32), labels, scale)
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
    if spec == "digits" and not Path(spec).exists():
        return load_digits()
    known = spec in ("mnist", MNIST_FOLDER)
    if Path(spec).expanduser().exists() or known:  # a path, or <data dir>/mnist-t10k
        place = resolve(MNIST_FOLDER if known else spec, data_dir, bare=True)
        if place.kind == "file":
            raise DataError(f"{place.path}: an image dataset is a folder of IDX files, not one "
                            "file")
        if place.kind == "folder":
            return load_idx_folder(place.path)
        root = data_dir_from(data_dir)
        if root is None:
            raise DataError(f"'{spec}' is looked up as <data dir>/{MNIST_FOLDER}: set --data-dir "
                            "or $TEXTCNN_DATA_DIR, or give the folder's path")
        raise DataError(f"'{spec}' not found: looked in {root / MNIST_FOLDER}")
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
