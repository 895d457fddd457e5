"""Devices and precision: which device a name means, moving a host batch there, autocast.

Batches are always built on the host (numpy) and moved once per step: pinned and copied without
blocking on CUDA. ``train.precision`` picks the autocast dtype of the training forward pass;
``fp16`` adds a gradient scaler. Weights stay float32 on every device, so a model trained on a
GPU loads on a CPU-only machine.

Example
-------
>>> resolve_device("cpu")
device(type='cpu')
>>> import torch
>>> ids, lengths = to_device((torch.zeros(2, 3, dtype=torch.int64), torch.tensor([3, 1])),
...                          torch.device("cpu"))
>>> ids.device.type, precision_dtype("bf16")
('cpu', torch.bfloat16)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn

from .errors import ConfigError
from .fields import is_device_name

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(name: str = "auto", local_rank: int = 0) -> torch.device:
    """The device ``name`` means here: ``auto`` is CUDA when present, else the CPU.

    Parameters
    ----------
    name : str
        ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
    local_rank : int
        Under torchrun, ``auto`` and ``cuda`` mean ``cuda:<local rank>`` (one GPU per process).

    Raises
    ------
    ConfigError
        An unknown name, or a device this machine does not have.
    """
    if not is_device_name(name):
        raise ConfigError(f"device {name!r}: expected auto, cpu, cuda, cuda:N or mps")
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device 'mps': this machine has no Apple GPU (MPS) available")
    if name.startswith("cuda"):
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = int(name.split(":")[1]) if ":" in name else local_rank
        if index >= count:
            raise ConfigError(f"device {name!r}: this machine has {count} CUDA device(s)"
                              + ("" if count else " (torch built without CUDA, or no GPU)"))
        return torch.device("cuda", index)
    return torch.device(name)


def to_device(tensors: tuple[torch.Tensor, ...], device: torch.device
              ) -> tuple[torch.Tensor, ...]:
    """Host tensors on ``device``: pinned and copied without blocking on CUDA, as is on the CPU."""
    if device.type == "cpu":
        return tuple(tensors)
    if device.type == "cuda":
        return tuple(t.pin_memory().to(device, non_blocking=True) for t in tensors)
    return tuple(t.to(device) for t in tensors)


def model_device(model: nn.Module) -> torch.device:
    """The device of ``model``'s first parameter (the CPU for a model without any)."""
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def precision_dtype(precision: str) -> torch.dtype:
    """The dtype of ``fp32``, ``bf16`` or ``fp16``."""
    return PRECISIONS[precision]


def autocast(device: torch.device, precision: str) -> contextlib.AbstractContextManager:
    """``torch.autocast`` to ``precision`` on ``device``; no change for ``fp32``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=precision_dtype(precision))


def grad_scaler(device: torch.device, precision: str) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for ``fp16`` only (a disabled one passes everything through)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
