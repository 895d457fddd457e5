"""Batching: length-bucketed training batches and the plan of one epoch over in-memory splits.

Rows of similar length share a batch, so little padding is computed; every training batch comes
from a single task. The batch type itself (:class:`~textcnn.data.batch.Encoded`) is data's, so
that inference, which needs it too, never imports training.
"""

from __future__ import annotations

import numpy as np

from ..config import TrainConfig
from ..data.batch import Encoded


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


def is_streamed(split) -> bool:
    """Whether ``split`` yields its own batches (:class:`textcnn.data.stream.StreamedSplit`)
    instead of being planned here."""
    return getattr(split, "streamed", False)


def steps_per_epoch(data: dict[str, dict[str, Encoded]], train_cfg: TrainConfig) -> int:
    """Batches (optimizer steps) per epoch: ``len(epoch_plan(data, train_cfg, rng))``, no ``rng``
    (a streamed split's epoch is ``train.steps_per_epoch`` batches when set).

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
    if train_cfg.steps_per_epoch and any(is_streamed(parts["train"]) for parts in data.values()):
        return train_cfg.steps_per_epoch
    return sum(batches_per_task(data, train_cfg).values())
