"""Texts to predict: ``textcnn predict --file`` / stdin read one input at a time.

A prediction input is a line of text, or, for a ``.jsonl`` file (or ``--jsonl``), a JSON line
with ``text`` and an optional ``id``. It is read here, beside the training formats, so that the
same line rules hold (bounded blocks, a BOM skipped, a line that is not UTF-8 or too long named
by its line, every text checked by :func:`textcnn.texts.text_problem`); unlike a split file, a
prediction file carries no labels and may be stdin.

Example
-------
>>> path = tmp_dir / "in.jsonl"
>>> _ = path.write_text('{"text": "a gorgeous film", "id": "r1"}\\n\\n{"text": "dull"}\\n')
>>> list(read_inputs(str(path)))
[('r1', 'a gorgeous film'), (None, 'dull')]
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator

from ..errors import TextCNNError
from ..texts import check_text, decode_line, read_lines


def file_lines(path: str) -> Iterator[str]:
    """The lines of ``path`` ('-' = stdin) without their line ending, read in bounded blocks
    (:func:`textcnn.texts.read_lines`: a leading BOM skipped, a line over
    :data:`~textcnn.texts.MAX_LINE_BYTES` refused naming it); a line that is not UTF-8 fails
    naming it."""
    name = "stdin" if path == "-" else path
    try:
        fh = getattr(sys.stdin, "buffer", sys.stdin) if path == "-" else open(path, "rb")  # noqa: SIM115
    except OSError as exc:
        raise TextCNNError(f"cannot read --file {path}: {exc.strerror or exc}") from None
    try:
        if not isinstance(fh.read(0), bytes):  # a text stream put in stdin's place
            yield from (line.rstrip("\r\n") for line in fh)
            return
        for lineno, line in read_lines(fh, name):
            yield decode_line(line, f"{name}:{lineno}")
    except OSError as exc:
        raise TextCNNError(f"cannot read --file {path}: {exc.strerror or exc}") from None
    finally:
        if path != "-":
            fh.close()


def read_inputs(path: str, jsonl: bool = False) -> Iterator[tuple[object, str]]:
    """``(id, text)`` per input of ``path`` ('-' = stdin), read one at a time: a line of text
    (id None), or, for a ``.jsonl`` file or ``jsonl``, a JSON line with ``text`` and an optional
    ``id``; a bad JSON line or a text :func:`textcnn.texts.text_problem` refuses fails naming
    its line."""
    as_json = jsonl or path.endswith(".jsonl")
    for lineno, line in enumerate(file_lines(path), 1):
        where = f"{'stdin' if path == '-' else path}:{lineno}"
        if not as_json:
            yield None, check_text(line, where)
        elif line.strip():
            id_, text = _json_input(where, line)
            yield id_, check_text(text, where)


def _json_input(where: str, line: str) -> tuple[object, str]:
    try:
        row = json.loads(line)
    except ValueError as exc:
        raise TextCNNError(f"{where}: not valid JSON ({exc})") from None
    if not isinstance(row, dict) or not isinstance(row.get("text"), str):
        raise TextCNNError(f'{where}: expected {{"text": "...", "id": ...}}')
    return row.get("id"), row["text"]
