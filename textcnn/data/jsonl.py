"""JSON lines: the reader of ``.jsonl`` (and ``.json``) split files, one JSON object per line.

Every path that reads such a file (a whole split, a streamed shard, ``textcnn evaluate``) reads
it here, so a line is parsed, and a bad one named, the same way everywhere. The file is read in
bounded blocks (:func:`textcnn.texts.file_lines`), one line decoded at a time: a line that is
not UTF-8, not JSON or not an object fails naming ``file:line``; blank lines are skipped.

Example
-------
>>> path = tmp_dir / "rows.jsonl"
>>> _ = path.write_text('{"text": "fine", "label": 1}\\n\\n{"text": "dull", "label": 0}\\n')
>>> [(index, line, row["text"]) for index, line, row in records(path)]
[(0, 1, 'fine'), (1, 3, 'dull')]
>>> where(path, 1, 3).endswith("rows.jsonl:3"), count(path)
(True, 2)
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from ..texts import decode_line, file_lines

Record = tuple[int, int | None, dict]  # (data row index, line it starts on, the row)


def records(path: Path, columns: list[str] | None = None, part: int = 0, parts: int = 1
            ) -> Iterator[Record]:
    """Every ``parts``-th row of ``path`` from row ``part`` (``columns`` is for the formats
    that can read only some; a JSON row keeps all its keys)."""
    index = -1
    for lineno, line in file_lines(path):
        if not line.strip():
            continue
        index += 1
        if index % parts != part:
            continue
        at = f"{path}:{lineno}"
        text = decode_line(line, at)
        try:
            row = json.loads(text)
        except ValueError as err:
            raise DataError(f"{at}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict):
            raise DataError(f"{at}: expected a JSON object, got {type(row).__name__}")
        yield index, lineno, row


def where(path: Path, index: int, line: int | None) -> str:
    """``file:line`` of a row, for messages."""
    return f"{path}:{line}"


def count(path: Path) -> int:
    """Data rows (non-blank lines), without parsing them."""
    return sum(1 for _, line in file_lines(path) if line.strip())
