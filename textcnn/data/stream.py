"""A streamed split: a training split kept on disk and read, tokenized and batched while the
model trains, with memory flat in the corpus size.

``tasks.<name>.stream: true`` makes a task's training split one of these instead of arrays in
memory. It is a kind of split, not a kind of input or of training loop: the text modality
prepares it beside the in-memory validation and test splits, and the one trainer draws its
batches from :meth:`StreamedSplit.epoch` where it would plan an in-memory split's epoch. So a
stream combines with whatever else a run does.

- **Finding the shards**: the training split is one file, a glob of shards, or a dataset
  folder's ``train`` shards (``train.jsonl``, ``train-*.jsonl``, ``train/*.jsonl``; ``.csv``,
  ``.tsv`` and ``.parquet`` likewise), resolved as every dataset is
  (:func:`textcnn.data.resolve.resolve`).
- **Reading**: :class:`StreamSource` reads rows lazily with the formats' readers
  (:func:`textcnn.data.formats.read_rows`): ``parts`` readers (every DataLoader worker of every
  rank) each take whole shards when there are enough of them, else every ``parts``-th row of
  each shard, so no row is read twice and none is skipped. Only one row (or one Parquet record
  batch) is in memory at a time.
- **Labels**: named by ``tasks.<name>.labels``, else the folder's ``dataset.json``, else the
  sorted labels of the tokenizer sample, validation and test, and mapped to ids by the one
  :class:`~textcnn.data.labels.LabelMap` rule.
- **Batching**: each reader tokenizes rows in groups, passes them through a shuffle buffer of
  ``train.shuffle_buffer`` rows, sorts chunks of ``train.bucket_chunks`` batches by length and
  yields the chunk's batches in random order. An epoch is one pass over the stream, or
  ``train.steps_per_epoch`` batches (the stream then runs on across epochs); the position in
  the stream is kept in every checkpoint, so ``--resume`` continues where the run stopped.

Example
-------
>>> path = tmp_dir / "train.jsonl"
>>> _ = path.write_text('{"text": "a good film", "label": 1}\\n{"text": "dull", "label": 0}\\n')
>>> source = StreamSource([str(path)])
>>> [(text, label) for text, label, _ in source.rows()], source.count()
([('a good film', 1), ('dull', 0)], 2)
>>> [text for text, _, _ in source.rows(part=1, parts=2)]
['dull']
>>> import itertools
>>> rng = np.random.default_rng(0)
>>> rows = ((np.zeros(i % 7, np.int32), i % 2) for i in itertools.count())  # endless
>>> batches = bucketed(shuffled(rows, 100, rng), batch_size=4, chunk_batches=5, rng=rng)
>>> [len(b) for b in itertools.islice(batches, 3)]
[4, 4, 4]
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..config import TaskConfig
from ..errors import DataError
from ..tokenizer import bounded, guarded
from .dataset import RawDataset, Split
from .formats import Row, count_rows, read_rows
from .labels import LabelMap
from .resolve import resolve, split_file, split_files

IN_MEMORY_SPLITS = ("validation", "test")
ENCODE_GROUP = 512  # texts tokenized per call (one encode_batch)
RANDOM_BLOCK = 4096  # buffer slots drawn per call to the generator


@dataclass
class StreamSource:
    """The shards of a streamed split and the columns read from them (picklable: it travels to
    DataLoader workers)."""

    files: list[str]
    text_column: str = "text"
    label_column: str = "label"
    _count: int | None = field(default=None, repr=False, compare=False)

    def parts_of(self, part: int, parts: int) -> list[tuple[str, int, int]]:
        """``(file, row part, row parts)`` read by reader ``part`` of ``parts``."""
        if len(self.files) >= parts:
            return [(f, 0, 1) for f in self.files[part::parts]]
        return [(f, part, parts) for f in self.files]

    def rows(self, part: int = 0, parts: int = 1) -> Iterator[Row]:
        """The rows reader ``part`` of ``parts`` takes, in file order."""
        for path, row_part, row_parts in self.parts_of(part, parts):
            yield from read_rows(Path(path), self.text_column, self.label_column,
                                 row_part, row_parts)

    def head(self, n: int) -> Iterator[Row]:
        """At most ``n`` rows, taken evenly from the head of every shard (a bounded sample)."""
        per_file = -(-n // len(self.files))
        for path in self.files:
            for i, row in enumerate(read_rows(Path(path), self.text_column, self.label_column)):
                if i >= per_file:
                    break
                yield row

    def count(self) -> int:
        """Rows in all shards: Parquet metadata, else one pass over the bytes (no parsing);
        counted once."""
        if self._count is None:
            self._count = sum(count_rows(Path(f)) for f in self.files)
        return self._count


# -- a streamed task's dataset -----------------------------------------------------------------
@dataclass
class StreamedDataset(RawDataset):
    """A :class:`~textcnn.data.RawDataset` whose training split is the stream ``train``."""

    train: StreamSource = field(default_factory=lambda: StreamSource([]))
    labels: LabelMap = field(default_factory=lambda: LabelMap([], {}))
    sample: list[str] = field(default_factory=list)  # texts the tokenizer is trained on


def _in_memory_file(folder: Path | None, split: str, explicit: str) -> Path | None:
    """The in-memory ``split`` (validation / test) of a streamed task: ``explicit`` when given,
    else the folder's ``<split>.<ext>``."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DataError(f"tasks.<name>.{split}: file not found: {path}")
        return path
    return split_file(folder, split)


