"""Predicting and scoring in chunks: ``textcnn predict --file`` and ``textcnn evaluate`` with
memory flat in the number of texts.

Texts are read, tokenized and classified ``CHUNK`` at a time; each chunk's JSON lines are written
before the next is read, and a split's metrics are accumulated (:class:`~textcnn.metrics.
RunningMetrics`) instead of its logits kept. A chunk's predictions are the ones
:meth:`~textcnn.classifier.Classifier.predict` gives the whole list.

Example
-------
>>> import textcnn
>>> clf = textcnn.load(model_dir)
>>> lines = []
>>> inputs = iter([(None, "a gorgeous, witty film"), ("r2", "a dull mess")])
>>> predict_lines(clf, inputs, write=lines.append, chunk=1)
(2, 0)
>>> first, second = (json.loads(line) for line in lines)
>>> first["id"], second["id"], first["predictions"] == clf.predict(["a gorgeous, witty film"])[0]
(0, 'r2', True)
"""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .classifier import Classifier
from .config import TaskConfig
from .errors import DataError, TextCNNError
from .metrics import RunningMetrics
from .streaming import split_file, stream_folder
from .texts import check_text, decode_line, read_lines

CHUNK = 8192  # texts read, tokenized and classified together


def chunks(items: Iterable, size: int | None = None) -> Iterator[list]:
    """``items`` in lists of at most ``size`` (default ``CHUNK``)."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size or CHUNK)):
        yield chunk


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


def predict_lines(clf: Classifier, inputs: Iterable[tuple[object, str]], top_k: int = 1,
                  head: str | None = None, write: Callable[[str], object] = print,
                  chunk: int | None = None) -> tuple[int, int]:
    """Write ``{"id", "text", "predictions"}`` per ``(id, text)`` input (``predictions`` is
    ``clf.predict``'s row; ``id`` the input's own, else its 0-based position; plus
    ``"truncated": true`` when the text had more than ``max_length`` tokens, of which the model
    read the first ``max_length``), a chunk at a time; returns ``(texts, truncated texts)``."""
    count = cut = 0
    for part in chunks(inputs, chunk or CHUNK):
        data = clf.prepare(clf.admit([text for _, text in part]))
        rows = clf.predict(data, top_k=top_k, head=head)
        for i, ((id_, text), row, over) in enumerate(zip(part, rows, data.truncated,
                                                         strict=True), count):
            line = {"id": i if id_ is None else id_, "text": text, "predictions": row,
                    **({"truncated": True} if over else {})}
            write(json.dumps(line, ensure_ascii=False))
        count += len(part)
        cut += int(data.truncated.sum())
    return count, cut


def streamable_split(dataset: str, split: str, data_dir=None) -> Path | None:
    """The file holding ``split`` of a dataset folder when it can be scored as it is read: a
    shipped ``test`` or ``validation`` file, or ``train`` beside a validation file (else the
    split is cut from others, or the set is cross-validated: None)."""
    folder = stream_folder(dataset, data_dir)
    if folder is None or split_file(folder, "all", "") is not None:
        return None
    if split == "train" and split_file(folder, "validation", "") is None:
        return None
    return split_file(folder, split, "") if split in ("train", "validation", "test") else None


def _label_of(value: object, names: list[str] | None, head_names: list[str], where: str) -> int:
    """The head's id of a label value, by name (dataset.json's name of an id, or the value)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: label {value!r} is neither a label name nor an id")
    name = str(value)
    if names is not None:
        if isinstance(value, int) and 0 <= value < len(names):
            name = names[value]
        elif value not in names:
            raise DataError(f"{where}: label {value!r} is outside the label names "
                            f"({', '.join(names)})")
    if name not in head_names:
        raise DataError(f"{where}: label {name!r} is not a label of this head "
                        f"({', '.join(head_names)})")
    return head_names.index(name)


def evaluate_file(clf: Classifier, path: Path, task: TaskConfig, head: str,
                  names: list[str] | None) -> dict[str, float]:
    """Metrics of ``head`` on the labelled rows of ``path``, read ``CHUNK`` rows at a time."""
    from .streaming import read_rows

    head_names = clf.heads[head]
    running = RunningMetrics(len(head_names))
    for part in chunks(read_rows(path, task.text_column, task.label_column)):
        for text, _, where in part:
            if not isinstance(text, str):
                raise DataError(f"{where}: text field '{task.text_column}' is not a string")
        labels = [_label_of(label, names, head_names, where) for _, label, where in part]
        logits = clf.engine.logits(clf.prepare([text for text, _, _ in part]),
                                   clf.config.train.eval_batch_size)[head]
        running.add(labels, logits)
    if running.confusion.sum() == 0:
        raise DataError(f"{path}: split is empty")
    return running.result()


def evaluate_stream(clf: Classifier, dataset: str, split: str, head: str, data_dir=None
                    ) -> dict[str, float] | None:
    """:func:`textcnn.evaluate_folder`'s metrics read in chunks, or None when ``split`` is not
    one file of a text dataset folder (see :func:`streamable_split`)."""
    from .streamed import folder_meta

    path = streamable_split(dataset, split, data_dir) if clf.kind == "text" else None
    if path is None:
        return None
    names, task = folder_meta(path.parent, TaskConfig(dataset=dataset))
    if names is not None and not set(map(str, names)) <= set(clf.heads[head]):
        raise DataError(f"{path.parent}: labels {names} do not match head '{head}' labels "
                        f"{clf.heads[head]}")
    return evaluate_file(clf, path, task, head, None if names is None else list(map(str, names)))
