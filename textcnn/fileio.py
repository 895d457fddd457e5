"""Atomic file writes: write a temp file in the same folder, then rename over the target.

A run killed mid-write leaves the old file (or none), never half of a new one; what a killed
process leaves is a temp file named ``.<name>.<8 characters>.tmp``, which :func:`remove_orphans`
sweeps (a run does so when it takes its output folder). Files are created like ``open()`` creates
them (mode 0666 less the umask: 0644 usually), and a write that fails for want of room or
permission is an :class:`~textcnn.errors.OutputError` naming the file.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError, TextCNNError

ORPHAN = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # also matches tempfile.mkstemp's names


def _new_temp(path: Path) -> Path:
    """An empty, new file beside ``path`` (``O_EXCL``; the umask applies to its mode)."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def write_failure(path: Path, exc: BaseException) -> OutputError | None:
    """The :class:`OutputError` for a failed write of ``path``, None when ``exc`` is no I/O error
    (safetensors reports one as ``... (os error 28)``)."""
    code = exc.errno if isinstance(exc, OSError) else None
    found = re.search(r"os error (\d+)", str(exc))
    code = int(found.group(1)) if code is None and found else code
    if code is None or isinstance(exc, TextCNNError):
        return None
    if code in (errno.ENOTDIR, errno.EEXIST):
        above = next((p for p in path.parents if p.exists()), None)
        if above is not None and not above.is_dir():
            return OutputError(f"cannot write {path}: {above} is a file, not a folder")
    return OutputError(f"cannot write {path}: {os.strerror(code)}")


def atomic_write(path: str | Path, write: Callable[[str], None]) -> Path:
    """Call ``write(tmp_path)`` then atomically move ``tmp_path`` to ``path``."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _new_temp(path)
        mode = os.stat(tmp).st_mode & 0o777  # 0666 less the umask, as the kernel applied it
        write(str(tmp))
        os.chmod(tmp, mode)  # some writers (safetensors) recreate the file 0600
        os.replace(tmp, path)
    except BaseException as exc:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        failure = write_failure(path, exc)
        if failure is not None:
            raise failure from None
        raise
    return path


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete the temp files that killed writes left in ``folder``; returns them.

    Only for a folder no other process writes into (a run calls it holding the folder's lock).
    """
    folder = Path(folder)
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        if ORPHAN.fullmatch(entry.name) and entry.is_file():
            with contextlib.suppress(FileNotFoundError):
                entry.unlink()
                removed.append(entry)
    return removed


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: str | Path, rows) -> Path:
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
