"""Batching: a split as arrays, length-bucketed training batches and the plan of one epoch.

Rows of similar length share a batch, so little padding is computed; every training batch comes
from a single task.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..config import TrainConfig


@dataclass
class Encoded:
    """A split as arrays: token ids padded with 0, true lengths and label ids.

    The trainer only calls ``len()``, reads ``lengths`` (to bucket) and ``labels``, and asks
    ``batch(idx, min_len)`` for the model's inputs, so other inputs (images) plug in the same way.
    """

    ids: np.ndarray  # (n, longest) int32
    lengths: np.ndarray  # (n,) int64
    labels: np.ndarray | None = None  # (n,) int64; None when only predicting
    truncated: np.ndarray | None = None  # (n,) bool: the text was cut (when predicting)

    def __len__(self) -> int:
        return len(self.lengths)

    def batch(self, idx: np.ndarray, min_len: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs ``(ids (b, t), lengths (b,))`` for rows ``idx``."""
        return to_tensors(self.ids, self.lengths, idx, min_len)


def to_tensors(ids: np.ndarray, lengths: np.ndarray, idx: np.ndarray, min_len: int = 1
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``idx`` padded to their longest member (at least ``min_len``).

    Parameters
    ----------
    ids : np.ndarray
        ``(n, longest)`` token ids, padded with 0.
    lengths : np.ndarray
        ``(n,)`` true lengths.
    idx : np.ndarray
        ``(b,)`` the rows to take.
    min_len : int
        The narrowest width returned (a model's widest kernel).

    Returns
    -------
    tuple of torch.Tensor
        ``ids (b, t)`` int64 and ``lengths (b,)``.
    """
    lens = lengths[idx]  # (b,)
    width = max(int(lens.max(initial=0)), min_len)
    batch = ids[idx, :width]  # (b, <= width)
    if batch.shape[1] < width:
        batch = np.pad(batch, ((0, 0), (0, width - batch.shape[1])))
    return torch.from_numpy(np.ascontiguousarray(batch, dtype=np.int64)), torch.from_numpy(lens)


def train_batches(lengths: np.ndarray, batch_size: int, chunk_batches: int,
                  rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffle, sort by length within chunks of ``chunk_batches`` batches, shuffle the batches.

    Parameters
    ----------
    lengths : np.ndarray
        ``(n,)`` true lengths of the rows.
    batch_size, chunk_batches : int
        Rows per batch; batches per chunk sorted by length.
    rng : np.random.Generator
        Draws both shuffles.

    Returns
    -------
    list of np.ndarray
        Row indices of each batch, ``ceil(n / batch_size)`` batches.
    """
    order = rng.permutation(len(lengths))
    chunk = batch_size * chunk_batches
    batches = []
    for start in range(0, len(order), chunk):
        part = order[start:start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def epoch_plan(data: dict[str, dict[str, Encoded]], train_cfg: TrainConfig,
               rng: np.random.Generator) -> list[tuple[str, np.ndarray]]:
    """The (task, row indices) batches of one epoch, every batch from a single task.

    ``proportional``: each task contributes all its batches once, so tasks are drawn in
    proportion to their sizes. ``temperature``: the same number of batches in total, task ``t``
    getting a share proportional to ``n_t ** (1 / T)`` (cycling through its batches as needed);
    ``T = 1`` is proportional, larger ``T`` flattens the mix toward uniform.

    Parameters
    ----------
    data : dict
        ``{task: {"train": Encoded, ...}}``.
    train_cfg : TrainConfig
        ``batch_size``, ``bucket_chunks``, ``sampling`` and ``temperature`` are read.
    rng : np.random.Generator
        Draws every shuffle of the epoch.

    Returns
    -------
    list of (str, np.ndarray)
        The epoch's batches in training order.
    """
    per_task = {task: train_batches(data[task]["train"].lengths, train_cfg.batch_size,
                                    train_cfg.bucket_chunks, rng)
                for task in data}
    if train_cfg.sampling == "temperature" and len(data) > 1:
        for task, quota in batches_per_task(data, train_cfg).items():
            per_task[task] = [per_task[task][i % len(per_task[task])] for i in range(quota)]
    plan = [(task, b) for task, batches in per_task.items() for b in batches]
    return [plan[i] for i in rng.permutation(len(plan))]


def batches_per_task(data: dict[str, dict[str, Encoded]], train_cfg: TrainConfig
                     ) -> dict[str, int]:
    """How many batches each task gives one epoch of :func:`epoch_plan` (no ``rng`` needed).

    :func:`train_batches` cuts chunks of whole batches, so a task of ``n`` rows has
    ``ceil(n / batch_size)`` batches; temperature sampling re-splits their total in proportion to
    ``n_t ** (1 / T)``.

    Parameters
    ----------
    data : dict
        ``{task: {"train": Encoded, ...}}``.
    train_cfg : TrainConfig
        ``batch_size``, ``sampling`` and ``temperature`` are read.

    Returns
    -------
    dict
        ``{task: number of batches}``.
    """
    counts = {task: -(-len(data[task]["train"]) // train_cfg.batch_size) for task in data}
    if train_cfg.sampling == "temperature" and len(counts) > 1:
        sizes = np.array([len(data[task]["train"]) for task in counts], dtype=float)
        p = sizes ** (1.0 / train_cfg.temperature)
        quota = np.maximum(1, np.round(sum(counts.values()) * p / p.sum())).astype(int)
        counts = {task: int(q) for task, q in zip(counts, quota)}
    return counts


def steps_per_epoch(data: dict[str, dict[str, Encoded]], train_cfg: TrainConfig) -> int:
    """Batches (optimizer steps) per epoch: ``len(epoch_plan(data, train_cfg, rng))``, no ``rng``.

    Parameters
    ----------
    data : dict
        ``{task: {"train": Encoded, ...}}``.
    train_cfg : TrainConfig
        As for :func:`batches_per_task`.

    Returns
    -------
    int
    """
    return sum(batches_per_task(data, train_cfg).values())


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Batches of similar length for prediction (results are put back in input order).

    Parameters
    ----------
    lengths : np.ndarray
        ``(n,)`` true lengths of the rows.
    batch_size : int
        Rows per batch.

    Returns
    -------
    list of np.ndarray
        Row indices of each batch, shortest rows first.
    """
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
