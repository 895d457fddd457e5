"""Parquet: the reader of ``.parquet`` split files, one record batch in memory at a time.

The one place Parquet is parsed (``pyarrow``), for a whole split, a streamed shard and
``textcnn evaluate`` alike; a row is named ``file: row N`` (Parquet has no lines).

Example
-------
>>> import pyarrow as pa, pyarrow.parquet as pq
>>> path = tmp_dir / "rows.parquet"
>>> pq.write_table(pa.table({"text": ["fine", "dull"], "label": [1, 0]}), path)
>>> [(index, row["label"]) for index, _, row in records(path, ["text", "label"])], count(path)
([(0, 1), (1, 0)], 2)
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..errors import DataError

BATCH = 4096  # rows per Parquet record batch read
Record = tuple[int, int | None, dict]


def records(path: Path, columns: list[str] | None = None, part: int = 0, parts: int = 1
            ) -> Iterator[Record]:
    """Every ``parts``-th row of ``path`` from row ``part``, with ``columns`` only (None: every
    column); a column the file lacks fails naming the file and its columns."""
    import pyarrow.parquet as pq

    try:
        handle = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a file that is no Parquet
        raise DataError(f"{path}: cannot be read: {str(exc).strip() or type(exc).__name__}"
                        ) from None
    names = handle.schema_arrow.names
    if columns is not None:
        for column in columns:
            if column not in names:
                what = "text" if column == columns[0] else "label"
                raise DataError(f"{path}: no column '{column}' (columns: {', '.join(names)}); "
                                f"set tasks.<name>.{what}_column")
    start = 0
    for batch in _batches(handle, columns, path):
        values = {name: batch.column(name).to_pylist() for name in batch.schema.names}
        first = (part - start) % parts  # the first row of this batch that is ours
        for i in range(first, batch.num_rows, parts):
            yield start + i, None, {name: column[i] for name, column in values.items()}
        start += batch.num_rows


def _batches(handle, columns: list[str] | None, path: Path) -> Iterator:
    """The file's record batches; a batch that cannot be decoded fails naming the file."""
    batches = handle.iter_batches(BATCH, columns=columns)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except UnicodeDecodeError:
            raise DataError(f"{path}: not valid UTF-8") from None
        except (OSError, ValueError) as exc:  # pyarrow: ArrowIOError, ArrowInvalid (damaged)
            raise DataError(f"{path}: cannot be read: {exc}") from None
        yield batch


def where(path: Path, index: int, line: int | None) -> str:
    """``file: row N`` of a row, for messages."""
    return f"{path}: row {index + 1}"


def count(path: Path) -> int:
    """Rows, from the file's metadata."""
    import pyarrow.parquet as pq

    return pq.ParquetFile(path).metadata.num_rows