def load_stream(task: TaskConfig, data_dir=None, tokenizer_sample: int = 100_000
                ) -> StreamedDataset:
    """A streamed task's dataset: its shards, label names and in-memory validation / test."""
    place = resolve(task.dataset, data_dir, shards=True)
    names = None
    if place.kind == "folder":
        files = split_files(place.path, "train")
        if not files:
            raise DataError(f"{place.path}: no train shards to stream (train.jsonl, "
                            "train-*.jsonl, train/*.jsonl; or .csv/.tsv/.parquet)")
        task, names = place.meta.apply(task), place.meta.label_names
    else:
        files = [place.path] if place.kind == "file" else list(place.files)
    source = StreamSource([str(f) for f in files], task.text_column, task.label_column)
    rows = {}
    for split in IN_MEMORY_SPLITS:
        path = _in_memory_file(place.folder, split, getattr(task, split))
        if path is not None:
            rows[split] = list(read_rows(path, task.text_column, task.label_column))
    if "validation" not in rows:
        raise DataError(f"{task.dataset}: a streamed task needs a validation split: a "
                        "validation file in its folder, or tasks.<name>.validation")
    sample = list(source.head(tokenizer_sample))
    seen = {"sample": sample, **rows}
    labels = LabelMap.of({split: [label for _, label, _ in part] for split, part in seen.items()},
                         task.labels or names, lambda split, i: seen[split][i][2])
    splits = {split: Split([text for text, _, _ in part],
                           labels.column([label for _, label, _ in part],
                                         lambda i, part=part: part[i][2]))
              for split, part in rows.items()}
    locators = {split: (lambda i, part=part: part[i][2]) for split, part in rows.items()}
    return StreamedDataset(f"stream:{task.dataset}", labels.names, splits, locators=locators,
                           train=source, labels=labels, sample=[text for text, _, _ in sample])


# -- batches from the stream --------------------------------------------------------------------
def node() -> tuple[int, int]:
    """``(rank, world size)`` of this process: ``torch.distributed``'s once a process group is
    initialised (torchrun), else ``(0, 1)``. This is where a stream is split across ranks, as
    ``datasets.distributed.split_dataset_by_node`` would: rank ``r`` of ``w`` with ``k`` workers
    each reads part ``r * k + worker`` of ``w * k``."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def shuffled(items: Iterable, size: int, rng: np.random.Generator) -> Iterator:
    """``items`` in random order through a buffer of at most ``size`` (a reservoir shuffle):
    once the buffer is full, every new item replaces a random one, which is emitted."""
    buffer: list = []
    slots = iter(())
    for item in items:
        if len(buffer) < size:
            buffer.append(item)
            continue
        j = next(slots, None)
        if j is None:
            slots = iter(rng.integers(size, size=RANDOM_BLOCK).tolist())
            j = next(slots)
        yield buffer[j]
        buffer[j] = item
    for j in rng.permutation(len(buffer)):
        yield buffer[j]


def bucketed(items: Iterable, batch_size: int, chunk_batches: int, rng: np.random.Generator
             ) -> Iterator[list]:
    """Batches of ``(ids, label)`` rows: chunks of ``chunk_batches`` batches sorted by length,
    each chunk's batches in random order (the in-memory plan's bucketing, one chunk at a time)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == batch_size * chunk_batches:
            yield from _cut(chunk, batch_size, rng)
            chunk = []
    if chunk:
        yield from _cut(chunk, batch_size, rng)


