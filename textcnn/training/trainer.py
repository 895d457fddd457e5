"""The trainer: the training loop, early stopping, the weights' moving average and validation.

It trains any registered model on one or more tasks; each batch comes from one task and its loss
reaches only that task's head. Early stopping watches the mean validation accuracy over tasks and
restores the best weights at the end. After every epoch a checkpoint can be written, from which
a killed run resumes exactly.
"""

from __future__ import annotations

import copy
import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
from torch import nn

# the module, not its names: inference imports training.batching, so either may load first
from .. import inference
from ..config import Config
from ..metrics import head_loss
from ..models import min_input_length
from .batching import Encoded, epoch_plan, steps_per_epoch
from .checkpoint import (
    CHECKPOINT,
    TrainingState,
    read_checkpoint,
    unpack_checkpoint,
    write_checkpoint,
)
from .schedule import lr_factor

if TYPE_CHECKING:
    from tqdm import tqdm


class Progress(Protocol):
    """What :meth:`Trainer.train_epoch` reports to (a ``tqdm`` bar fits)."""

    def update(self, n: int) -> object: ...


class Trainer:
    """Fit a model on ``data[task][split]`` following ``config.train``.

    Parameters
    ----------
    config : Config
    model : nn.Module
        Maps ``(ids, lengths)`` to ``{task: logits}``.
    data : dict
        ``{task: {"train": Encoded, "validation": Encoded, ...}}``.
    checkpoint_dir : path or None
        Where ``checkpoint.safetensors`` is written after every epoch (atomically).
    log : callable
        Receives one plain line per epoch when no progress bar is shown.
    extra_state : dict, optional
        More JSON entries stored in each checkpoint's header.
    """

    def __init__(self, config: Config, model: nn.Module, data: dict[str, dict[str, Encoded]],
                 checkpoint_dir: str | Path | None = None, log: Callable[[str], None] | None = None,
                 extra_state: dict | None = None):
        self.config = config
        self.model = model
        self.data = data
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.extra_state = extra_state or {}
        self.tasks = list(data)
        self.min_len = min_input_length(model)
        train_cfg = config.train
        torch.manual_seed(train_cfg.seed)
        self.rng = np.random.default_rng(train_cfg.seed)
        self.optimizer = self._make_optimizer()
        # the lr is a function of the global optimizer step (checkpointed): resume is exact
        self.step = 0
        self.total_steps = steps_per_epoch(data, train_cfg) * train_cfg.epochs
        # train.ema: a frozen copy holding the moving average; it is validated and kept as best
        self.ema_model = copy.deepcopy(model).requires_grad_(False) if train_cfg.ema > 0 else None
        self.history: list[dict] = []
        self.epoch = 0
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def _make_optimizer(self) -> torch.optim.Optimizer:
        train_cfg = self.config.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        if train_cfg.optimizer == "adadelta":
            return torch.optim.Adadelta(params, lr=train_cfg.lr, rho=0.95, eps=1e-6,
                                        weight_decay=train_cfg.weight_decay)
        # fused kernels: one pass over the embedding table per step (9x faster measured here)
        cls = torch.optim.Adam if train_cfg.optimizer == "adam" else torch.optim.AdamW
        return cls(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay, fused=True)

    # -- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, progress: Progress | None = None) -> float:
        """One pass over the epoch's batches (no validation, no epoch count).

        Parameters
        ----------
        progress : Progress, optional
            Told the number of rows of every batch done (a ``tqdm`` bar).

        Returns
        -------
        float
            The mean training loss per row.
        """
        train_cfg = self.config.train
        weights = {t: self.config.tasks[t].loss_weight if t in self.config.tasks else 1.0
                   for t in self.tasks}
        heads = getattr(self.model, "heads", None)
        self.model.train()
        total, count = 0.0, 0
        # else the lr is never touched
        scheduled = train_cfg.schedule != "constant" or train_cfg.warmup > 0
        for task, inputs, y in self.train_batches():  # y: (b,) ids, or (b, labels) multi-hot
            logits = self.model(*inputs)[task]  # (b, classes)
            loss = head_loss(logits, y, train_cfg.label_smoothing)  # per head: CE or BCE
            self.optimizer.zero_grad(set_to_none=True)
            (loss * weights[task]).backward()
            if scheduled:
                self._set_lr()
            self.optimizer.step()
            self.step += 1
            if train_cfg.max_norm > 0 and heads is not None:
                heads.apply_max_norm(train_cfg.max_norm)
            if self.ema_model is not None:
                self._update_ema()
            total += loss.item() * len(y)
            count += len(y)
            if progress is not None:
                progress.update(len(y))
        return total / max(count, 1)

    def train_batches(self) -> Iterator[tuple[str, tuple, torch.Tensor]]:
        """``(task, model inputs, labels)`` of each batch of the epoch, in training order."""
        for task, idx in epoch_plan(self.data, self.config.train, self.rng):
            split = self.data[task]["train"]
            yield task, split.batch(idx, self.min_len), torch.from_numpy(split.labels[idx])

    def _set_lr(self) -> None:
        """The learning rate of optimizer step ``self.step`` (see :func:`lr_factor`)."""
        train_cfg = self.config.train
        lr = train_cfg.lr * lr_factor(self.step, self.total_steps, train_cfg.schedule,
                                      train_cfg.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    @torch.no_grad()
    def _update_ema(self) -> None:
        """``ema = decay * ema + (1 - decay) * weights`` for float parameters and buffers
        (BatchNorm statistics too); integer buffers (batch counters) are copied."""
        decay = self.config.train.ema
        ema, live = self.ema_model.state_dict(), self.model.state_dict()
        floats = [k for k, v in ema.items() if v.is_floating_point()]
        torch._foreach_mul_([ema[k] for k in floats], decay)
        torch._foreach_add_([ema[k] for k in floats], [live[k] for k in floats], alpha=1.0 - decay)
        for k, v in ema.items():
            if not v.is_floating_point():
                v.copy_(live[k])

    @property
    def eval_model(self) -> nn.Module:
        """The weights validated, kept as best and saved: the moving average when train.ema."""
        return self.ema_model if self.ema_model is not None else self.model

    def validate(self) -> dict[str, dict]:
        """Metrics of :attr:`eval_model` on every task's validation split.

        Returns
        -------
        dict
            ``{task: classification metrics}``.
        """
        batch_size = self.config.train.eval_batch_size
        return {t: inference.evaluate(self.eval_model, self.data[t]["validation"], t, batch_size)
                for t in self.tasks}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train until ``train.epochs``, or ``train.patience`` epochs without a better score.

        Continues from the epoch reached (after :meth:`load_checkpoint`), writes a checkpoint
        after every epoch when ``checkpoint_dir`` is set, and leaves the best weights in the
        model.

        Returns
        -------
        list of dict
            The history: one row per epoch (seconds, training loss, validation metrics).
        """
        show_bar = sys.stderr.isatty()
        while (self.epoch < self.config.train.epochs
               and self.epoch - self.best_epoch < self.config.train.patience):
            self._run_epoch(show_bar)
            if self.checkpoint_dir is not None:
                self.save_checkpoint()
        self.model.load_state_dict(self.best_state)
        return self.history

    def _run_epoch(self, show_bar: bool) -> None:
        """Train one epoch, validate, keep the weights if best, log one line and a history row."""
        start = time.perf_counter()
        bar = self._progress_bar() if show_bar else None
        train_loss = self.train_epoch(bar)
        if bar is not None:
            bar.close()
        val = self.validate()
        self.epoch += 1
        score = float(np.mean([val[t]["accuracy"] for t in self.tasks]))
        row = {"epoch": self.epoch, "seconds": round(time.perf_counter() - start, 3),
               "train_loss": round(train_loss, 6), "validation": val,
               "validation_accuracy": score}
        self.history.append(row)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, self.epoch
            self.best_state = {k: v.detach().clone()
                               for k, v in self.eval_model.state_dict().items()}
        self.log(
            f"epoch {self.epoch}/{self.config.train.epochs}  {row['seconds']:.1f}s  "
            f"loss {train_loss:.4f}  val acc {score:.4f}"
            + ("  *" if self.best_epoch == self.epoch else "")
        )

    def _progress_bar(self) -> tqdm:
        """A ``tqdm`` bar over the training rows of the coming epoch."""
        from tqdm import tqdm

        n_train = sum(len(self.data[t]["train"]) for t in self.tasks)
        return tqdm(total=n_train, desc=f"epoch {self.epoch + 1}/{self.config.train.epochs}",
                    unit="ex", leave=False)

    # -- checkpoints ---------------------------------------------------------------------------
    def save_checkpoint(self) -> Path:
        """Write everything needed to resume into ``checkpoint_dir``, atomically.

        Returns
        -------
        Path
            The file written.
        """
        state = TrainingState(
            model=self.model.state_dict(), best=self.best_state,
            ema=self.ema_model.state_dict() if self.ema_model is not None else {},
            optimizer=self.optimizer.state_dict(), torch_rng=torch.get_rng_state(),
            numpy_rng=self.rng.bit_generator.state, epoch=self.epoch,
            best_epoch=self.best_epoch, best_score=self.best_score, history=self.history,
            optimizer_step=self.step,
        )
        return write_checkpoint(self.checkpoint_dir / CHECKPOINT, state,
                                {"config": self.config.to_dict(), **self.extra_state})

    def load_checkpoint(self, path: str | Path) -> dict:
        """Restore a checkpoint written by :meth:`save_checkpoint`.

        Parameters
        ----------
        path : path
            The checkpoint file.

        Returns
        -------
        dict
            Its header (see :func:`read_checkpoint`).
        """
        tensors, meta = read_checkpoint(path)
        state = unpack_checkpoint(tensors, meta)
        self.model.load_state_dict(state.model)
        self.best_state = state.best
        if self.ema_model is not None:
            self.ema_model.load_state_dict(state.ema)
        torch.set_rng_state(state.torch_rng)
        self.rng.bit_generator.state = state.numpy_rng
        self.optimizer.load_state_dict(state.optimizer)
        self.epoch, self.best_epoch = state.epoch, state.best_epoch
        self.best_score, self.history = state.best_score, state.history
        # every epoch takes the same number of steps (older checkpoints lack the count)
        if state.optimizer_step is None:
            self.step = self.epoch * steps_per_epoch(self.data, self.config.train)
        else:
            self.step = state.optimizer_step
        return meta
