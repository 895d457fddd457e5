"""Training variations as callbacks on the one loop of :class:`~textcnn.training.Trainer`.

A variation of training (a moving average of the weights, Kim's max-norm, checkpoints every few
steps, a progress bar, a loss that mixes in a teacher's soft targets) is a :class:`Callback`
told about the loop's few moments; the loop itself stays one piece of code, and variations
combine by being listed together. The trainer builds the ones its config asks for
(:func:`from_config`, in the order they run) and appends those the data brings
(``PreparedData.callbacks``: distillation's loss).

The moments, in the order one optimizer step meets them:

- :meth:`Callback.loss`: the first callback to return a tensor gives a batch's summed loss on
  a task; None leaves it to the next, and in the end to the head's own loss;
- :meth:`Callback.on_step`: the optimizer has updated the weights (max-norm, then EMA);
- :meth:`Callback.on_batch_end`: the step is counted (batch position, epoch loss), so a
  checkpoint written now resumes after it.

and per epoch :meth:`Callback.on_epoch_start` and :meth:`Callback.on_epoch_end` (the epoch's
batches are done, validation comes next). What a callback keeps between steps and must survive a
resume lives on the trainer (EMA's ``trainer.ema_model``), which the checkpoint saves and
restores: exact resume stays the checkpoint's one job. A callback sees the trainer as a
:class:`Loop`: the few attributes it may read and change.

Example
-------
>>> from textcnn.config import from_dict
>>> config = from_dict({"tasks": {"s": {"dataset": "sst2"}},
...                     "train": {"ema": 0.9, "checkpoint_every": 100}})
>>> [type(c).__name__ for c in from_config(config)]
['MaxNorm', 'MovingAverage', 'ProgressBar', 'StepCheckpoints']
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn

from ..config import Config
from .distributed import World
from .stopping import StopRule


class Loop(Protocol):
    """What a callback sees of the loop it runs in (:class:`~textcnn.training.Trainer` is one):
    what it may read, and the state it may change."""

    model: nn.Module  # the weights the optimizer updates
    ema_model: nn.Module | None  # a callback's copy of them that a checkpoint keeps (EMA)
    data: dict[str, dict[str, Any]]  # task -> split -> arrays
    tasks: list[str]
    step: int  # optimizer steps taken
    epoch: int  # epochs done
    checkpoint_dir: Path | None
    world: World
    stop_rule: StopRule

    def save_checkpoint(self) -> None:
        """Write the checkpoint that ``--resume`` continues from."""


class Callback:
    """A variation of the training loop; every moment does nothing unless overridden."""

    def on_init(self, trainer: Loop) -> None:
        """The trainer is built (model on its device, optimizer made), before any checkpoint is
        loaded: make the state the checkpoint restores."""

    def loss(self, trainer: Loop, task: str, logits: torch.Tensor, y: torch.Tensor
             ) -> torch.Tensor | None:
        """A batch's summed loss on ``task`` (``logits`` ``(b, classes)`` float32, ``y`` the
        batch's labels on the device), or None to leave it to the head's own loss."""
        return None

    def on_epoch_start(self, trainer: Loop) -> None:
        """An epoch's batches are about to run (``trainer.epoch`` epochs are done)."""

    def on_step(self, trainer: Loop) -> None:
        """The optimizer has just updated the weights (``trainer.step`` counts it)."""

    def on_batch_end(self, trainer: Loop, rows: float) -> None:
        """The step is counted in the epoch's position and loss; ``rows`` of the global batch."""

    def on_epoch_end(self, trainer: Loop) -> None:
        """The epoch's batches are done; validation comes next."""


class MaxNorm(Callback):
    """``train.max_norm``: cap the L2 norm of each head weight row after every step (Kim)."""

    def __init__(self, max_norm: float):
        self.max_norm = max_norm

    def on_step(self, trainer: Loop) -> None:
        heads = getattr(trainer.model, "heads", None)
        if heads is not None:
            heads.apply_max_norm(self.max_norm)


class MovingAverage(Callback):
    """``train.ema``: a frozen copy of the model holds ``decay * ema + (1 - decay) * weights``
    after every step; it is what the trainer validates, keeps as best and saves
    (``trainer.eval_model``). The copy is ``trainer.ema_model``, saved in every checkpoint."""

    def __init__(self, decay: float):
        self.decay = decay

    def on_init(self, trainer: Loop) -> None:
        trainer.ema_model = copy.deepcopy(trainer.model).requires_grad_(False)

    @torch.no_grad()
    def on_step(self, trainer: Loop) -> None:
        """Float parameters and buffers (BatchNorm statistics too) move towards the weights;
        integer buffers (batch counters) are copied."""
        ema, live = trainer.ema_model.state_dict(), trainer.model.state_dict()
        floats = [k for k, v in ema.items() if v.is_floating_point()]
        # torch's foreach operations (documented, one kernel launch per list on CUDA)
        torch._foreach_mul_([ema[k] for k in floats], self.decay)
        torch._foreach_add_([ema[k] for k in floats], [live[k] for k in floats],
                            alpha=1.0 - self.decay)
        for k, v in ema.items():
            if not v.is_floating_point():
                v.copy_(live[k])


class StepCheckpoints(Callback):
    """``train.checkpoint_every``: also checkpoint every this many optimizer steps, so that
    ``--resume`` continues mid-epoch (a trainer without a checkpoint folder writes none)."""

    def __init__(self, every: int):
        self.every = every

    def on_batch_end(self, trainer: Loop, rows: float) -> None:
        if trainer.step % self.every == 0 and trainer.checkpoint_dir is not None:
            trainer.save_checkpoint()


class ProgressBar(Callback):
    """A ``tqdm`` bar over each epoch's training rows, on rank 0 when stderr is a terminal
    (elsewhere the trainer's one log line per epoch is the progress)."""

    def __init__(self):
        self.bar = None

    def on_epoch_start(self, trainer: Loop) -> None:
        if not (sys.stderr.isatty() and trainer.world.is_main):
            return
        from tqdm import tqdm

        n_train = sum(len(trainer.data[t]["train"]) for t in trainer.tasks)
        self.bar = tqdm(total=n_train, desc=f"epoch {trainer.epoch + 1}/"
                        f"{trainer.stop_rule.epochs}", unit="ex", leave=False)

    def on_batch_end(self, trainer: Loop, rows: float) -> None:
        if self.bar is not None:
            self.bar.update(int(rows))

    def on_epoch_end(self, trainer: Loop) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def from_config(config: Config) -> list[Callback]:
    """The callbacks ``config.train`` asks for, in the order they run at each moment."""
    train = config.train
    callbacks: list[Callback] = []
    if train.max_norm > 0:
        callbacks.append(MaxNorm(train.max_norm))
    if train.ema > 0:
        callbacks.append(MovingAverage(train.ema))
    callbacks.append(ProgressBar())
    if train.checkpoint_every:
        callbacks.append(StepCheckpoints(train.checkpoint_every))
    return callbacks
