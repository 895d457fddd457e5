"""Atomic file writes: write a temp file in the same folder, then rename over the target.

A run killed mid-write leaves the old file (or none), never half of a new one. Each write
happens in a folder of its own beside the target, ``.<name>.<8 characters>.tmp/``, so whatever a
killed process leaves (the half-written file, and the temp files a writer makes beside the path
it was given, such as safetensors' ``.tmpXXXXXX``) is inside it; :func:`remove_orphans` sweeps
those folders (a run does so when it takes its output folder), and the temp files that earlier
versions left beside their targets. Files are created like ``open()`` creates
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
import shutil
from collections.abc import Callable
from pathlib import Path

from .errors import OutputError, TextCNNError

ORPHAN = re.compile(r"\..+\.[a-z0-9_]{8}\.tmp")  # also matches tempfile.mkstemp's names
# the temp file of a writer that renames it over the path it was given (Rust's tempfile crate,
# which safetensors uses); only earlier versions, which wrote beside the target, left it there
WRITER_TEMP = re.compile(r"\.tmp[A-Za-z0-9]{6}")


def _new_temp(path: Path) -> Path:
    """An empty, new file ``.<name>.<8 characters>.tmp/<name>`` beside ``path``, in a new folder
    of its own (``O_EXCL``; the umask applies to its mode)."""
    while True:
        work = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            work.mkdir()
        except FileExistsError:
            continue
        tmp = work / path.name
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
        return tmp


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
        shutil.rmtree(tmp.parent, ignore_errors=True)
    except BaseException as exc:
        if tmp is not None:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        failure = write_failure(path, exc)
        if failure is not None:
            raise failure from None
        raise
    return path


def remove_orphans(folder: str | Path) -> list[Path]:
    """Delete what killed writes left in ``folder`` (their folders and temp files); returns it.

    Only for a folder no other process writes into (a run calls it holding the folder's lock).
    """
    folder = Path(folder)
    removed = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError), os.scandir(folder) as it:
        for entry in it:
            path = folder / entry.name
            if entry.is_dir(follow_symlinks=False) and ORPHAN.fullmatch(entry.name):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
            elif entry.is_file(follow_symlinks=False) and (
                    ORPHAN.fullmatch(entry.name) or WRITER_TEMP.fullmatch(entry.name)):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))


def write_json(path: str | Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2) + "\n")


def write_jsonl(path: str | Path, rows) -> Path:
    return write_text(path, "".join(json.dumps(row) + "\n" for row in rows))
