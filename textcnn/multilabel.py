"""Multi-label heads: one threshold per label tuned (label sets are read as multi-hot rows by
:func:`textcnn.data.labels.multi_hot`).

A task with ``multi_label: true`` gives each row a set of labels: a JSON list (``["comp",
"comp.sys"]``), or a string cut at ``label_separator`` (``"comp|comp.sys"`` in a CSV file), or a
single label. Its head (``multi_label`` in :mod:`textcnn.heads`) has one sigmoid output per
label, trained with binary cross-entropy; a label is predicted when its probability is at or
over its threshold, tuned on the validation split to maximise that label's F1 and kept in the
model folder's ``config.json`` (``thresholds``).

Example
-------
>>> labels = np.array([[1, 0], [1, 1], [0, 1], [0, 0]])
>>> probabilities = np.array([[0.9, 0.2], [0.6, 0.7], [0.4, 0.8], [0.2, 0.1]])
>>> tune_thresholds(labels, probabilities).round(3).tolist()
[0.5, 0.45]
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5  # for a label never seen in validation, and for folders without any


def tune_thresholds(labels: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """One threshold per label: the one that maximises the label's F1 on these rows.

    For each label the rows are ranked by probability and every cut between two distinct
    probabilities is tried (a row is predicted positive when its probability is at or over the
    threshold); the threshold is the midpoint of the best cut (the lowest probability when every
    row is predicted). Ties keep the higher threshold. A label with no positive row keeps
    :data:`DEFAULT_THRESHOLD`.

    Parameters
    ----------
    labels : np.ndarray
        ``(n, labels)`` multi-hot truth.
    probabilities : np.ndarray
        ``(n, labels)`` sigmoid outputs.

    Returns
    -------
    np.ndarray
        ``(labels,)`` float thresholds.
    """
    labels = np.asarray(labels) > 0.5
    probabilities = np.asarray(probabilities, dtype=np.float64)
    thresholds = np.full(labels.shape[1], DEFAULT_THRESHOLD)
    for j in range(labels.shape[1]):
        positives = int(labels[:, j].sum())
        if positives == 0:
            continue
        order = np.argsort(-probabilities[:, j], kind="stable")
        p, y = probabilities[order, j], labels[order, j]
        true_pos = np.cumsum(y)  # predicting the top k+1 rows
        f1 = 2 * true_pos / (np.arange(1, len(p) + 1) + positives)
        cut_ok = np.append(p[:-1] > p[1:], True)  # a threshold can fall only between values
        k = int(np.argmax(np.where(cut_ok, f1, -1.0)))
        thresholds[j] = p[k] if k == len(p) - 1 else (p[k] + p[k + 1]) / 2
    return thresholds
