"""Where a task's data is: the one resolver for every way a config names a dataset, and the one
reader of a dataset folder's ``dataset.json``.

A task's ``dataset`` is resolved once, the same way whether its rows are then read whole, read
as a stream while training, or scored by ``textcnn evaluate``:

1. a path: a folder (``dataset.json`` beside ``<split>.jsonl``, or bare split files) or one
   ``.jsonl`` / ``.csv`` / ``.tsv`` / ``.parquet`` file;
2. a known name (``sst2``...): ``<data dir>/<name>/dataset.json``, the data dir coming from
   ``--data-dir`` or ``$TEXTCNN_DATA_DIR``;
3. for a streamed split, a glob of shards (``shards/train-*.jsonl``);
4. otherwise the Hugging Face Hub (the known name's Hub id, or the name itself).

Finding the data is cut from reading it (:mod:`textcnn.data.formats`) because every reader, the
eager one, the stream and the scorer, must agree on which folder a name means and on what its
``dataset.json`` declares (label names, column names); a second resolver would let them drift.

Example
-------
>>> folder = tmp_dir / "toy"
>>> folder.mkdir()
>>> _ = (folder / "dataset.json").write_text('{"label_names": ["neg", "pos"]}')
>>> _ = (folder / "train.jsonl").write_text('{"text": "fine", "label": 1}\\n')
>>> place = resolve("toy", tmp_dir)
>>> place.kind, place.path.name, place.meta.label_names
('folder', 'toy', ['neg', 'pos'])
>>> [p.name for p in split_files(place.path, "train")]
['train.jsonl']
"""

from __future__ import annotations

import dataclasses
import glob
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError

SPLIT_NAMES = ("train", "validation", "test", "all")
# file suffix -> its format (the reader in textcnn.data.formats)
FILE_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv",
                ".parquet": "parquet"}
META = "dataset.json"


@dataclass(frozen=True)
class HubSpec:
    hub_id: str
    text_column: str = "text"
    label_column: str = "label"


# Known names -> their closest Hub copy. Label ids agree with the local copies except TREC,
# whose Hub "coarse_label" numbers classes differently.
KNOWN: dict[str, HubSpec] = {
    "sst2": HubSpec("SetFit/sst2"),
    "sst5": HubSpec("SetFit/sst5"),
    "mr": HubSpec("cornell-movie-review-data/rotten_tomatoes"),
    "subj": HubSpec("SetFit/subj"),
    "trec": HubSpec("CogComp/trec", label_column="coarse_label"),
    "20newsgroups": HubSpec("SetFit/20_newsgroups"),
    "ag_news": HubSpec("fancyzhx/ag_news"),
}


@dataclass(frozen=True)
class Meta:
    """What a folder's ``dataset.json`` declares (all None when it has none)."""

    label_names: list[str] | None = None
    text_column: str | None = None
    label_column: str | None = None
    path: Path | None = None  # the file, for messages
    raw: dict = field(default_factory=dict)  # every entry, for tools reading more of it

    def apply(self, task):
        """``task`` with the folder's column names where the task keeps the defaults (an
        explicit setting wins)."""
        text = self.text_column if self.text_column and task.text_column == "text" \
            else task.text_column
        label = self.label_column if self.label_column and task.label_column == "label" \
            else task.label_column
        return dataclasses.replace(task, text_column=text, label_column=label)


def read_meta(folder: Path | None) -> Meta:
    """The ``dataset.json`` of ``folder`` (an empty :class:`Meta` when there is none); a file
    that is not a JSON object, or whose ``label_names`` are not distinct names, fails naming
    it."""
    from .labels import check_names

    path = folder / META if folder is not None else None
    if path is None or not path.is_file():
        return Meta()
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a JSON object, got {type(raw).__name__}")
    names = raw.get("label_names")
    if names is not None:
        try:
            names = check_names(names)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None
    return Meta(names, raw.get("text_column"), raw.get("label_column"), path, raw)


