"""The checkpoint file: everything needed to resume a training run, in one safetensors file.

Tensors are stored under prefixes (``model.``, ``best.``, ``ema.``, ``optim.<param>.<name>``,
``rng.torch``, and ``rng.torch.<rank>`` / ``rng.cuda.<rank>`` for other ranks and GPUs); the
rest (epoch counters, the data position within the epoch, history, the numpy generator's state,
optimizer and gradient-scaler scalars, the config and any extra entries) is one JSON object in
the header's ``state`` field. Tensors are written from the CPU, so a GPU run resumes anywhere.
A ``best.`` tensor equal to its ``model.`` twin (a frozen embedding table; every tensor when the
last epoch is the best) is written once and named in the header's ``best_is_model`` list.
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
        Its mean validation accuracy.
    history : list of dict
        One row per epoch done.
    optimizer_step : int or None
        Optimizer steps taken; None when read from a checkpoint that predates the count.
    batch_in_epoch : int
        Batches of the current epoch done (0 after a whole epoch); ``numpy_rng`` is then the
        state the epoch's plan was drawn from, so the plan is drawn again and those skipped.
    epoch_loss : list of float
        ``[summed training loss, rows]`` of the current epoch so far.
    extra_rngs : dict
        More generator states: ``torch.<rank>`` of ranks other than 0, ``cuda.<rank>`` on CUDA.
    scaler : dict or None
        The fp16 gradient scaler's ``state_dict()`` (None when it is off).
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
    optimizer_step: int | None = None
    batch_in_epoch: int = 0
    epoch_loss: list[float] = field(default_factory=lambda: [0.0, 0.0])
    extra_rngs: dict[str, torch.Tensor] = field(default_factory=dict)
    scaler: dict | None = None


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
        "scaler": state.scaler,
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
        history=meta["history"], optimizer_step=meta.get("optimizer_step"),
        batch_in_epoch=meta.get("batch_in_epoch", 0),
        epoch_loss=meta.get("epoch_loss", [0.0, 0.0]),
        extra_rngs={k[4:]: v for k, v in tensors.items()
                    if k.startswith("rng.") and k != "rng.torch"},
        scaler=meta.get("scaler"),
    )
