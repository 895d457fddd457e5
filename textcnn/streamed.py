"""A streamed task as a run's data: its label names, in-memory validation / test, the tokenizer
trained on a bounded sample, and the modality that hands the trainer a stream.

``tasks.<name>.stream: true`` makes :func:`textcnn.modality.modality_for` choose
:class:`StreamModality`: the training split stays on disk (:mod:`textcnn.streaming`) and is
read, tokenized and batched while training (:mod:`textcnn.training.stream`); validation and
test are read into memory. Label names come from ``tasks.<name>.labels``, else the folder's
``dataset.json``, else the sorted labels of the tokenizer sample, validation and test.

Example
-------
>>> from textcnn.config import from_dict
>>> from textcnn.modality import modality_for
>>> config = from_dict({"tasks": {"sentiment": {"dataset": str(sst2_slice), "stream": True}},
...                     "tokenizer": {"sample": 200}})
>>> dataset = modality_for(config).load_dataset(config.tasks["sentiment"])
>>> dataset.label_names, len(dataset.splits["validation"]), len(dataset.train.files)
(['negative', 'positive'], 100, 1)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .config import Config, TaskConfig
from .data import RawDataset, Split
from .errors import DataError
from .modality import PreparedData, TextModality, cut_note
from .streaming import StreamSource, find_stream, read_rows, split_file
from .tokenizer import encode, train_tokenizer
from .training.batching import Encoded
from .training.stream import StreamedSplit, StreamTrainer, label_id

IN_MEMORY_SPLITS = ("validation", "test")


@dataclass
class StreamedDataset(RawDataset):
    """A :class:`~textcnn.data.RawDataset` whose training split is the stream ``train``."""

    train: StreamSource = field(default_factory=lambda: StreamSource([]))
    label_ids: dict = field(default_factory=dict)  # label name (or id) -> id
    sample: list[str] = field(default_factory=list)  # texts the tokenizer is trained on


def folder_meta(folder: Path | None, task: TaskConfig) -> tuple[list | None, TaskConfig]:
    """``dataset.json``'s label names and the task with the folder's column names."""
    meta_path = folder / "dataset.json" if folder is not None else None
    if meta_path is None or not meta_path.is_file():
        return None, task
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{meta_path}: not valid JSON: {exc}") from None
    text_col = meta.get("text_column", "text") if task.text_column == "text" else task.text_column
    label_col = (meta.get("label_column", "label") if task.label_column == "label"
                 else task.label_column)
    return meta.get("label_names"), replace(task, text_column=text_col, label_column=label_col)


def label_index(names: list | None, seen: list[tuple]) -> tuple[list[str], dict]:
    """``(label names, value -> id)``: given names (ids accepted too), else the sorted values
    of the ``(label, where)`` pairs ``seen`` (the rule of :func:`textcnn.data.load_raw`)."""
    if names:
        names = [str(n) for n in names]
        return names, {**{i: i for i in range(len(names))}, **{n: i for i, n in enumerate(names)}}
    for value, where in seen:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise DataError(f"{where}: label {value!r} is neither a label name nor an id")
    uniq = sorted({value for value, _ in seen}, key=lambda v: (isinstance(v, str), v))
    return [str(v) for v in uniq], {v: i for i, v in enumerate(uniq)}


def load_stream(task: TaskConfig, data_dir=None, tokenizer_sample: int = 100_000
                ) -> StreamedDataset:
    """A streamed task's dataset: its shards, label names and in-memory validation / test."""
    files, folder = find_stream(task.dataset, data_dir)
    names, task = folder_meta(folder, task)
    source = StreamSource(files, task.text_column, task.label_column)
    rows = {}
    for split in IN_MEMORY_SPLITS:
        path = split_file(folder, split, getattr(task, split))
        if path is not None:
            rows[split] = list(read_rows(path, task.text_column, task.label_column))
    if "validation" not in rows:
        raise DataError(f"{task.dataset}: a streamed task needs a validation split: a "
                        "validation file in its folder, or tasks.<name>.validation")
    sample = list(source.head(tokenizer_sample))
    seen = [(label, where) for part in (sample, *rows.values()) for _, label, where in part]
    names, ids = label_index(task.labels or names, seen)
    splits = {split: Split([text for text, _, _ in part],
                           np.array([label_id(ids, label, where) for _, label, where in part],
                                    dtype=np.int64))
              for split, part in rows.items()}
    for text, _, where in sample:
        if not isinstance(text, str):
            raise DataError(f"{where}: text field '{task.text_column}' is not a string")
    return StreamedDataset(f"stream:{task.dataset}", names, splits, train=source, label_ids=ids,
                           sample=[text for text, _, _ in sample])


class StreamModality(TextModality):
    """Texts whose training split is streamed; see the module docstring.

    ``tokenizer_sample`` (``tokenizer.sample``) rows from the head of the shards train the
    tokenizer and, with validation and test, name the labels when nothing else does.
    """

    def __init__(self, tokenizer_sample: int = 100_000):
        self.tokenizer_sample = tokenizer_sample

    def load_dataset(self, task: TaskConfig, data_dir=None) -> StreamedDataset:
        return load_stream(task, data_dir, self.tokenizer_sample)

    def prepare(self, config: Config, datasets: dict[str, StreamedDataset], fold: int = 0,
                saved_state: dict | None = None) -> PreparedData:
        ((name, dataset),) = datasets.items()
        if saved_state is not None:
            tokenizer = Tokenizer.from_str(saved_state["tokenizer"])
        elif config.tokenizer.kind == "pretrained":
            tokenizer = self.pretrained_tokenizer(config)
        else:
            tokenizer = train_tokenizer(dataset.sample, config.tokenizer)
        parts = {split: Encoded(*encode(tokenizer, part.texts), part.labels)
                 for split, part in dataset.splits.items()}
        parts["train"] = StreamedSplit(dataset.train, tokenizer.to_str(), dataset.label_ids)
        data = self.prepared(datasets, {name: parts}, tokenizer)
        data.description += cut_note(tokenizer, [dataset.sample, *(part.texts for part in
                                                                   dataset.splits.values())])
        data.trainer_class = StreamTrainer
        return data
