"""The checkpoint file: everything needed to resume a training run, in one safetensors file.

Tensors are stored under prefixes (``model.``, ``best.``, ``ema.``, ``optim.<param>.<name>``,
``rng.torch``, and ``rng.torch.<rank>`` / ``rng.cuda.<rank>`` for other ranks and GPUs); the
rest (epoch counters, why the run stopped, the data position within the epoch, history, the
numpy generator's state, optimizer and gradient-scaler scalars, the config and any extra
entries) is one JSON object in the header's ``state`` field. Tensors are written from the CPU,
so a GPU run resumes anywhere.
A ``best.`` tensor equal to its ``model.`` twin (a frozen embedding table; every tensor when the
last epoch is the best) is written once and named in the header's ``best_is_model`` list.
:func:`rank_rng_states` and :func:`restore_rng_states` take and set a process's generators;
:class:`Resumable` gives the trainer its ``save_checkpoint`` and ``load_checkpoint``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ModelFolderError
from ..fileio import atomic_write

CHECKPOINT = "checkpoint.safetensors"


@dataclass
class TrainingState:
    """What a checkpoint holds: a run's state after an optimizer step or a whole epoch.

    Attributes
    ----------
    model, best, ema : dict
        ``state_dict``s of the live weights, of the best epoch's weights and of the moving
        average (empty without ``train.ema``).
    optimizer : dict
        The optimizer's ``state_dict()``.
    torch_rng : torch.Tensor
        ``torch.get_rng_state()``.
    numpy_rng : dict
        The numpy generator's ``bit_generator.state``.
    epoch, best_epoch : int
        Epochs done, and the one whose weights are ``best``.
    best_score : float
        Its selecting score (:func:`textcnn.training.stopping.selection_score`).
    history : list of dict
        One row per epoch done.
    optimizer_step : int
        Optimizer steps taken.
    batch_in_epoch : int
        Batches of the current epoch done (0 after a whole epoch); ``numpy_rng`` is then the
        state the epoch's plan was drawn from, so the plan is drawn again and those skipped.
    epoch_loss : list of float
        ``[summed training loss, rows]`` of the current epoch so far.
    extra_rngs : dict
        More generator states: ``torch.<rank>`` of ranks other than 0, ``cuda.<rank>`` on CUDA.
    scaler : dict or None
        The fp16 gradient scaler's ``state_dict()`` (None when it is off).
    stopped : str or None
        Why the run stopped, once it has (one of ``stopping.STOP_REASONS``); None while it runs.
    """

    model: dict[str, torch.Tensor]
    best: dict[str, torch.Tensor]
    ema: dict[str, torch.Tensor]
    optimizer: dict
    torch_rng: torch.Tensor
    numpy_rng: dict
    epoch: int
    best_epoch: int
    best_score: float
    history: list[dict]
    optimizer_step: int
    batch_in_epoch: int = 0
    epoch_loss: list[float] = field(default_factory=lambda: [0.0, 0.0])
    extra_rngs: dict[str, torch.Tensor] = field(default_factory=dict)
    scaler: dict | None = None
    stopped: str | None = None


def write_checkpoint(path: str | Path, state: TrainingState, extra: dict | None = None) -> Path:
    """Write ``state`` to ``path`` atomically (temp file + rename).

    Parameters
    ----------
    path : path
        The file to write (usually ``<output>/checkpoint.safetensors``).
    state : TrainingState
        The run's state.
    extra : dict, optional
        More JSON entries for the header (the config, the tokenizer...), returned again by
        :func:`read_checkpoint`.

    Returns
    -------
    Path
        ``path``.
    """
    tensors = {f"model.{k}": v for k, v in state.model.items()}
    best_is_model = [k for k, v in state.best.items()
                     if k in state.model and torch.equal(v, state.model[k])]
    tensors.update({f"best.{k}": v for k, v in state.best.items() if k not in best_is_model})
    tensors.update({f"ema.{k}": v for k, v in state.ema.items()})
    tensors["rng.torch"] = state.torch_rng
    tensors.update({f"rng.{k}": v for k, v in state.extra_rngs.items()})
    scalars = {}
    for pid, param_state in state.optimizer["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value
            else:
                scalars[f"{pid}.{key}"] = value
    meta = {
        "epoch": state.epoch, "optimizer_step": state.optimizer_step,
        "batch_in_epoch": state.batch_in_epoch, "epoch_loss": state.epoch_loss,
        "scaler": state.scaler, "stopped": state.stopped,
        "best_epoch": state.best_epoch, "best_score": state.best_score, "history": state.history,
        "rng_numpy": state.numpy_rng,
        "param_groups": state.optimizer["param_groups"], "optim_scalars": scalars,
        "best_is_model": best_is_model,
        **(extra or {}),
    }
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return atomic_write(Path(path), lambda tmp: save_file(
        tensors, tmp, metadata={"state": json.dumps(meta)}))


def read_checkpoint(path: str | Path, tensors: bool = True
                    ) -> tuple[dict[str, torch.Tensor] | None, dict]:
    """``(tensors, metadata)`` of a checkpoint; ``tensors=False`` reads only the small header.

    Parameters
    ----------
    path : path
        A file written by :func:`write_checkpoint`.
    tensors : bool
        Also load the tensors (else None is returned for them).

    Returns
    -------
    tuple
        ``({name: tensor} or None, header dict)``.

    Raises
    ------
    ModelFolderError
        When the file is missing or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFolderError(f"no checkpoint to resume from: {path} does not exist")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = json.loads(fh.metadata()["state"])
        return (load_file(str(path)) if tensors else None), meta
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ModelFolderError(f"corrupt checkpoint {path}: {exc}") from None
    except Exception as exc:  # safetensors raises its own error type on bad headers
        raise ModelFolderError(f"corrupt checkpoint {path}: {exc}") from None


