"""The ordinal head: ordered labels (ratings, stars) learned as K-1 conditional steps up.

A five-star rating is not five unrelated classes: calling a 5 a 4 is a smaller mistake than
calling it a 1, and a softmax head cannot know that. The ordinal head gives a task of ``K``
ordered labels ``K - 1`` logits, one per step between two neighbouring labels: logit ``k`` says
whether a row is above label ``k`` given that it is above label ``k - 1`` (conditional ordinal
regression, CORN; Shi, Cao & Raschka, 2023). The probability of being above label ``k`` is the
product of the first ``k + 1`` sigmoids, so it falls with ``k`` whatever the weights (the answers
are rank-consistent) while each step keeps its own row of the head's linear layer: the network
needs nothing but ``K - 1`` outputs, and every backend computes the same logits.

The training loss is the negative log-likelihood of the label under these probabilities, which
is the binary cross-entropy of each step the row reached (the steps it went up, and the one it
stopped at). A row is answered with the median of its distribution (the lower one: the highest
label the row is more likely than not to reach), which minimises the expected absolute error;
``predict`` lists it first, then the other labels by probability. ``metrics.json`` holds
``accuracy``, ``macro_f1``, ``loss`` (the mean negative log-likelihood, comparable with a softmax
head's cross-entropy) and ``mae``, the mean absolute error in label steps.

The labels' order is their id order: ``dataset.json``'s ``label_names`` when declared (SST-5:
very negative .. very positive), else the sorted labels (``1`` .. ``5``).

Example
-------
>>> import numpy as np
>>> head = OrdinalHead()
>>> head.outputs(5)
4
>>> p = head.probabilities(np.array([[4.0, 4.0, -4.0, -4.0]]))  # up twice, then stops
>>> p.round(2).tolist(), head.decode(np.array([[4.0, 4.0, -4.0, -4.0]])).tolist()
([[0.02, 0.02, 0.95, 0.02, 0.0]], [2])
>>> head.metrics(np.array([0, 4]), np.array([[-4.0, 0, 0, 0], [4.0, 4.0, -4.0, -4.0]]))["mae"]
1.0
"""

from __future__ import annotations

import numpy as np
import torch

from ..metrics import RunningMetrics, sigmoid
from .base import SingleLabel, register


class OrdinalMetrics(RunningMetrics):
    """:class:`~textcnn.metrics.RunningMetrics` plus ``mae``: the mean absolute difference, in
    label steps, between the answered and the true label (from the confusion counts)."""

    def result(self) -> dict[str, float]:
        n = int(self.confusion.sum())
        true, answered = np.indices(self.confusion.shape)
        steps = float((np.abs(true - answered) * self.confusion).sum())
        return {**super().result(), "mae": round(steps / n, 6) if n else 0.0}


@register
class OrdinalHead(SingleLabel):
    """Ordered labels: ``K - 1`` conditional step logits, answered by the median label."""

    name = "ordinal"

    def outputs(self, labels: int) -> int:
        return labels - 1

    def labels(self, outputs: int) -> int:
        return outputs + 1

    def loss(self, logits, targets, label_smoothing=0.0, reduction="mean", class_weight=None):
        steps = torch.arange(logits.shape[1], device=logits.device)  # (K-1,)
        reached = (steps[None, :] <= targets[:, None]).float()  # (n, K-1): the steps taken
        up = (steps[None, :] < targets[:, None]).float()  # ... and which went up
        if label_smoothing:
            up = up * (1 - label_smoothing) + label_smoothing / 2
        per_row = (torch.nn.functional.binary_cross_entropy_with_logits(
            logits, up, reduction="none") * reached).sum(dim=1)  # (n,): -log p(label)
        if class_weight is not None:
            rows = class_weight[targets]
            return (per_row * rows).sum() / (1.0 if reduction == "sum" else rows.sum())
        return per_row.sum() if reduction == "sum" else per_row.mean()

    def probabilities(self, logits):
        above = np.cumprod(sigmoid(np.asarray(logits, dtype=np.float64)), axis=1)  # P(y > k)
        n = len(above)
        return np.concatenate([np.ones((n, 1)), above], axis=1) - \
            np.concatenate([above, np.zeros((n, 1))], axis=1)  # (n, K)

    @staticmethod
    def median(probabilities: np.ndarray) -> np.ndarray:
        """The lower median label of each row's distribution ``(n, K)``."""
        above = 1.0 - np.cumsum(probabilities, axis=1)[:, :-1]  # P(y > k), k < K - 1
        return (above > 0.5).sum(axis=1)

    def decode(self, logits):
        return self.median(self.probabilities(logits))

    def ranked(self, probabilities, k):
        first = self.median(probabilities)
        order = np.argsort(-probabilities, axis=1, kind="stable")
        return [np.concatenate([[m], row[row != m]])[:min(k, len(row))]
                for m, row in zip(first, order)]

    def summed_nll(self, logits, labels):
        return self.loss(torch.as_tensor(logits, dtype=torch.float32), torch.as_tensor(labels),
                         reduction="sum").double().item()

    def running(self, labels: int) -> OrdinalMetrics:
        return OrdinalMetrics(labels, self)