def _cut(chunk: list, batch_size: int, rng: np.random.Generator) -> Iterator[list]:
    chunk.sort(key=lambda row: len(row[0]))
    batches = [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    for i in rng.permutation(len(batches)):
        yield batches[i]


def collate(rows: list, min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``ids (b, t)`` padded with 0 to the longest row (at least ``min_len``), ``lengths (b,)``
    and ``labels (b,)``, all int64."""
    lengths = np.fromiter((len(ids) for ids, _ in rows), dtype=np.int64, count=len(rows))
    ids = np.zeros((len(rows), max(int(lengths.max(initial=0)), min_len)), dtype=np.int64)
    for row, (tokens, _) in zip(ids, rows):
        row[:len(tokens)] = tokens
    labels = np.fromiter((label for _, label in rows), dtype=np.int64, count=len(rows))
    return torch.from_numpy(ids), torch.from_numpy(lengths), torch.from_numpy(labels)


@dataclass
class StreamFailure:
    """A worker's bad-input error, handed to the training process to raise as one line."""

    message: str


def encoded_rows(rows: Iterable[Row], tokenizer: Tokenizer, labels: LabelMap
                 ) -> Iterator[tuple]:
    """``(ids int32 array, label id)`` per row, tokenized ``ENCODE_GROUP`` rows at a time."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    group: list = []

    def flush():
        texts = bounded(tokenizer, [text for text, _ in group])
        encodings = guarded(encode, texts, add_special_tokens=False)
        out = [(np.asarray(e.ids, dtype=np.int32), label) for e, (_, label) in
               zip(encodings, group)]
        group.clear()
        return out

    for text, label, where in rows:
        group.append((text, labels.id(label, where)))
        if len(group) == ENCODE_GROUP:
            yield from flush()
    if group:
        yield from flush()


class TextStream(IterableDataset):
    """One pass over a streamed split as training batches ``(ids, lengths, labels)``.

    Parameters
    ----------
    source : StreamSource
    tokenizer : str
        The tokenizer as JSON (``Tokenizer.to_str()``), rebuilt in each worker.
    labels : LabelMap
        Label value -> label id.
    batch_size, chunk_batches, buffer, min_len, seed : int
        From ``train``; ``min_len`` is the model's widest kernel.
    pass_index : int
        Which pass: it seeds the shuffles with ``seed``, so every pass differs and repeats.
    """

    def __init__(self, source: StreamSource, tokenizer: str, labels: LabelMap, batch_size: int,
                 chunk_batches: int, buffer: int, min_len: int = 1, seed: int = 0,
                 pass_index: int = 0):
        super().__init__()
        self.source, self.tokenizer, self.labels = source, tokenizer, labels
        self.batch_size, self.chunk_batches, self.buffer = batch_size, chunk_batches, buffer
        self.min_len, self.seed, self.pass_index = min_len, seed, pass_index
        self.rank, self.world_size = node()

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        part, parts = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng([self.seed, self.pass_index, part])
        tokenizer = Tokenizer.from_str(self.tokenizer)
        rows = encoded_rows(self.source.rows(part, parts), tokenizer, self.labels)
        try:
            for batch in bucketed(shuffled(rows, self.buffer, rng), self.batch_size,
                                  self.chunk_batches, rng):
                yield collate(batch, self.min_len)
        except DataError as exc:  # a worker's traceback would bury the one-line message
            yield StreamFailure(str(exc))


class StreamedSplit:
    """A training split read as a stream; ``len()`` is its row count (counted once).

    ``position`` is ``[pass, batches taken in it]``: where :meth:`epoch` goes on from, kept in
    every checkpoint (``stream_position``).
    """

    streamed = True  # what the trainer asks of a split before planning its epoch

    def __init__(self, source: StreamSource, tokenizer: str, labels: LabelMap):
        self.source, self.tokenizer, self.labels = source, tokenizer, labels
        self.position = [0, 0]
        self._iterator: Iterator | None = None

    def __len__(self) -> int:
        return self.source.count()

    def batches(self, train_cfg, pass_index: int, skip: int = 0, min_len: int = 1
                ) -> Iterator[tuple]:
        """The batches of pass ``pass_index`` after the first ``skip`` (a resumed position)."""
        stream = TextStream(self.source, self.tokenizer, self.labels, train_cfg.batch_size,
                            train_cfg.bucket_chunks, train_cfg.shuffle_buffer, min_len,
                            train_cfg.seed, pass_index)
        workers = train_cfg.loader_workers
        if workers:  # the trained tokenizer ran threads in this process; workers encode alone
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        loader = DataLoader(stream, batch_size=None, num_workers=workers)
        for i, item in enumerate(loader):
            if isinstance(item, StreamFailure):
                raise DataError(item.message)
            if i >= skip:
                yield item

    def epoch(self, train_cfg, min_len: int, task: str) -> Iterator[tuple]:
        """One epoch's ``((ids, lengths), labels)`` batches: the rest of the current pass, or
        ``train.steps_per_epoch`` batches (this rank's own: the stream is split by rank)."""
        limit = train_cfg.steps_per_epoch
        taken = 0
        while not limit or taken < limit:
            batch = self._next_batch(train_cfg, min_len, task)
            if batch is None:  # a pass ended
                if not limit:
                    return
                continue
            taken += 1
            ids, lengths, labels = batch
            yield (ids, lengths), labels

    def _next_batch(self, train_cfg, min_len: int, task: str) -> tuple | None:
        if self._iterator is None:
            self._iterator = self.batches(train_cfg, self.position[0], self.position[1], min_len)
        batch = next(self._iterator, None)
        if batch is None:
            if self.position[1] == 0:
                raise DataError(f"tasks.{task}: the streamed training split is empty")
            self.position, self._iterator = [self.position[0] + 1, 0], None
            return None
        self.position[1] += 1
        return batch

    def restore(self, position: list[int]) -> None:
        """Go on from ``position`` (a checkpoint's ``stream_position``)."""
        self.position, self._iterator = list(position), None
