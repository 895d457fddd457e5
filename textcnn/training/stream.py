"""Training on a streamed split: tokenized on the fly in DataLoader workers, shuffled in a bounded
buffer, length-bucketed, and a trainer that draws its batches from it.

A :class:`TextStream` is a torch ``IterableDataset``: each DataLoader worker of each rank reads
its part of the shards (:meth:`textcnn.streaming.StreamSource.rows`), tokenizes rows in groups,
passes them through a shuffle buffer of ``train.shuffle_buffer`` rows, sorts chunks of
``train.bucket_chunks`` batches by length and yields the chunk's batches in random order. Memory
is the buffer plus one chunk, whatever the corpus size. An epoch is one pass over the stream, or
``train.steps_per_epoch`` batches (the stream then runs on across epochs); the position in the
stream is kept in every checkpoint, so ``--resume`` continues where the run stopped.

Example
-------
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
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import Tokenizer
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..errors import DataError
from ..streaming import StreamSource
from ..tokenizer import bounded, guarded
from .trainer import Trainer

ENCODE_GROUP = 512  # texts tokenized per call (one encode_batch)
RANDOM_BLOCK = 4096  # buffer slots drawn per call to the generator


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


def label_id(label_ids: dict, value: object, where: str) -> int:
    """The id of ``value`` (a label name or id) or a :class:`DataError` naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: label {value!r} is neither a label name nor an id")
    if value not in label_ids:
        known = [k for k in label_ids if isinstance(k, str)] or list(label_ids)
        raise DataError(f"{where}: label {value!r} is outside the label names "
                        f"({', '.join(map(str, known))})")
    return label_ids[value]


def encoded_rows(rows: Iterable, tokenizer: Tokenizer, label_ids: dict) -> Iterator[tuple]:
    """``(ids int32 array, label id)`` per row, tokenized ``ENCODE_GROUP`` rows at a time."""
    encode = getattr(tokenizer, "encode_batch_fast", tokenizer.encode_batch)
    group: list = []

    def flush():
        texts = bounded(tokenizer, [text for text, _, _ in group])
        encodings = guarded(encode, texts, add_special_tokens=False)
        out = [(np.asarray(e.ids, dtype=np.int32), label) for e, (_, label, _) in
               zip(encodings, group)]
        group.clear()
        return out

    for text, label, where in rows:
        if not isinstance(text, str):
            raise DataError(f"{where}: text field is not a string")
        group.append((text, label_id(label_ids, label, where), where))
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
    label_ids : dict
        Label name (or id) -> label id.
    batch_size, chunk_batches, buffer, min_len, seed : int
        From ``train``; ``min_len`` is the model's widest kernel.
    pass_index : int
        Which pass: it seeds the shuffles with ``seed``, so every pass differs and repeats.
    """

    def __init__(self, source: StreamSource, tokenizer: str, label_ids: dict, batch_size: int,
                 chunk_batches: int, buffer: int, min_len: int = 1, seed: int = 0,
                 pass_index: int = 0):
        super().__init__()
        self.source, self.tokenizer, self.label_ids = source, tokenizer, label_ids
        self.batch_size, self.chunk_batches, self.buffer = batch_size, chunk_batches, buffer
        self.min_len, self.seed, self.pass_index = min_len, seed, pass_index
        self.rank, self.world_size = node()

    def __iter__(self) -> Iterator:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        part, parts = self.rank * workers + worker, self.world_size * workers
        rng = np.random.default_rng([self.seed, self.pass_index, part])
        tokenizer = Tokenizer.from_str(self.tokenizer)
        rows = encoded_rows(self.source.rows(part, parts), tokenizer, self.label_ids)
        try:
            for batch in bucketed(shuffled(rows, self.buffer, rng), self.batch_size,
                                  self.chunk_batches, rng):
                yield collate(batch, self.min_len)
        except DataError as exc:  # a worker's traceback would bury the one-line message
            yield StreamFailure(str(exc))


class StreamedSplit:
    """A training split read as a stream; ``len()`` is its row count (counted once)."""

    def __init__(self, source: StreamSource, tokenizer: str, label_ids: dict):
        self.source, self.tokenizer, self.label_ids = source, tokenizer, label_ids

    def __len__(self) -> int:
        return self.source.count()

    def batches(self, train_cfg, pass_index: int, skip: int = 0, min_len: int = 1
                ) -> Iterator[tuple]:
        """The batches of pass ``pass_index`` after the first ``skip`` (a resumed position)."""
        stream = TextStream(self.source, self.tokenizer, self.label_ids, train_cfg.batch_size,
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


class StreamTrainer(Trainer):
    """A :class:`Trainer` whose one task's training split is a :class:`StreamedSplit`.

    ``position`` is ``[pass, batches taken in it]``; it is saved in every checkpoint.
    """

    def __init__(self, config, model, data, **kwargs):
        super().__init__(config, model, data, **kwargs)
        (self.task,) = self.tasks
        self.split: StreamedSplit = data[self.task]["train"]
        self.position = [0, 0]
        self._iterator: Iterator | None = None

    def _epoch_steps(self) -> int:
        """``train.steps_per_epoch``, else the batches of one pass over the stream."""
        return self.config.train.steps_per_epoch or super()._epoch_steps()

    def train_batches(self) -> Iterator[tuple]:
        """One epoch: the rest of the current pass, or ``train.steps_per_epoch`` batches."""
        limit = self.config.train.steps_per_epoch
        taken = 0
        while not limit or taken < limit:
            batch = self._next_batch()
            if batch is None:  # a pass ended
                if not limit:
                    return
                continue
            taken += 1
            ids, lengths, labels = batch  # this rank's own batch: a summed loss weighted to a mean
            yield self.task, (ids, lengths), labels, 1.0 / max(len(labels), 1)

    def _next_batch(self) -> tuple | None:
        if self._iterator is None:
            self._iterator = self.split.batches(self.config.train, self.position[0],
                                                self.position[1], self.min_len)
        batch = next(self._iterator, None)
        if batch is None:
            if self.position[1] == 0:
                raise DataError(f"tasks.{self.task}: the streamed training split is empty")
            self.position, self._iterator = [self.position[0] + 1, 0], None
            return None
        self.position[1] += 1
        return batch

    def save_checkpoint(self):
        """:meth:`Trainer.save_checkpoint`, with the position in the stream."""
        self.extra_state["stream_position"] = list(self.position)
        return super().save_checkpoint()

    def load_checkpoint(self, path):
        """:meth:`Trainer.load_checkpoint`, and continue the stream where it was saved."""
        meta = super().load_checkpoint(path)
        self.position = list(meta.get("stream_position", [self.epoch, 0]))
        self._iterator = None
        return meta
