"""The trainer: the one training loop, early stopping and validation.

It trains any registered model on one or more tasks; each batch comes from one task and its loss
reaches only that task's head (weighted per class with ``train.class_weight``). The best epoch
is the one with the best ``train.select_metric`` on validation (mean over tasks); the run stops
at its epoch cap, after ``train.patience`` epochs without a better one, or past
``train.time_budget`` (:mod:`.stopping`), says which, and restores the best weights. After
every epoch (and every ``train.checkpoint_every`` steps) a checkpoint can be written, from
which a killed run resumes exactly, mid-epoch too (:mod:`.checkpoint`). The step runs on
``train.device`` at ``train.precision``, in one process or several (DDP, see
:mod:`.distributed`); a NaN or infinite loss stops the run before it spoils the weights.

Everything a run may add to a step (the weights' moving average, Kim's max-norm, checkpoints
every few steps, the progress bar, a loss with a teacher's soft targets) is a callback on this
loop (:mod:`.callbacks`), so that variations combine without subclasses.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch import nn

from ..config import Config
from ..data.batch import Encoded
from ..devices import autocast, grad_scaler, resolve_device, to_device
from ..errors import TextCNNError
from ..heads import head_for
from ..inference import evaluate
from ..models import min_input_length
from .batching import epoch_plan, is_streamed, steps_per_epoch
from .callbacks import Callback, from_config
from .checkpoint import CHECKPOINT, Resumable
from .distributed import World
from .optimizers import FusedAdam
from .schedule import lr_factor
from .stopping import (
    SHORT_NAMES,
    TIME_BUDGET,
    StopRule,
    balanced_weights,
    describe_stop,
    plan_line,
    selection_score,
    shown_score,
)


class Progress(Protocol):
    """What :meth:`Trainer.train_epoch` reports to (a ``tqdm`` bar fits)."""

    def update(self, n: int) -> object: ...


class TrainingDiverged(TextCNNError, FloatingPointError):
    """The training loss became NaN or infinite; the message names the step and the checkpoint
    kept."""


class Trainer(Resumable):
    """Fit a model on ``data[task][split]`` following ``config.train``.

    Parameters
    ----------
    config : Config
    model : nn.Module
        Maps ``(ids, lengths)`` to ``{task: logits}``; moved to the world's device.
    data : dict
        ``{task: {"train": Encoded, "validation": Encoded, ...}}``, on the host.
    checkpoint_dir : path or None
        Where ``checkpoint.safetensors`` is written after every epoch and every
        ``train.checkpoint_every`` steps (atomically; by rank 0).
    log : callable
        Receives one plain line per epoch when no progress bar is shown.
    extra_state : dict, optional
        More JSON entries stored in each checkpoint's header.
    world : World, optional
        The training processes (:mod:`.distributed`); omitted: one process on ``train.device``.
    callbacks : list of Callback, optional
        Run after those ``config.train`` asks for (:func:`.callbacks.from_config`).
    """

    def __init__(self, config: Config, model: nn.Module, data: dict[str, dict[str, Encoded]],
                 checkpoint_dir: str | Path | None = None, log: Callable[[str], None] | None = None,
                 extra_state: dict | None = None, world: World | None = None,
                 callbacks: list[Callback] | None = None):
        self.config = config
        self.world = world or World(device=resolve_device(config.train.device))
        self.device = self.world.device
        self.model = model.to(self.device)
        self.data = data
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.log = log or (lambda line: print(line, file=sys.stderr, flush=True))
        self.extra_state = extra_state or {}
        self.tasks = list(data)
        self.min_len = min_input_length(model)
        train_cfg = config.train
        torch.manual_seed(train_cfg.seed + self.world.rank)  # dropout differs between ranks
        self.rng = np.random.default_rng(train_cfg.seed)  # the plan is the same on every rank
        self.optimizer = self._make_optimizer()
        self.scaler = grad_scaler(self.device, train_cfg.precision)
        # the network a step runs: the model itself, in DDP over several processes, compiled
        self.net = self.world.wrap(model, multi_task=len(self.tasks) > 1)
        if train_cfg.compile:  # dynamic: length-bucketed batches come in many widths
            self.net = torch.compile(self.net, dynamic=True)
        # the lr is a function of the global optimizer step (checkpointed): resume is exact
        self.step = 0
        self.epoch_steps = self._epoch_steps()
        # the epoch cap (train.epochs, raised by train.min_steps), patience and the time budget
        self.stop_rule = StopRule.of(train_cfg, self.epoch_steps)
        self.total_steps = self.epoch_steps * self.stop_rule.epochs
        # train.ema: a frozen copy holding the moving average (its callback makes it); it is
        # validated, kept as best and checkpointed
        self.ema_model: nn.Module | None = None
        self.callbacks = from_config(config) + list(callbacks or [])
        for callback in self.callbacks:
            callback.on_init(self)
        self.history: list[dict] = []
        self.started = time.perf_counter()  # the clock of each history row's "elapsed_seconds"
        self.epoch = 0
        self.best_score = -math.inf
        self.best_epoch = 0
        self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        # the data position: the rng state this epoch's plan is drawn from, batches done, loss
        self.epoch_rng_state = self.rng.bit_generator.state
        self.batch_in_epoch = 0
        self.epoch_loss = [0.0, 0.0]
        self.checkpoint_step: int | None = None  # the step of the last checkpoint written
        self.stopped: str | None = None  # why the run stopped (stopping.STOP_REASONS), once it has
        self._class_weights: dict[str, torch.Tensor] = {}

    def _epoch_steps(self) -> int:
        """Optimizer steps per epoch (what the epoch cap and the lr schedule are counted in)."""
        return steps_per_epoch(self.data, self.config.train)

    def _make_optimizer(self) -> torch.optim.Optimizer | FusedAdam:
        train_cfg = self.config.train
        params = [p for p in self.model.parameters() if p.requires_grad]
        if train_cfg.optimizer == "adadelta":
            return torch.optim.Adadelta(params, lr=train_cfg.lr, rho=0.95, eps=1e-6,
                                        weight_decay=train_cfg.weight_decay)
        return FusedAdam(params, lr=train_cfg.lr, weight_decay=train_cfg.weight_decay,
                         decoupled=train_cfg.optimizer == "adamw")

    # -- one epoch -----------------------------------------------------------------------------
    def train_epoch(self, progress: Progress | None = None) -> float:
        """One pass over the epoch's batches (no validation, no epoch count).

        A resumed run draws the epoch's plan again from the same generator state and skips the
        batches done before the checkpoint.

        Parameters
        ----------
        progress : Progress, optional
            Told the number of rows of every batch done (a ``tqdm`` bar).

        Returns
        -------
        float
            The mean training loss per row (over all ranks).
        """
        self.model.train()
        for callback in self.callbacks:
            callback.on_epoch_start(self)
        for task, inputs, y, weight in self.train_batches():
            loss_sum, rows = self._train_step(task, inputs, y, weight)
            self.batch_in_epoch += 1
            self.epoch_loss = [self.epoch_loss[0] + loss_sum, self.epoch_loss[1] + rows]
            if progress is not None:
                progress.update(int(rows))
            for callback in self.callbacks:
                callback.on_batch_end(self, rows)
        for callback in self.callbacks:
            callback.on_epoch_end(self)
        loss = self.epoch_loss[0] / max(self.epoch_loss[1], 1)
        self.epoch_rng_state, self.batch_in_epoch = self.rng.bit_generator.state, 0
        self.epoch_loss = [0.0, 0.0]
        return loss

    def train_batches(self) -> Iterator[tuple[str, tuple, torch.Tensor, float]]:
        """``(task, model inputs, labels, loss weight)`` of this rank's share of each batch of the
        epoch still to do, on the host (labels: ``(b,)`` ids, or ``(b, labels)`` multi-hot).

        A resumed run draws the epoch's plan again from the same generator state and skips the
        batches done before the checkpoint.
        """
        for task, parts in self.data.items():  # a streamed split yields its own batches
            if is_streamed(parts["train"]):
                for inputs, labels in parts["train"].epoch(self.config.train, self.min_len, task):
                    yield task, inputs, labels, 1.0 / max(len(labels), 1)  # this rank's own
                return
        self.rng.bit_generator.state = self.epoch_rng_state
        plan = epoch_plan(self.data, self.config.train, self.rng)
        for task, idx in plan[self.batch_in_epoch:]:
            rows, weight = self.world.shard(idx)
            split = self.data[task]["train"]
            yield (task, split.batch(rows, self.min_len), torch.from_numpy(split.labels[rows]),
                   weight)

    def _streams(self) -> list:
        """The streamed training splits (their position goes in every checkpoint)."""
        return [parts["train"] for parts in self.data.values() if is_streamed(parts["train"])]

    def save_checkpoint(self):
        """:meth:`Resumable.save_checkpoint`, with a streamed split's position in the stream."""
        for split in self._streams():
            self.extra_state["stream_position"] = list(split.position)
        return super().save_checkpoint()

    def load_checkpoint(self, path):
        """:meth:`Resumable.load_checkpoint`, and a streamed split goes on where it was saved."""
        meta = super().load_checkpoint(path)
        for split in self._streams():
            split.restore(meta.get("stream_position", [self.epoch, 0]))
        return meta

    def _train_step(self, task: str, inputs: tuple, y: torch.Tensor, weight: float
                    ) -> tuple[float, float]:
        """One optimizer step on this rank's rows of a global batch of ``task``: their summed loss
        times ``weight`` (DDP's mean over ranks then gives the global batch's mean loss).

        Returns the global batch's summed loss and row count; a NaN or infinite loss raises
        :class:`TrainingDiverged` before the weights change.
        """
        train_cfg = self.config.train
        n_rows = len(y)
        inputs = to_device(inputs, self.device)
        (y,) = to_device((y,), self.device)  # (b,) ids, or (b, labels) multi-hot
        with autocast(self.device, train_cfg.precision):
            logits = self.net(*inputs)[task]  # (b, classes)
        loss = self.loss(task, logits.float(), y)
        task_weight = self.config.tasks[task].loss_weight if task in self.config.tasks else 1.0
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss * (weight * task_weight)).backward()
        loss_sum, count = self.world.all_sum([loss.item() if weight else 0.0,
                                              n_rows if weight else 0])
        if not math.isfinite(loss_sum):
            raise self._diverged(loss_sum)
        if train_cfg.schedule != "constant" or train_cfg.warmup > 0:  # else the lr stays
            self._set_lr()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.step += 1
        for callback in self.callbacks:  # max-norm, then the moving average
            callback.on_step(self)
        return loss_sum, count

    def loss(self, task: str, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """A batch's summed loss on ``task``'s head: the first callback's that gives one (a loss
        with soft targets), else the head's own."""
        for callback in self.callbacks:
            replaced = callback.loss(self, task, logits, y)
            if replaced is not None:
                return replaced
        head = head_for(self.config, task)
        return head.loss(logits, y, self.config.train.label_smoothing, "sum",
                         self.class_weights(task, head.labels(logits.shape[1])))

    def class_weights(self, task: str, classes: int) -> torch.Tensor | None:
        """``(classes,)`` loss weights of ``task``'s head from its training labels
        (``train.class_weight: balanced``, :func:`.stopping.balanced_weights`); None: unweighted."""
        if self.config.train.class_weight == "none":
            return None
        weights = self._class_weights.get(task)
        if weights is None or len(weights) != classes:
            counted = balanced_weights(self.data[task]["train"].labels, classes)
            weights = torch.tensor(counted, dtype=torch.float32, device=self.device)
            self._class_weights[task] = weights
        return weights

    def _diverged(self, loss: float) -> TrainingDiverged:
        """The error for a NaN / infinite loss at the coming optimizer step."""
        kept = ("no checkpoint was written yet" if self.checkpoint_step is None else
                f"the last good checkpoint, {self.checkpoint_dir / CHECKPOINT} (after step "
                f"{self.checkpoint_step}), is kept")
        return TrainingDiverged(
            f"training diverged: the loss is {loss} at optimizer step {self.step + 1} (epoch "
            f"{self.epoch + 1}, batch {self.batch_in_epoch + 1}); the weights were not updated "
            f"and {kept}; lower train.lr, check the data, or use train.precision fp32")

    def _set_lr(self) -> None:
        """The learning rate of optimizer step ``self.step`` (see :func:`lr_factor`)."""
        train_cfg = self.config.train
        lr = train_cfg.lr * lr_factor(self.step, self.total_steps, train_cfg.schedule,
                                      train_cfg.warmup)
        for group in self.optimizer.param_groups:
            group["lr"] = lr

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
        return {t: evaluate(self.eval_model, self.data[t]["validation"], t,
                            head_for(self.config, t), batch_size) for t in self.tasks}

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> list[dict]:
        """Train until the epoch cap, ``train.patience`` epochs without a better score or
        ``train.time_budget``; :attr:`stopped` then says which.

        Continues from the position reached (after :meth:`load_checkpoint`, mid-epoch too),
        writes a checkpoint after every epoch when ``checkpoint_dir`` is set, and leaves the
        best weights in the model.

        Returns
        -------
        list of dict
            The history: one row per epoch (seconds, training loss, validation metrics).
        """
        train_cfg = self.config.train
        self.log(plan_line(self.stop_rule, train_cfg, self.epoch_steps, self._logged_weights()))
        while self.stopped is None:
            self._run_epoch()
            # rank 0's clock decides for every rank
            out_of_time = bool(train_cfg.time_budget) and self.world.broadcast(
                self.stop_rule.out_of_time(self.started) if self.world.is_main else None)
            self.stopped = self._limit_reached() or (TIME_BUDGET if out_of_time else None)
            if self.checkpoint_dir is not None:
                self.save_checkpoint()
        self.log(describe_stop(self.stopped, train_cfg.patience, train_cfg.select_metric,
                               train_cfg.time_budget))
        self.model.load_state_dict(self.best_state)
        return self.history

    def _limit_reached(self) -> str | None:
        """The epoch cap or patience, from the counters (:meth:`.stopping.StopRule.limit`)."""
        return self.stop_rule.limit(self.epoch, self.best_epoch, self.step)

    def _logged_weights(self) -> dict[str, list[float]]:
        """``{task: class weights}`` for the log (none without ``train.class_weight``)."""
        if self.config.train.class_weight == "none":
            return {}
        classes = {task: int(self.data[task]["train"].labels.max(initial=0)) + 1
                   for task in self.tasks}
        return {task: self.class_weights(task, n).tolist() for task, n in classes.items()}

    def _run_epoch(self) -> None:
        """Train one epoch; rank 0 validates and every rank keeps the weights if best."""
        start = time.perf_counter()
        train_loss = self.train_epoch()
        train_seconds = time.perf_counter() - start
        val = self.world.broadcast(self.validate() if self.world.is_main else None)
        self.epoch += 1
        metric = self.config.train.select_metric
        score = selection_score(val, metric)
        row = {"epoch": self.epoch, "seconds": round(time.perf_counter() - start, 3),
               "elapsed_seconds": round(time.perf_counter() - self.started, 3),
               "train_seconds": round(train_seconds, 3), "train_loss": round(train_loss, 6),
               "validation": val, "validation_accuracy": selection_score(val, "accuracy")}
        row[f"validation_{metric}"] = shown_score(score, metric)  # the score that selects
        self.history.append(row)
        if score > self.best_score:
            self.best_score, self.best_epoch = score, self.epoch
            self.best_state = {k: v.detach().clone()
                               for k, v in self.eval_model.state_dict().items()}
        self.log(
            f"epoch {self.epoch}/{self.stop_rule.epochs}  {row['seconds']:.1f}s  "
            f"loss {train_loss:.4f}  val {SHORT_NAMES.get(metric, metric)} "
            f"{row[f'validation_{metric}']:.4f}" + ("  *" if self.best_epoch == self.epoch else "")
        )
