"""A split file's rows, whatever its format: one reader per format, chosen by the file's suffix.

:mod:`~textcnn.data.jsonl`, :mod:`~textcnn.data.delimited` (CSV / TSV) and
:mod:`~textcnn.data.parquet` each parse their format and nothing else; this module is what
every path reads through. :func:`read_split` reads a whole split file (the eager path: its texts,
raw labels and fold column, a column missing from every row named as such); :func:`read_rows`
reads it a row at a time as ``(text, label, where)`` (a streamed shard, ``textcnn evaluate``),
every ``parts``-th row from ``part`` so that several readers share a file without overlap. Both
refuse the same rows (a missing text or label, a text that is not a string or that
:func:`textcnn.texts.text_problem` refuses) naming ``where``: ``file:line`` for JSON lines,
``file: row N (line L)`` for CSV, ``file: row N`` for Parquet.

Example
-------
>>> path = tmp_dir / "train.jsonl"
>>> _ = path.write_text('{"text": "a good film", "label": 1}\\n{"text": "dull", "label": 0}\\n')
>>> [(text, label) for text, label, _ in read_rows(path, "text", "label")], count_rows(path)
([('a good film', 1), ('dull', 0)], 2)
>>> [text for text, _, _ in read_rows(path, "text", "label", part=1, parts=2)]
['dull']
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

import textcnn.data.delimited as delimited  # the reader modules themselves, not the package
import textcnn.data.jsonl as jsonl
import textcnn.data.parquet as parquet

from ..errors import DataError
from ..texts import check_file_lines, check_text
from .resolve import FILE_FORMATS

Row = tuple[object, object, str]  # (text, label, where: "path:line" for messages)
READERS: dict[str, ModuleType] = {"json": jsonl, "csv": delimited, "parquet": parquet}


def reader_of(path: Path) -> ModuleType:
    """The reader module of ``path``'s format; an unknown suffix fails naming the file."""
    kind = FILE_FORMATS.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} "
                        f"(use {', '.join(FILE_FORMATS)})")
    return READERS[kind]


def where(path: Path, index: int, line: int | None) -> str:
    """How a message names row ``index`` (starting on ``line``) of ``path``."""
    return reader_of(path).where(path, index, line)


def count_rows(path: Path) -> int:
    """Data rows of one file (JSON lines: non-blank lines; CSV: rows after the header;
    Parquet: its metadata), without tokenizing or keeping them."""
    return reader_of(path).count(path)


def _field(row: dict, column: str, at: str, what: str) -> object:
    if row.get(column) is None:
        raise DataError(f"{at}: missing {what} field '{column}' (columns: "
                        f"{', '.join(row)}); set tasks.<name>.{what}_column")
    return row[column]


def read_rows(path: Path, text_column: str, label_column: str, part: int = 0,
              parts: int = 1) -> Iterator[Row]:
    """Every ``parts``-th row of one file from row ``part``, one at a time (see the module
    docstring); a CSV label cell is typed alone (:func:`~textcnn.data.delimited.typed_cell`)."""
    reader = reader_of(path)
    for index, line, row in reader.records(path, [text_column, label_column], part, parts):
        at = reader.where(path, index, line)
        text = _field(row, text_column, at, "text")
        label = _field(row, label_column, at, "label")
        if not isinstance(text, str):
            raise DataError(f"{at}: text field '{text_column}' is not a string")
        if reader is delimited:
            label = delimited.typed_cell(label)
        yield check_text(text, at), label, at


@dataclass
class SplitFile:
    """A split file read whole: texts, raw labels, the fold column (or None) and the line each
    row starts on (for messages)."""

    path: Path
    texts: list[str]
    labels: list
    folds: np.ndarray | None
    lines: list[int | None]

    def where(self, index: int) -> str:
        return where(self.path, index, self.lines[index])


def _is_blank(path: Path) -> bool:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return False
    return True


def read_split(path: Path, text_column: str, label_column: str, no_label_ok: bool = False
               ) -> SplitFile:
    """Every row of one split file (see the module docstring). ``no_label_ok``: a missing
    label is no label (a multi-label task's empty CSV cell) rather than an error."""
    reader = reader_of(path)
    if reader is not parquet:
        if _is_blank(path):
            raise DataError(f"{path}: no data rows (the file is empty or holds only blank lines)")
        check_file_lines(path)
    try:
        rows = list(reader.records(path))
    except UnicodeDecodeError:  # pyarrow decodes lazily: a bad byte surfaces on first read
        raise DataError(f"{path}: not valid UTF-8") from None
    if not rows:
        only = " (only a header line)" if reader is delimited else ""
        raise DataError(f"{path}: no data rows{only}")
    names = delimited.header(path) if reader is delimited else \
        list(dict.fromkeys(key for _, _, row in rows for key in row))
    for col, kind in ((text_column, "text"), (label_column, "label")):
        if col not in names:
            raise DataError(
                f"{path}: no column '{col}' (columns: {', '.join(names)}); "
                f"set tasks.<name>.{kind}_column (textcnn train --dataset: --{kind}-column)")
    texts = [row.get(text_column) for _, _, row in rows]
    labels = [row.get(label_column) for _, _, row in rows]
    folds = [row.get("fold") for _, _, row in rows] if "fold" in names else None
    if reader is delimited:  # a whole column is typed at once
        labels = delimited.typed_column(labels)
        folds = delimited.typed_column(folds) if folds is not None else None
    split = SplitFile(path, texts, labels, None if folds is None else np.asarray(folds),
                      [line for _, line, _ in rows])
    for i, (text, label) in enumerate(zip(texts, labels)):
        if text is None:
            raise DataError(f"{split.where(i)}: missing text field '{text_column}'")
        if label is None and not no_label_ok:
            raise DataError(f"{split.where(i)}: missing label field '{label_column}'")
        if not isinstance(text, str):
            raise DataError(f"{split.where(i)}: text field '{text_column}' is not a string")
        check_text(text, lambda i=i: split.where(i))  # the line is found on failure only
    return split
