"""CSV and TSV: the reader of ``.csv`` / ``.tsv`` split files (a header line, then rows).

The one place a delimited file is parsed (Python's ``csv`` module, strict), for a whole split,
a streamed shard and ``textcnn evaluate`` alike. Lines are read in bounded blocks and decoded one
at a time (:func:`textcnn.texts.file_lines`), so a field may be as long as a line and a byte that
is not UTF-8 fails naming its line. A row with more fields than the header, or a quoted field
never closed, fails naming the line it starts on; a blank line is skipped; an empty cell is a
missing value.

Cells are text. What a label cell means is decided where the reader's rows are used:
:func:`typed_column` types a whole label column at once as spreadsheets and pandas do (all
integers: class ids; all numbers: numbers; else names), which a split read whole can do;
:func:`typed_cell` types one cell (an integer-looking cell is an id), which is all a stream
sees.

Example
-------
>>> path = tmp_dir / "rows.csv"
>>> _ = path.write_text('text,label\\n"a fine, witty film",1\\n\\ndull,0\\n')
>>> [(index, line, row["text"]) for index, line, row in records(path)]
[(0, 2, 'a fine, witty film'), (1, 4, 'dull')]
>>> where(path, 1, 4).endswith("rows.csv: row 2 (line 4)"), count(path)
(True, 2)
>>> typed_column(["1", "0", None]), typed_column(["0", "abbreviation"])
([1, 0, None], ['0', 'abbreviation'])
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError
from ..texts import MAX_LINE_BYTES, decode_line, file_lines

Record = tuple[int, int | None, dict]
_INT = re.compile(r"\s*[+-]?\d+\s*")
_FLOAT = re.compile(r"\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|infinity)\s*",
                    re.IGNORECASE)
_BOOLS = {"True": True, "TRUE": True, "true": True, "False": False, "FALSE": False,
          "false": False}
# the cells pandas reads as missing (its default na_values), so a column reads as it did there
MISSING = {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
           "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}


def delimiter_of(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def _lines(path: Path) -> Iterator[str]:
    """The lines of ``path`` for :func:`csv.reader`, decoded one at a time."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    for lineno, line in file_lines(path):
        yield decode_line(line, f"{path}:{lineno}") + "\n"


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """``(line the row starts on, fields)`` per row, the header first; blank lines skipped."""
    delimiter = delimiter_of(path)
    reader = csv.reader(_lines(path), delimiter=delimiter, strict=True)
    start, width = 1, None
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            what = "a quoted field opened here is never closed" if "end of data" in str(err) \
                else str(err)
            raise DataError(f"{path}:{start}: {what}") from None
        if row:
            width = len(row) if width is None else width
            if len(row) > width:
                sep = "a tab" if delimiter == "\t" else f"'{delimiter}'"
                raise DataError(f"{path}:{start}: {len(row)} fields, but the header has "
                                f"{width} (quote a field that holds {sep})")
            yield start, row
        start = reader.line_num + 1


def header(path: Path) -> list[str]:
    """The column names (an empty list for an empty file)."""
    return next((row for _, row in _rows(path)), [])


def records(path: Path, columns: list[str] | None = None, part: int = 0, parts: int = 1
            ) -> Iterator[Record]:
    """Every ``parts``-th data row of ``path`` from row ``part``, as ``{column: cell}`` (an empty
    cell, or a short row's absent one, is None)."""
    rows = _rows(path)
    names = next(rows, (0, []))[1]
    for index, (lineno, row) in enumerate(rows):
        if index % parts == part:
            cells = {name: (row[i] if i < len(row) and row[i] != "" else None)
                     for i, name in enumerate(names)}
            yield index, lineno, cells


def where(path: Path, index: int, line: int | None) -> str:
    """``file: row N (line L)`` of a data row, for messages."""
    return f"{path}: row {index + 1} (line {line})"


def count(path: Path) -> int:
    """Data rows (the header not counted)."""
    return max(sum(1 for _ in _rows(path)) - 1, 0)


def typed_cell(cell):
    """One label cell as a stream reads it: an integer-looking cell is an id, else a name."""
    if isinstance(cell, str) and cell.lstrip("-").isdigit():
        return int(cell)
    return cell


def typed_column(cells: list) -> list:
    """A whole column typed as pandas types it: integers when every cell is one, numbers when
    every cell is one, booleans likewise, else the cells as written (missing cells None)."""
    cells = [None if cell is None or cell in MISSING else cell for cell in cells]
    present = [cell for cell in cells if cell is not None]
    if present and all(_INT.fullmatch(c) for c in present):
        return [None if c is None else int(c) for c in cells]
    if present and all(_FLOAT.fullmatch(c) or c.strip().lower() in ("nan", "-nan")
                       for c in present):
        return [None if c is None else float(c) for c in cells]
    if present and all(c in _BOOLS for c in present):
        return [None if c is None else _BOOLS[c] for c in cells]
    return cells
