"""A dataset read whole: every split's texts and class ids, before the cut into train /
validation / test.

:func:`load_raw` resolves a task's ``dataset`` (:mod:`textcnn.data.resolve`), reads each split
file with its format's reader (:func:`textcnn.data.formats.read_split`) or the Hub
(:mod:`textcnn.data.hub`), and turns the labels into class ids once, by the rules of
:mod:`textcnn.data.labels` (label sets: :mod:`textcnn.multilabel`). What is read is kept apart
from how it is cut (:mod:`textcnn.data.splits`): a model is scored on the same rows it was
trained against only if both cuts are drawn from one loaded dataset. A file without rows, one
that is not UTF-8, one with a line over :data:`textcnn.texts.MAX_LINE_BYTES` (checked in
bounded blocks before a parser reads it) or a text that :func:`textcnn.texts.text_problem`
refuses fails naming the file (and line).

Example
-------
>>> raw = load_raw(TaskConfig(dataset=str(sst2_slice)))
>>> sorted(raw.splits), raw.label_names
(['test', 'train', 'validation'], ['negative', 'positive'])
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..config import TaskConfig
from ..errors import DataError
from .formats import read_split, where
from .hub import read_hub
from .labels import label_set, multi_hot, normalize
from .resolve import Meta, folder_splits, resolve

N_FOLDS = 10


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (n,) int64 label ids; (n, labels) float32 multi-hot (multi-label)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray) -> Split:
        return Split([self.texts[i] for i in idx], self.labels[idx])


@dataclass
class RawDataset:
    """A loaded dataset before the train/validation/test cut."""

    source: str  # where it came from, for messages
    label_names: list[str]
    splits: dict[str, Split]
    folds: np.ndarray | None = None  # (n,) fold ids of the ``all`` split
    # split -> how a message names its row i ("file:line"), when known
    locators: dict[str, Callable[[int], str]] = field(default_factory=dict)

    def locate(self, split: str, index: int) -> str:
        """Where row ``index`` of ``split`` is, for messages: ``file:line`` when known."""
        if split in self.locators:
            return self.locators[split](index)
        return f"{self.source} ({split} row {index + 1})"

    @property
    def is_cv(self) -> bool:
        return "all" in self.splits and "train" not in self.splits


def load_raw(task: TaskConfig, data_dir: str | os.PathLike | None = None) -> RawDataset:
    """Resolve ``task.dataset`` (:func:`textcnn.data.resolve.resolve`) and load every split it
    has."""
    place = resolve(task.dataset, data_dir)
    if place.kind == "folder":
        return _load_files(folder_splits(place.path), place.meta.apply(task), place.meta,
                           str(place.path))
    if place.kind == "file":
        return _load_files({"all": place.path}, task, Meta(), str(place.path))
    source, raw, names = read_hub(task.dataset, task, place.local)
    columns = {split: (texts, labels, lambda i, p=path: f"{p}: row {i + 1}")
               for split, (texts, labels, path) in raw.items()}
    return labels_to_ids(source, columns, names, None, task)


def _load_files(files: dict[str, Path], task: TaskConfig, meta: Meta, source: str
                ) -> RawDataset:
    columns, folds = {}, None
    no_label_ok = task.multi_label  # an empty CSV cell: a row without labels
    for split, path in files.items():
        part = read_split(path, task.text_column, task.label_column, no_label_ok)
        if split == "all":
            folds = part.folds
        columns[split] = (part.texts, part.labels, _locator(path, part.lines))
    return labels_to_ids(source, columns, meta.label_names, folds, task)


def _locator(path: Path, lines: list) -> Callable[[int], str]:
    """How a message names row ``i`` of ``path`` (its lines kept compactly, not the rows)."""
    starts = None if any(line is None for line in lines) else np.asarray(lines, dtype=np.int64)
    return lambda i: where(path, i, None if starts is None else int(starts[i]))


def labels_to_ids(source: str, columns: dict, label_names, folds,
                  task: TaskConfig | None = None) -> RawDataset:
    """The dataset of ``{split: (texts, raw labels, locate row)}`` with every split's labels as
    class ids (the rules of :mod:`textcnn.data.labels`; an error names the file and line); a
    ``multi_label`` task's labels become ``(n, labels)`` multi-hot rows instead."""
    locators = {split: locate for split, (_, _, locate) in columns.items()}

    def locate(split: str, i: int) -> str:
        return locators[split](i)

    if task is not None and task.multi_label:
        sets = {split: [label_set(v, task.label_separator) for v in labels]
                for split, (_, labels, _) in columns.items()}
        train = "train" if "train" in sets else "all"
        if train in sets and not any(sets[train]):
            rows = "training row's" if train == "train" else "row's"
            raise DataError(f"{source}: no labels: every {rows} label set in column "
                            f"'{task.label_column}' is empty; a multi-label task needs rows "
                            "with labels")
        names, ids = multi_hot(sets, label_names, locate)
    else:
        names, ids = normalize({split: labels for split, (_, labels, _) in columns.items()},
                               label_names, locate)
    splits = {split: Split(list(texts), ids[split]) for split, (texts, _, _) in columns.items()}
    return RawDataset(source, names, splits, folds, locators)