def unpack_checkpoint(tensors: dict[str, torch.Tensor], meta: dict) -> TrainingState:
    """The :class:`TrainingState` stored in what :func:`read_checkpoint` returned.

    Parameters
    ----------
    tensors : dict
        ``{name: tensor}`` of the file.
    meta : dict
        Its header.

    Returns
    -------
    TrainingState
    """
    optimizer_state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, pid, name = key.split(".", 2)
            optimizer_state.setdefault(int(pid), {})[name] = value
    for key, value in meta["optim_scalars"].items():
        pid, name = key.split(".", 1)
        optimizer_state.setdefault(int(pid), {})[name] = value
    return TrainingState(
        model={k[6:]: v for k, v in tensors.items() if k.startswith("model.")},
        best={**{k: tensors[f"model.{k}"] for k in meta.get("best_is_model", [])},
              **{k[5:]: v for k, v in tensors.items() if k.startswith("best.")}},
        ema={k[4:]: v for k, v in tensors.items() if k.startswith("ema.")},
        optimizer={"state": optimizer_state, "param_groups": meta["param_groups"]},
        torch_rng=tensors["rng.torch"], numpy_rng=meta["rng_numpy"],
        epoch=meta["epoch"], best_epoch=meta["best_epoch"], best_score=meta["best_score"],
        history=meta["history"], optimizer_step=meta["optimizer_step"],
        batch_in_epoch=meta.get("batch_in_epoch", 0),
        epoch_loss=meta.get("epoch_loss", [0.0, 0.0]),
        extra_rngs={k[4:]: v for k, v in tensors.items()
                    if k.startswith("rng.") and k != "rng.torch"},
        scaler=meta.get("scaler"), stopped=meta.get("stopped"),
    )


def rank_rng_states(device: torch.device) -> dict[str, torch.Tensor]:
    """This process's generator states: the CPU's, and the GPU's when training on CUDA."""
    states = {"torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def restore_rng_states(state: TrainingState, rank: int, device: torch.device) -> None:
    """Set this rank's generators from a checkpoint (rank 0's CPU state when it has none)."""
    torch.set_rng_state(state.torch_rng if rank == 0 else
                        state.extra_rngs.get(f"torch.{rank}", state.torch_rng))
    cuda = state.extra_rngs.get(f"cuda.{rank}")
    if cuda is not None and device.type == "cuda":
        torch.cuda.set_rng_state(cuda, device)


class Resumable:
    """A trainer's checkpoint: :meth:`save_checkpoint` writes its whole state, from which
    :meth:`load_checkpoint` continues it exactly (the :class:`~textcnn.training.Trainer`'s
    attributes: weights, best and average weights, optimizer, scaler, generators, counters,
    history, the data position and why the run stopped)."""

    def save_checkpoint(self) -> Path | None:
        """Write everything needed to resume into ``checkpoint_dir``, atomically (rank 0).

        Every rank calls it at the same step: the ranks' generator states are gathered.

        Returns
        -------
        Path or None
            The file written (None on other ranks).
        """
        rngs = self.world.gather(rank_rng_states(self.device))
        if not self.world.is_main:
            return None
        extra = {f"{kind}.{rank}": state for rank, states in enumerate(rngs)
                 for kind, state in states.items() if (kind, rank) != ("torch", 0)}
        state = TrainingState(
            model=self.model.state_dict(), best=self.best_state,
            ema=self.ema_model.state_dict() if self.ema_model is not None else {},
            optimizer=self.optimizer.state_dict(), torch_rng=rngs[0]["torch"],
            numpy_rng=self.epoch_rng_state, epoch=self.epoch,
            best_epoch=self.best_epoch, best_score=self.best_score, history=self.history,
            optimizer_step=self.step, batch_in_epoch=self.batch_in_epoch,
            epoch_loss=self.epoch_loss, extra_rngs=extra,
            scaler=self.scaler.state_dict() if self.scaler.is_enabled() else None,
            stopped=self.stopped,
        )
        path = write_checkpoint(self.checkpoint_dir / CHECKPOINT, state,
                                {"config": self.config.to_dict(), **self.extra_state})
        self.checkpoint_step = self.step
        return path

    def load_checkpoint(self, path: str | Path) -> dict:
        """Restore a checkpoint written by :meth:`save_checkpoint` (every rank reads it).

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
        self.best_state = {k: v.to(self.device) for k, v in state.best.items()}
        if self.ema_model is not None:
            self.ema_model.load_state_dict(state.ema)
        restore_rng_states(state, self.world.rank, self.device)
        self.epoch_rng_state = state.numpy_rng
        self.rng.bit_generator.state = state.numpy_rng
        self.optimizer.load_state_dict(state.optimizer)
        if state.scaler is not None and self.scaler.is_enabled():
            self.scaler.load_state_dict(state.scaler)
        self.epoch, self.best_epoch = state.epoch, state.best_epoch
        self.best_score, self.history = state.best_score, state.history
        self.batch_in_epoch, self.epoch_loss = state.batch_in_epoch, list(state.epoch_loss)
        self.stopped = state.stopped
        self.step = state.optimizer_step
        self.checkpoint_step = self.step
        return meta

