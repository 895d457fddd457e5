"""Heads: what a task's logits mean, from its loss to what the model folder keeps of it.

A network ends in one linear layer per task and knows nothing of what its outputs stand for;
a :class:`Head` says the rest, in one object per kind of task: how many outputs it needs for
its labels, the training loss, how logits become probabilities, the labels a prediction
answers, the metrics of ``metrics.json``, what it still fits on the validation split after
training, and what of that goes into ``config.json``. Training, scoring, prediction, serving
and the model folder ask the task's head and never look at the shape of the labels, so a new
kind of head is one class and one :func:`register` call.

The head of a task is ``tasks.<name>.head`` (a name in :data:`HEADS`); left at ``''`` it is
read from the settings that chose it before heads had names: ``multi_label`` for a task with
``multi_label: true``, ``squared_hinge`` when ``train.loss`` is, else ``softmax``
(:func:`head_name`).

Registered heads:

- ``softmax``: one label per row, cross-entropy, the softmax over labels.
- ``squared_hinge``: one label per row, LinearSVC's one-vs-rest squared hinge; after training a
  temperature fitted on validation is folded into the weights (:mod:`textcnn.calibration`).
- ``multi_label``: a set of labels per row, a sigmoid per label (binary cross-entropy, or the
  squared hinge with ``train.loss: squared_hinge``), every label at or over its threshold,
  thresholds tuned on validation (:mod:`textcnn.multilabel`) and kept in ``config.json``.
- ``ordinal``: one of ordered labels (ratings), ``K - 1`` step logits, the median answered,
  mean absolute error beside accuracy (:mod:`textcnn.heads.ordinal`).

Example
-------
>>> import numpy as np
>>> head = HEADS["softmax"]()
>>> head.probabilities(np.array([[0.0, 0.0]])).tolist()
[[0.5, 0.5]]
>>> head.metrics(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 2.0]]))["accuracy"]
1.0
"""

from __future__ import annotations

from . import ordinal  # noqa: F401  (registers itself in HEADS)
from .base import (
    HEADS,
    Head,
    MultiLabelHead,
    SingleLabel,
    SoftmaxHead,
    SquaredHingeHead,
    head_for,
    head_name,
    head_outputs,
    register,
    sigmoid,
    softmax,
)

__all__ = ["HEADS", "Head", "MultiLabelHead", "SingleLabel", "SoftmaxHead", "SquaredHingeHead",
           "head_for", "head_name", "head_outputs", "register", "sigmoid", "softmax"]
