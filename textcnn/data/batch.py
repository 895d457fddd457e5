"""The batch type: a split as arrays (token ids, true lengths, labels) and the model inputs of
any rows of it.

Training, inference, the backends and the classifiers all feed a model through this one type,
so it lives with the data rather than with any of them: none of them needs to import another to
get it. Images plug in the same way (:class:`textcnn.data.images.ImageSplit` has the same
``len`` / ``lengths`` / ``labels`` / ``batch``).

Example
-------
>>> split = Encoded(np.array([[5, 6, 7], [8, 0, 0]], np.int32), np.array([3, 1]))
>>> ids, lengths = split.batch(np.array([1]), min_len=2)
>>> ids.tolist(), lengths.tolist(), [b.tolist() for b in sorted_batches(split.lengths, 1)]
([[8, 0]], [1], [[1], [0]])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


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
