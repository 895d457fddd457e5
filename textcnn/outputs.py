"""A run's output folder, taken at the start of the run, before any data is loaded.

:func:`claim` creates the folder (a path under a file, a read-only file system and a missing
permission fail here, not after an epoch), locks it against a second run into it (a lock file
holding the owner's pid, ``flock``-ed while the run lives, removed when it ends; a lock left by a
killed run is taken over), and removes the temp files that killed writes left there; a run that
ends with nothing written leaves no empty folder behind (only folders the claim created go).
:func:`check_room` fails before the first epoch when the file system lacks room for the
checkpoints and the model.

Example
-------
>>> with claim(tmp_dir / "out") as folder:
...     holder = int((folder / LOCK).read_text())
...     try:
...         with claim(folder):
...             pass
...     except OutputError as exc:
...         print(str(exc).replace(str(folder), "OUT").replace(str(holder), "PID"))
output folder OUT is in use by another run (pid PID): wait for it to end or choose another \
output folder (the lock is OUT/.textcnn.lock)
>>> holder == os.getpid(), (tmp_dir / "out" / LOCK).exists()
(True, False)
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from torch import nn

from .errors import OutputError
from .fileio import remove_orphans, write_failure

LOCK = ".textcnn.lock"


def _failure(path: Path, exc: OSError) -> OutputError:
    return write_failure(path, exc) or OutputError(f"cannot write {path}: {exc}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _holder(fd: int) -> int | None:
    """The pid written in an open lock file, None when it holds none."""
    os.lseek(fd, 0, os.SEEK_SET)
    text = os.read(fd, 64).decode("ascii", "replace").strip()
    return int(text) if text.isdigit() else None


def _try_lock(fd: int) -> bool:
    """Take the lock on ``fd``: ``flock`` where the file system has it, else the pid test."""
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:  # no flock on this file system: a live pid other than ours holds it
        if exc.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
            raise
        holder = _holder(fd)
        return holder is None or holder == os.getpid() or not _pid_alive(holder)


def _lock(folder: Path) -> int:
    """An open, locked descriptor of ``folder/LOCK`` holding our pid."""
    path = folder / LOCK
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _failure(path, exc) from None
        if not _try_lock(fd):
            holder = _holder(fd)
            os.close(fd)
            raise OutputError(
                f"output folder {folder} is in use by another run (pid {holder}): wait for it to "
                f"end or choose another output folder (the lock is {path})")
        with contextlib.suppress(FileNotFoundError):  # the owner may have just removed it
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                except OSError as exc:
                    os.close(fd)
                    raise _failure(path, exc) from None
                return fd
        os.close(fd)


def _missing(folder: Path) -> list[Path]:
    """``folder`` and those of its parents that do not exist yet, deepest first."""
    missing = []
    while not folder.exists() and folder != folder.parent:
        missing.append(folder)
        folder = folder.parent
    return missing


def _remove_if_empty(folders: list[Path]) -> None:
    """Remove each of ``folders`` (deepest first) that is empty; stop at the first that is not."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # holds something (a checkpoint to resume from, another run's files)
            return


@contextlib.contextmanager
def claim(folder: str | Path) -> Iterator[Path]:
    """Create, lock and sweep ``folder`` for a run (see the module docstring); the lock goes
    when the block ends, however it ends, and so do the folders the claim created when the run
    left nothing in them (a run that failed before its first checkpoint)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output folder {folder} is a file, not a folder")
    created = _missing(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _failure(folder, exc) from None
    try:
        fd = _lock(folder)
    except OutputError:
        _remove_if_empty(created)
        raise
    try:
        remove_orphans(folder)
        yield folder
    finally:
        with contextlib.suppress(OSError):
            if os.stat(folder / LOCK).st_ino == os.fstat(fd).st_ino:
                os.unlink(folder / LOCK)
        os.close(fd)
        _remove_if_empty(created)


def check_room(folder: str | Path, model: nn.Module, ema: bool = False) -> None:
    """Fail when ``folder``'s file system has less free space than a run of ``model`` writes:
    two checkpoints at once (the last stays until the next is complete) of the live, best and
    moving-average weights and two optimizer moments, and the model's weights."""
    folder = Path(folder)
    weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    checkpoint = weights * (4 + int(ema))
    need = 2 * checkpoint + weights
    with contextlib.suppress(OSError):
        need -= (folder / "checkpoint.safetensors").stat().st_size  # a run being resumed
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if free < need:
        mib = 1 << 20
        raise OutputError(
            f"output folder {folder}: {free / mib:.1f} MiB free on its file system, but this "
            f"run writes about {need / mib:.1f} MiB (two checkpoints at once, then the model); "
            "free some space or choose another output folder")
