"""Corpora read as a stream: finding a task's shards and reading their rows without loading them.

A streamed task's training split is one file, a glob of shards, or a dataset folder's ``train``
shards (``train.jsonl``, ``train-*.jsonl``, ``train/*.jsonl``; ``.csv``, ``.tsv`` and
``.parquet`` likewise). :class:`StreamSource` reads rows lazily, a part at a time: ``parts``
readers (every DataLoader worker of every rank) each take whole shards when there are enough of
them, else every ``parts``-th row of each shard, so no row is read twice and none is skipped.
Only one row (or one Parquet record batch) is in memory at a time.

Example
-------
>>> path = tmp_dir / "train.jsonl"
>>> _ = path.write_text('{"text": "a good film", "label": 1}\\n{"text": "dull", "label": 0}\\n')
>>> source = StreamSource([str(path)])
>>> [(text, label) for text, label, _ in source.rows()], source.count()
([('a good film', 1), ('dull', 0)], 2)
>>> [text for text, _, _ in source.rows(part=1, parts=2)]
['dull']
"""

from __future__ import annotations

import contextlib
import csv
import glob
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .data import FILE_BUILDERS, data_dir_from
from .errors import DataError
from .texts import MAX_LINE_BYTES, check_text, decode_line, file_lines

Row = tuple[object, object, str]  # (text, label, where: "path:line" for messages)
PARQUET_BATCH = 4096  # rows per Parquet record batch read


