"""The student's loss: labels and a teacher's soft targets in one sum (Hinton et al. 2015;
Tang et al. 2019), given to the trainer by :class:`DistillLoss`, a training callback, so that it
combines with every other variation of the one training loop (EMA, max-norm, step checkpoints).
"""

from __future__ import annotations

import torch

from ...metrics import head_loss
from ...training.callbacks import Callback


def distill_loss(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor,
                 kind: str = "kl", temperature: float = 2.0, hard_weight: float = 0.5,
                 soft_weight: float = 0.5, label_smoothing: float = 0.0) -> torch.Tensor:
    """A student's summed loss over a batch: ``hard_weight`` x the cross-entropy of the rows
    with a label (``labels >= 0``; -1 marks a row with soft targets only) plus ``soft_weight`` x
    the soft-target loss of every row against the ``teacher``'s logits ``(n, classes)``: ``kl``,
    KL(teacher || student) of the softmaxes at ``temperature`` times T^2 (Hinton et al.), or
    ``mse``, the mean squared difference of the logits (Tang et al.).

    Examples
    --------
    >>> logits = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    >>> loss = distill_loss(logits, torch.tensor([0, -1]), logits.clone())  # soft part 0
    >>> round(loss.item(), 4) == round(0.5 * head_loss(logits[:1], torch.tensor([0])).item(), 4)
    True
    >>> distill_loss(logits, torch.tensor([-1, -1]), logits + 1.0, "mse").item()  # 0.5 x 2 rows
    1.0
    """
    labeled = labels >= 0
    hard = head_loss(logits[labeled], labels[labeled], label_smoothing, reduction="sum") \
        if labeled.any() else logits.sum() * 0.0
    if kind == "mse":
        soft = ((logits - teacher) ** 2).mean(dim=1)
    else:
        log_student = torch.log_softmax(logits / temperature, dim=1)
        log_teacher = torch.log_softmax(teacher / temperature, dim=1)
        soft = (log_teacher.exp() * (log_teacher - log_student)).sum(dim=1) * temperature ** 2
    return hard_weight * hard + soft_weight * soft.sum()


class DistillLoss(Callback):
    """The loss of the heads with a teacher (``distill.teachers``): their training labels are
    packed ``(n, 1 + classes)`` rows (the label id, -1 for soft targets only, then the teacher's
    logits) and take :func:`distill_loss`; other heads keep their ordinary loss.

    Examples
    --------
    >>> from textcnn.config import from_dict
    >>> config = from_dict({"tasks": {"s": {"dataset": "sst2"}},
    ...                     "distill": {"teachers": {"s": "runs/teacher/s"}, "loss": "mse"}})
    >>> rows = torch.tensor([[-1.0, 1.0, 0.0]])  # soft targets only: the teacher's logits
    >>> DistillLoss(config).loss(None, "s", torch.tensor([[0.0, 0.0]]), rows).item()  # 0.5 x 0.5
    0.25
    """

    def __init__(self, config):
        self.config = config

    def loss(self, trainer, task: str, logits: torch.Tensor, y: torch.Tensor
             ) -> torch.Tensor | None:
        d = self.config.distill
        if task not in d.teachers:
            return None
        return distill_loss(logits, y[:, 0].long(), y[:, 1:], d.loss, d.temperature,
                            d.hard_weight, d.soft_weight, self.config.train.label_smoothing)
