"""Predicting and scoring in chunks: ``textcnn predict --file`` and ``textcnn evaluate`` with
memory flat in the number of texts.

The reading is the data package's (:mod:`textcnn.data.inputs` for prediction inputs, the split
files' own readers and :class:`~textcnn.data.labels.LabelMap` for labelled rows); what is here
is the classifying. Texts are read, tokenized and classified ``CHUNK`` at a time; each chunk's
JSON lines are written before the next is read, and a split's metrics are accumulated
(:class:`~textcnn.metrics.RunningMetrics`) instead of its logits kept. A chunk's predictions
are the ones :meth:`~textcnn.classifier.Classifier.predict` gives the whole list.

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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from .classifier import Classifier
from .config import TaskConfig
from .data.formats import read_rows
from .data.labels import LabelMap
from .data.resolve import read_meta, resolve, split_file
from .errors import DataError

CHUNK = 8192  # texts read, tokenized and classified together


def chunks(items: Iterable, size: int | None = None) -> Iterator[list]:
    """``items`` in lists of at most ``size`` (default ``CHUNK``)."""
    items = iter(items)
    while chunk := list(itertools.islice(items, size or CHUNK)):
        yield chunk


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
    place = resolve(dataset, data_dir) if split in ("train", "validation", "test") else None
    folder = place.folder if place is not None else None
    if folder is None or split_file(folder, "all") is not None:
        return None
    if split == "train" and split_file(folder, "validation") is None:
        return None
    return split_file(folder, split)


def evaluate_file(clf: Classifier, path: Path, task: TaskConfig, head: str,
                  labels: LabelMap) -> dict[str, float]:
    """Metrics of ``head`` on the labelled rows of ``path``, read ``CHUNK`` rows at a time;
    ``labels`` maps the file's labels to the head's class ids."""
    running = clf.head_objects[head].running(len(clf.heads[head]))  # the head's metrics
    for part in chunks(read_rows(path, task.text_column, task.label_column)):
        ids = [labels.id(label, where) for _, label, where in part]
        logits = clf.engine.logits(clf.prepare([text for text, _, _ in part]),
                                   clf.config.train.eval_batch_size)[head]
        running.add(ids, logits)
    if running.confusion.sum() == 0:
        raise DataError(f"{path}: split is empty")
    return running.result()


def evaluate_stream(clf: Classifier, dataset: str, split: str, head: str, data_dir=None
                    ) -> dict[str, float] | None:
    """:func:`textcnn.evaluate_folder`'s metrics read in chunks, or None when ``split`` is not
    one file of a text dataset folder (see :func:`streamable_split`)."""
    path = streamable_split(dataset, split, data_dir) if clf.kind == "text" else None
    if path is None:
        return None
    meta = read_meta(path.parent)
    task = meta.apply(TaskConfig(dataset=dataset))
    head_names = clf.heads[head]
    if meta.label_names is None:
        return evaluate_file(clf, path, task, head, LabelMap.by_name(head_names))
    if not set(meta.label_names) <= set(head_names):
        raise DataError(f"{path.parent}: labels {meta.label_names} do not match head '{head}' "
                        f"labels {head_names}")
    return evaluate_file(clf, path, task, head,
                         LabelMap.declared(meta.label_names).onto(head_names))
