"""Data-parallel training on PyTorch's own engine: torchrun's process group, each rank's share
of a batch, and the few collectives the trainer needs.

``torchrun --nproc-per-node N -m textcnn train CONFIG`` (or ``textcnn train --nproc N``) starts
N processes; each builds the same data and the same length-bucketed epoch plan from the seed,
takes every N-th row of each global batch (so every rank takes the same number of steps, and
``train.batch_size`` stays the global batch), and ``DistributedDataParallel`` averages the
gradients (gloo on the CPU, nccl on CUDA). Rank 0 alone validates, logs, checkpoints and writes
the model folder. One process is the same code path with a :class:`World` of size 1, in which
every collective is a no-op.

Example
-------
>>> import numpy as np
>>> world = World()  # one process
>>> rows, weight = world.shard(np.arange(5))
>>> rows.tolist(), weight, world.all_sum([2.0, 5.0]), world.broadcast({"acc": 0.5})
([0, 1, 2, 3, 4], 0.2, [2.0, 5.0], {'acc': 0.5})
>>> World(rank=1, size=2).shard(np.arange(5))[0].tolist()
[1, 3]
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from ..devices import resolve_device
from ..errors import DataError, PeerLost


@dataclass
class World:
    """This process's place among the training processes (size 1 without torchrun).

    Attributes
    ----------
    rank, size : int
        This process's rank and the number of processes.
    device : torch.device
        Where this rank trains (``cuda:<local rank>`` for CUDA under torchrun).
    """

    rank: int = 0
    size: int = 1
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, logs, checkpoints and writes the folder."""
        return self.rank == 0

    def wrap(self, model: nn.Module, multi_task: bool = False) -> nn.Module:
        """``model`` in ``DistributedDataParallel`` when there are several processes.

        A multi-task batch reaches one head only, so the other heads' parameters get no
        gradient that step: DDP is told to look for unused parameters then.
        """
        if self.size == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids,
                                                   find_unused_parameters=multi_task)

    def shard(self, idx: np.ndarray) -> tuple[np.ndarray, float]:
        """This rank's rows of the global batch ``idx`` and the weight of its summed loss.

        Rank ``r`` takes rows ``r, r + N, ...`` (each rank sees a similar mix of lengths). Its
        loss is summed and weighted by ``N / len(idx)``; DDP's mean over ranks then gives the
        gradient of the global batch's mean loss, whatever the split. A rank left without rows
        (a batch smaller than N) runs one row with weight 0, so every rank joins every step.
        """
        rows = idx[self.rank::self.size]
        if len(rows) == 0:
            return idx[:1], 0.0
        return rows, self.size / len(idx)

    def all_sum(self, values: list[float]) -> list[float]:
        """``values`` summed over every rank (float64)."""
        if self.size == 1:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self._comm_device)
        dist.all_reduce(t)
        return t.tolist()

    def broadcast(self, obj):
        """Rank 0's ``obj``, on every rank (pickled; small objects only)."""
        if self.size == 1:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self._comm_device)
        return box[0]

    def gather(self, obj) -> list:
        """Every rank's ``obj``, in rank order, on every rank."""
        if self.size == 1:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def check_same_data(self, splits: dict) -> None:
        """Fail unless every rank prepared the same training arrays (tokenizer, cut, order)."""
        if self.size == 1:
            return
        mine = 0
        for task in sorted(splits):
            train = splits[task]["train"]
            head = train.batch(np.arange(min(len(train), 2000)))[0]
            mine = zlib.crc32(head.numpy().tobytes(), zlib.crc32(task.encode(), mine))
        if len(set(self.gather(mine))) != 1:
            raise DataError("the training processes prepared different training data (is the "
                            "dataset the same file on every machine?)")

    @property
    def _comm_device(self) -> torch.device:
        """nccl moves tensors between GPUs; gloo between host buffers."""
        return self.device if dist.get_backend() == "nccl" else torch.device("cpu")


def launched_by_torchrun() -> bool:
    """True in a process started by torchrun with more than one process in all."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def current_world(device: str = "auto") -> World:
    """The :class:`World` of this process: the initialised process group's, else size 1.

    Parameters
    ----------
    device : str
        ``train.device``; under torchrun ``auto`` / ``cuda`` mean this process's own GPU.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return World(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    target = resolve_device(device, local_rank)
    if target.type == "cuda":
        torch.cuda.set_device(target)
    return World(dist.get_rank(), dist.get_world_size(), target)


@contextlib.contextmanager
def session(device: str = "auto") -> Iterator[World]:
    """Join torchrun's process group for the duration (nccl for CUDA, else gloo) and leave it.

    Outside torchrun, or when the caller already set up a process group, nothing is set up or
    torn down here.
    """
    owns = launched_by_torchrun() and dist.is_available() and not dist.is_initialized()
    if owns:
        cuda = resolve_device(device, int(os.environ.get("LOCAL_RANK", "0"))).type == "cuda"
        dist.init_process_group("nccl" if cuda else "gloo")
    try:
        yield (world := current_world(device))
    except RuntimeError as exc:  # gloo and nccl report a vanished peer as a RuntimeError
        found = PEER_GONE.search(str(exc))
        if not owns or found is None:
            raise
        raise PeerLost(f"training process {world.rank} of {world.size} lost its connection to "
                       f"another ({found.group()}): one was killed or crashed") from None
    finally:
        if owns and dist.is_initialized():
            dist.destroy_process_group()


# what gloo (and nccl) say when another process of the group went away
PEER_GONE = re.compile(r"Connection (?:closed|reset) by peer|Broken pipe|remote process exited"
                       r"|NCCL communicator was aborted")


def torchrun_command(nproc: int, argv: list[str]) -> list[str]:
    """The command that runs ``textcnn <argv>`` in ``nproc`` processes on this machine.

    Examples
    --------
    >>> torchrun_command(2, ["train", "c.yaml"])[2:]
    ['textcnn.training.launcher', '--standalone', '--nproc-per-node', '2', '-m', 'textcnn', \
'train', 'c.yaml']
    """
    return [sys.executable, "-m", "textcnn.training.launcher", "--standalone",
            "--nproc-per-node", str(nproc), "-m", "textcnn", *argv]


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``textcnn <argv>`` under torchrun in ``nproc`` local processes; its exit code."""
    return subprocess.call(torchrun_command(nproc, argv))