@dataclass
class StreamSource:
    """The shards of a streamed split and the columns read from them (picklable: it travels to
    DataLoader workers)."""

    files: list[str]
    text_column: str = "text"
    label_column: str = "label"
    _count: int | None = field(default=None, repr=False, compare=False)

    def parts_of(self, part: int, parts: int) -> list[tuple[str, int, int]]:
        """``(file, row part, row parts)`` read by reader ``part`` of ``parts``."""
        if len(self.files) >= parts:
            return [(f, 0, 1) for f in self.files[part::parts]]
        return [(f, part, parts) for f in self.files]

    def rows(self, part: int = 0, parts: int = 1) -> Iterator[Row]:
        """The rows reader ``part`` of ``parts`` takes, in file order."""
        for path, row_part, row_parts in self.parts_of(part, parts):
            yield from read_rows(Path(path), self.text_column, self.label_column,
                                 row_part, row_parts)

    def head(self, n: int) -> Iterator[Row]:
        """At most ``n`` rows, taken evenly from the head of every shard (a bounded sample)."""
        per_file = -(-n // len(self.files))
        for path in self.files:
            for i, row in enumerate(read_rows(Path(path), self.text_column, self.label_column)):
                if i >= per_file:
                    break
                yield row

    def count(self) -> int:
        """Rows in all shards: Parquet metadata, else one pass over the bytes (no parsing);
        counted once."""
        if self._count is None:
            self._count = sum(count_rows(Path(f)) for f in self.files)
        return self._count


def read_rows(path: Path, text_column: str, label_column: str, part: int = 0,
              parts: int = 1) -> Iterator[Row]:
    """Every ``parts``-th row of one file, starting at row ``part`` (blank lines skipped)."""
    kind = FILE_BUILDERS.get(path.suffix.lower())
    readers = {"json": _json_rows, "csv": _csv_rows, "parquet": _parquet_rows}
    if kind not in readers:
        raise DataError(f"{path}: unsupported file type {path.suffix!r} "
                        f"(use {', '.join(FILE_BUILDERS)})")
    for text, label, where in readers[kind](path, text_column, label_column, part, parts):
        if isinstance(text, str):
            check_text(text, where)
        yield text, label, where


def _field(row: dict, column: str, where: str, what: str) -> object:
    if column not in row or row[column] is None:
        raise DataError(f"{where}: missing {what} field '{column}' (columns: "
                        f"{', '.join(row)}); set tasks.<name>.{what}_column")
    return row[column]


def _json_rows(path: Path, text_column: str, label_column: str, part: int, parts: int
               ) -> Iterator[Row]:
    index = -1
    for lineno, line in file_lines(path):
        if not line.strip():
            continue
        index += 1
        if index % parts != part:
            continue
        where = f"{path}:{lineno}"
        try:
            row = json.loads(decode_line(line, where))
        except ValueError as err:
            raise DataError(f"{where}: not valid JSON ({err})") from None
        if not isinstance(row, dict):
            raise DataError(f"{where}: expected a JSON object, got {type(row).__name__}")
        yield (_field(row, text_column, where, "text"),
               _field(row, label_column, where, "label"), where)


def csv_lines(path: Path) -> Iterator[str]:
    """The lines of a CSV / TSV file for :func:`csv.reader`, read in bounded blocks and decoded
    one at a time (a line that is not UTF-8 fails naming it); fields may be as long as a line."""
    csv.field_size_limit(max(csv.field_size_limit(), MAX_LINE_BYTES))
    for lineno, line in file_lines(path):
        yield decode_line(line, f"{path}:{lineno}") + "\n"


def _csv_rows(path: Path, text_column: str, label_column: str, part: int, parts: int
              ) -> Iterator[Row]:
    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    reader = csv.DictReader(csv_lines(path), delimiter=delimiter)
    with _csv_errors(path, reader):
        for index, row in enumerate(reader):
            if index % parts == part:
                where = f"{path}: row {index + 1}"
                label = _field(row, label_column, where, "label")
                label = int(label) if label.lstrip("-").isdigit() else label
                yield _field(row, text_column, where, "text"), label, where


@contextlib.contextmanager
def _csv_errors(path: Path, reader) -> Iterator[None]:
    """The CSV parser's errors as one :class:`DataError` naming the file and line."""
    try:
        yield
    except csv.Error as err:
        raise DataError(f"{path}:{reader.line_num}: {err}") from None


def _parquet_rows(path: Path, text_column: str, label_column: str, part: int, parts: int
                  ) -> Iterator[Row]:
    import pyarrow.parquet as pq

    handle = pq.ParquetFile(path)
    names = handle.schema_arrow.names
    for column, what in ((text_column, "text"), (label_column, "label")):
        if column not in names:
            raise DataError(f"{path}: no column '{column}' (columns: {', '.join(names)}); "
                            f"set tasks.<name>.{what}_column")
    start = 0
    for batch in handle.iter_batches(PARQUET_BATCH, columns=[text_column, label_column]):
        texts, labels = (batch.column(i).to_pylist() for i in (0, 1))
        first = (part - start) % parts  # the first row of this batch that is ours
        for i in range(first, len(texts), parts):
            where = f"{path}: row {start + i + 1}"
            for value, column, what in ((texts[i], text_column, "text"),
                                        (labels[i], label_column, "label")):
                if value is None:
                    raise DataError(f"{where}: missing {what} field '{column}'")
            yield texts[i], labels[i], where
        start += len(texts)


def count_rows(path: Path) -> int:
    """Data rows of one file (JSONL: non-blank lines; CSV: lines after the header)."""
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    if FILE_BUILDERS.get(path.suffix.lower()) == "csv":
        reader = csv.reader(csv_lines(path))
        with _csv_errors(path, reader):
            return max(sum(1 for _ in reader) - 1, 0)
    return sum(1 for _, line in file_lines(path) if line.strip())


# -- finding a streamed task's files ---------------------------------------------------------------
def _split_files(folder: Path, split: str) -> list[str]:
    """``<split>.<ext>``, ``<split>-*.<ext>`` or ``<split>/*.<ext>`` in ``folder``, sorted."""
    for ext in FILE_BUILDERS:
        found = sorted(glob.glob(str(folder / f"{split}{ext}"))
                       + glob.glob(str(folder / f"{split}-*{ext}"))
                       + glob.glob(str(folder / split / f"*{ext}")))
        if found:
            return found
    return []


def stream_folder(spec: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The dataset folder a streamed task names (a path, or a known name in the data dir)."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    root = data_dir_from(data_dir)
    if root is not None and (root / spec).is_dir():
        return root / spec
    return None


def find_stream(spec: str, data_dir: str | os.PathLike | None = None
                ) -> tuple[list[str], Path | None]:
    """``(training shards, dataset folder or None)`` of a streamed task's ``dataset``: a folder
    (its ``train`` shards), one file or a glob. Fails naming what was looked for."""
    folder = stream_folder(spec, data_dir)
    if folder is not None:
        files = _split_files(folder, "train")
        if not files:
            raise DataError(f"{folder}: no train shards to stream (train.jsonl, train-*.jsonl, "
                            f"train/*.jsonl; or .csv/.tsv/.parquet)")
        return files, folder
    files = sorted(glob.glob(str(Path(spec).expanduser())))
    if not files:
        raise DataError(f"no file matches {spec!r} (a streamed dataset is a folder, a file or a "
                        "glob of shards on this machine)")
    for f in files:
        if Path(f).suffix.lower() not in FILE_BUILDERS:
            raise DataError(f"{f}: unsupported file type (use {', '.join(FILE_BUILDERS)})")
    return files, None


def split_file(folder: Path | None, split: str, explicit: str) -> Path | None:
    """The in-memory ``split`` (validation / test) of a streamed task: ``explicit`` when given,
    else the folder's ``<split>.<ext>``."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise DataError(f"tasks.<name>.{split}: file not found: {path}")
        return path
    if folder is not None:
        for ext in FILE_BUILDERS:
            if (folder / f"{split}{ext}").is_file():
                return folder / f"{split}{ext}"
    return None