def data_dir_from(data_dir: str | os.PathLike | None) -> Path | None:
    """``data_dir``, else ``$TEXTCNN_DATA_DIR``, else None."""
    value = data_dir or os.environ.get("TEXTCNN_DATA_DIR")
    return Path(value) if value else None


@dataclass(frozen=True)
class Place:
    """Where a dataset is: ``kind`` is ``folder``, ``file``, ``shards`` or ``hub``."""

    kind: str
    spec: str  # what the task named
    path: Path | None = None  # the folder or file
    files: tuple[Path, ...] = ()  # the shards of a glob
    local: Path | None = None  # where a name was looked for in the data dir (messages)
    meta: Meta = field(default_factory=Meta)

    @property
    def folder(self) -> Path | None:
        return self.path if self.kind == "folder" else None


def looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))


def local_folder(spec: str, data_dir: str | os.PathLike | None, bare: bool = False
                 ) -> Path | None:
    """``<data dir>/<spec>`` when it holds a ``dataset.json`` (with ``bare``, when it is a
    folder at all), else None."""
    root = data_dir_from(data_dir)
    local = root / spec if root else None
    if local is None or not (local / META).is_file() and not (bare and local.is_dir()):
        return None
    return local


def resolve(spec: str, data_dir: str | os.PathLike | None = None, shards: bool = False,
            bare: bool = False) -> Place:
    """Where ``spec`` is (see the module docstring); ``shards`` lets a glob name the files of
    a streamed split (there is no Hub to fall back on then); ``bare`` takes a data-dir folder
    without ``dataset.json`` too (shards and image folders need none). Fails naming what was
    looked for when a path, a glob or (with ``shards``) a name matches nothing."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return Place("folder", spec, path, meta=read_meta(path))
    if path.is_file():
        return Place("file", spec, path)
    local = local_folder(spec, data_dir, bare or shards)
    if local is not None:
        return Place("folder", spec, local, meta=read_meta(local))
    if shards:
        files = sorted(glob.glob(str(path)))
        if not files:
            raise DataError(f"no file matches {spec!r} (a streamed dataset is a folder, a file "
                            "or a glob of shards on this machine)")
        for f in files:
            if Path(f).suffix.lower() not in FILE_FORMATS:
                raise DataError(f"{f}: unsupported file type (use {', '.join(FILE_FORMATS)})")
        return Place("shards", spec, files=tuple(Path(f) for f in files))
    if path.suffix.lower() in FILE_FORMATS or os.sep in spec and not looks_like_hub_id(spec):
        raise DataError(f"dataset path not found: {path}")
    root = data_dir_from(data_dir)
    return Place("hub", spec, local=root / spec if root else None)


def split_file(folder: Path | None, split: str) -> Path | None:
    """``<split>.<ext>`` of ``folder`` (the first format that has one), else None."""
    if folder is not None:
        for ext in FILE_FORMATS:
            if (folder / f"{split}{ext}").is_file():
                return folder / f"{split}{ext}"
    return None


def split_files(folder: Path, split: str) -> list[Path]:
    """The shards of ``split``: ``<split>.<ext>``, ``<split>-*.<ext>`` or ``<split>/*.<ext>``
    in ``folder``, sorted (the first format that has any)."""
    for ext in FILE_FORMATS:
        found = sorted(glob.glob(str(folder / f"{split}{ext}"))
                       + glob.glob(str(folder / f"{split}-*{ext}"))
                       + glob.glob(str(folder / split / f"*{ext}")))
        if found:
            return [Path(f) for f in found]
    return []


def folder_splits(folder: Path) -> dict[str, Path]:
    """``{split: file}`` of the split files a dataset folder holds; fails when it holds none."""
    files = {split: path for split in SPLIT_NAMES
             if (path := split_file(folder, split)) is not None}
    if not files:
        raise DataError(
            f"{folder}: no split files (train/validation/test/all .jsonl/.csv/.tsv/.parquet)")
    return files
