"""How many intra-op threads a process uses, and why.

A thread per core is right on an idle machine and wrong on a busy one: torch's worker threads
wait for each other at every operation, so one that shares its core with another process holds
all of them up (on 2 cores at a load average of 6, two threads train SST-2's default recipe
about half as fast as one). With no count asked for, a process takes the cores it may run on
(``os.sched_getaffinity``, which honours ``taskset`` and container CPU sets), shares them with
the processes torchrun started beside it on the same machine (``LOCAL_WORLD_SIZE``), and leaves
alone the cores that the load average says other programs keep busy (the average less this
process's own share of it: the data loading before training counts in the average too). An
explicit count (``train.threads``, ``--threads``, or ``OMP_NUM_THREADS``) is always taken as it
is.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ThreadChoice:
    """A thread count and the reason it was chosen (the reason is shown in the training log)."""

    count: int
    reason: str

    def __str__(self) -> str:
        return f"{self.count} thread{'s' if self.count != 1 else ''} ({self.reason})"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # not every system reports one
        return None


def _process_age() -> float | None:
    """Seconds since this process started (Linux's ``/proc``), else None."""
    try:
        with open("/proc/self/stat", encoding="ascii") as stat, \
                open("/proc/uptime", encoding="ascii") as uptime:
            started = int(stat.read().rsplit(")", 1)[1].split()[19])  # field 22, clock ticks
            return float(uptime.read().split()[0]) - started / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def own_load(cpu_seconds: float | None = None, age: float | None = None) -> float:
    """This process's share of the 1-minute load average: the kernel's average decays by
    ``exp(-5/60)`` every 5 seconds, so a process that has kept ``cpu_seconds / age`` cores busy
    for ``age`` seconds adds that rate times ``1 - exp(-age / 60)``.

    >>> round(own_load(cpu_seconds=10.0, age=10.0), 2), round(own_load(60.0, 60.0), 2)
    (0.15, 0.63)
    """
    cpu_seconds = time.process_time() if cpu_seconds is None else cpu_seconds
    age = (_process_age() or cpu_seconds) if age is None else age
    if age <= 0:
        return 0.0
    return cpu_seconds / age * (1 - math.exp(-age / 60))


def choose_threads(requested: int = 0, *, cores: int | None = None,
                   local_processes: int | None = None, load: float | None = None,
                   environ: dict | None = None) -> ThreadChoice:
    """The thread count for ``requested`` (0 = choose one) and why.

    Parameters
    ----------
    requested : int
        Threads asked for; taken as it is when positive.
    cores, local_processes, load, environ
        The machine's facts, read from this process when left out: usable cores, processes
        that torchrun started on this machine, the 1-minute load average of the other programs
        (the system's, less :func:`own_load`), the environment.

    Returns
    -------
    ThreadChoice

    Examples
    --------
    >>> str(choose_threads(3))
    '3 threads (asked for)'
    >>> str(choose_threads(cores=2, local_processes=1, load=0.2, environ={}))
    '2 threads (2 usable cores, load average 0.2)'
    >>> str(choose_threads(cores=2, local_processes=1, load=6.1, environ={}))
    '1 thread (2 usable cores, load average 6.1 keeps them busy)'
    >>> str(choose_threads(cores=2, local_processes=2, load=0.0, environ={}))
    '1 thread (2 usable cores shared by 2 processes on this machine)'
    >>> str(choose_threads(environ={"OMP_NUM_THREADS": "1"}))
    '1 thread (OMP_NUM_THREADS=1)'
    """
    if requested > 0:
        return ThreadChoice(requested, "asked for")
    environ = os.environ if environ is None else environ
    omp = environ.get("OMP_NUM_THREADS", "").strip()
    if omp.isdigit() and int(omp) > 0:
        return ThreadChoice(int(omp), f"OMP_NUM_THREADS={omp}")
    cores = usable_cores() if cores is None else cores
    if local_processes is None:
        world = environ.get("LOCAL_WORLD_SIZE", "").strip()
        local_processes = int(world) if world.isdigit() and int(world) > 0 else 1
    share = max(1, cores // local_processes)
    reason = f"{cores} usable core{'s' if cores != 1 else ''}"
    if local_processes > 1:
        return ThreadChoice(share, f"{reason} shared by {local_processes} processes on this "
                                   "machine")
    if load is None and (load := _load_average()) is not None:
        load = max(0.0, load - own_load())
    if load is None:
        return ThreadChoice(share, reason)
    idle = max(1, round(cores - load))  # cores the other programs leave free, at least one
    if idle < share:
        return ThreadChoice(idle, f"{reason}, load average {load:.1f} keeps "
                                  f"{'them' if idle == 1 else 'some'} busy")
    return ThreadChoice(share, f"{reason}, load average {load:.1f}")


def set_threads(requested: int = 0) -> ThreadChoice:
    """Set torch's intra-op thread count to :func:`choose_threads`'s choice and return it."""
    choice = choose_threads(requested)
    torch.set_num_threads(choice.count)
    return choice
