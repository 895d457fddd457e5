"""The rules every text and every line of an input file follows, on every path (training files,
streamed shards, ``predict``, ``predict --file``, ``explain``, Python ``predict``, HTTP).

**Which texts are accepted.** A text is any string without a lone surrogate (``"\\ud800"``,
which JSON can spell but UTF-8 cannot encode) and without a NUL character (U+0000: the mark of a
UTF-16 or binary file read as UTF-8). :func:`text_problem` says what is wrong with one; every
path refuses it with that same message, naming where the text came from.

**How long a text may be.** A model reads at most ``tokenizer.max_length`` tokens, and in any
realistic text those lie within the first :func:`char_limit` characters: ``max(20,000,
64 * max_length)`` (20,000 for the default ``max_length`` of 256; 64 characters per token is
more than ten times the length of an English word with its space, and a character tokenizer
takes one per token; only a text of thousands of spaces or symbols the tokenizer drops could
hold a token past it). Every path but the server cuts a longer text to the limit before it is
tokenized: training and evaluation say in the run's log how many they cut, and ``predict``
(CLI and Python) reads the text as far as the model would anyway. The server refuses a longer
text with a 422 (its ``--max-chars`` can lower the limit), since its answer has no place to say
that a text was cut. A text longer than ``max_length`` tokens is read to its first
``max_length`` tokens, as the model has always read it; ``textcnn predict`` marks each text it
cut either way ``"truncated": true`` and counts them on stderr.

**How long a line may be.** Files are read a line at a time, in blocks of at most
:data:`BLOCK` bytes: a line longer than :data:`MAX_LINE_BYTES` is refused naming its file and
line before it is held in memory whole. A UTF-8 byte order mark at the start of a file is
skipped.

Examples
--------
>>> text_problem("a good film") is None
True
>>> text_problem("a \\ud800 film")
'holds a lone surrogate (U+D800) at character 3; texts must be valid Unicode'
>>> char_limit(256), char_limit(1014)
(20000, 64896)
>>> path = tmp_dir / "lines.txt"
>>> _ = path.write_bytes(b"\\xef\\xbb\\xbfone\\r\\ntwo\\n\\nthree")
>>> [(n, line) for n, line in file_lines(path)]
[(1, b'one'), (2, b'two'), (3, b''), (4, b'three')]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import DataError

MIN_CHARS = 20_000  # the character limit of any model (the server's historical default)
CHARS_PER_TOKEN = 64  # characters allowed per token of max_length
MAX_LINE_BYTES = 8 << 20  # longest line of an input file (8 MiB)
BLOCK = 1 << 20  # bytes read at a time
BOM = b"\xef\xbb\xbf"
_BAD = re.compile("[\x00\ud800-\udfff]")


def text_problem(text: str) -> str | None:
    """What makes ``text`` unacceptable (see the module docstring), or None when it is fine."""
    found = _BAD.search(text)
    if found is None:
        return None
    where = f"at character {found.start() + 1}"
    if found.group() == "\x00":
        return f"holds a NUL character (U+0000) {where}; is the file UTF-16 or binary?"
    return (f"holds a lone surrogate (U+{ord(found.group()):04X}) {where}; texts must be "
            "valid Unicode")


def check_text(text: str, where: str | Callable[[], str], error: type[Exception] = DataError
               ) -> str:
    """``text`` when acceptable, else ``error("<where>: text <problem>")`` (``where`` may be a
    function giving it, called only then)."""
    problem = text_problem(text)
    if problem is not None:
        raise error(f"{where() if callable(where) else where}: text {problem}")
    return text


def char_limit(max_length: int | None) -> int:
    """The most characters of a text a model with ``max_length`` tokens reads (see above)."""
    return max(MIN_CHARS, CHARS_PER_TOKEN * int(max_length or 0))


def too_long(text: str, limit: int, where: str) -> str:
    """The message for a text over the character ``limit``."""
    return (f"{where}: text has {len(text):,} characters, over the limit of {limit:,} "
            f"(the model reads at most its first {limit:,}); shorten or split it")


def read_lines(fh: BinaryIO, name: str, limit: int = MAX_LINE_BYTES
               ) -> Iterator[tuple[int, bytes]]:
    """``(line number, line without its line ending)`` per line of the binary stream ``fh``,
    read :data:`BLOCK` bytes at a time; a leading UTF-8 BOM is skipped; a line over ``limit``
    bytes raises :class:`~textcnn.errors.DataError` naming ``name`` and the line, having held at
    most ``limit`` + :data:`BLOCK` bytes of it."""
    pending, lineno, first = bytearray(), 0, True
    while True:
        block = fh.read(BLOCK)
        if first:
            block, first = block.removeprefix(BOM), False
        if not block:
            break
        start = 0
        while (end := block.find(b"\n", start)) >= 0:
            lineno += 1
            pending += block[start:end]
            _check_length(len(pending), limit, name, lineno)
            yield lineno, bytes(pending).removesuffix(b"\r")
            pending.clear()
            start = end + 1
        pending += block[start:]
        _check_length(len(pending), limit, name, lineno + 1)
    if pending:
        yield lineno + 1, bytes(pending).removesuffix(b"\r")


def _check_length(length: int, limit: int, name: str, lineno: int) -> None:
    if length > limit:
        raise DataError(f"{name}:{lineno}: line is longer than {limit:,} bytes (the most a line "
                        "may hold); split or shorten it")


def file_lines(path: str | Path, limit: int = MAX_LINE_BYTES) -> Iterator[tuple[int, bytes]]:
    """:func:`read_lines` of the file ``path``."""
    with open(path, "rb") as fh:
        yield from read_lines(fh, str(path), limit)


def decode_line(line: bytes, where: str) -> str:
    """``line`` as UTF-8, or a :class:`~textcnn.errors.DataError` naming ``where``, the byte and
    its column."""
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataError(f"{where}: not valid UTF-8 (byte 0x{line[err.start]:02x} at column "
                        f"{err.start + 1}); save the file as UTF-8") from None


def check_file_lines(path: str | Path, limit: int = MAX_LINE_BYTES) -> None:
    """Fail naming the first line of ``path`` longer than ``limit`` bytes, reading it in blocks
    (so a file can be checked before a parser that holds whole lines reads it)."""
    with open(path, "rb") as fh:
        run, lineno = 0, 1  # bytes of the current line so far; its number
        while block := fh.read(BLOCK).removeprefix(BOM if lineno == 1 and not run else b""):
            first = block.find(b"\n")
            if first < 0:
                run += len(block)
                _check_length(run, limit, str(path), lineno)
                continue
            _check_length(run + first, limit, str(path), lineno)
            if limit < len(block):  # lines inside the block may be over the limit too
                for i, line in enumerate(block[first + 1:].split(b"\n")[:-1], lineno + 1):
                    _check_length(len(line), limit, str(path), i)
            lineno += block.count(b"\n")
            run = len(block) - block.rfind(b"\n") - 1
            _check_length(run, limit, str(path), lineno)
