"""Find a dataset, load it with `datasets`, and cut it into train / validation / test.

Resolution order for a task's ``dataset``:

1. a path: a folder (``dataset.json`` beside ``<split>.jsonl``, or bare split files) or one
   ``.jsonl`` / ``.csv`` / ``.tsv`` / ``.parquet`` file (an ``all`` split, CV folds assigned);
2. a known name (``sst2``...): ``<data dir>/<name>/dataset.json``, the data dir coming from
   ``--data-dir`` or ``$TEXTCNN_DATA_DIR``;
3. otherwise the Hugging Face Hub (the known name's Hub id, or the name itself).

Sets with only an ``all`` split are evaluated by 10-fold CV on their ``fold`` column (assigned
with ``StratifiedKFold(10, shuffle=True, random_state=0)`` when absent, ``KFold`` when no class
has 10 rows or the labels are sets): fold ``k`` is the test set. K-fold CV for K < 10 groups
those folds when K divides 10, else draws a K-fold split the same way. Without a validation
split, a stratified 10% of train is carved off with the run's seed (a plain random 10% when the
classes are too small for it, or the labels are sets). Labels become class ids by the rules of
:mod:`textcnn.labels` (label sets: :mod:`textcnn.multilabel`); a file without rows, one that
is not UTF-8, one with a line over :data:`textcnn.texts.MAX_LINE_BYTES` (checked in bounded
blocks before a parser reads it) or a text that :func:`textcnn.texts.text_problem` refuses fails
naming the file (and line).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import TaskConfig
from .data_checks import csv_problem, hub_reachable
from .errors import DataError
from .labels import check_names, normalize
from .multilabel import label_set, multi_hot
from .texts import check_file_lines, check_text, decode_line, file_lines

N_FOLDS = 10
SPLIT_NAMES = ("train", "validation", "test", "all")
FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv",
                 ".parquet": "parquet"}


@dataclass(frozen=True)
class HubSpec:
    hub_id: str
    text_column: str = "text"
    label_column: str = "label"


# Known names -> their closest Hub copy. Label ids agree with the local copies except TREC,
# whose Hub "coarse_label" numbers classes differently.
KNOWN: dict[str, HubSpec] = {
    "sst2": HubSpec("SetFit/sst2"),
    "sst5": HubSpec("SetFit/sst5"),
    "mr": HubSpec("cornell-movie-review-data/rotten_tomatoes"),
    "subj": HubSpec("SetFit/subj"),
    "trec": HubSpec("CogComp/trec", label_column="coarse_label"),
    "20newsgroups": HubSpec("SetFit/20_newsgroups"),
    "ag_news": HubSpec("fancyzhx/ag_news"),
}


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # (n,) int64 label ids; (n, labels) float32 multi-hot (multi-label)

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, idx: np.ndarray) -> Split:
        return Split([self.texts[i] for i in idx], self.labels[idx])


@dataclass
class RawDataset:
    """A loaded dataset before the train/validation/test cut."""

    source: str  # where it came from, for messages
    label_names: list[str]
    splits: dict[str, Split]
    folds: np.ndarray | None = None  # (n,) fold ids of the ``all`` split
    paths: dict[str, Path] = field(default_factory=dict)  # split -> its file, for messages

    def locate(self, split: str, index: int) -> str:
        """Where row ``index`` of ``split`` is, for messages: ``file:line`` when known."""
        if split in self.paths:
            return _row_line(self.paths[split], index)
        return f"{self.source} ({split} row {index + 1})"

    @property
    def is_cv(self) -> bool:
        return "all" in self.splits and "train" not in self.splits


def data_dir_from(data_dir: str | os.PathLike | None) -> Path | None:
    value = data_dir or os.environ.get("TEXTCNN_DATA_DIR")
    return Path(value) if value else None


def _quiet_datasets():
    import datasets

    datasets.disable_progress_bars()
    # parse failures are re-raised as one DataError line; datasets' own log lines would repeat it
    datasets.logging.set_verbosity(logging.CRITICAL)
    return datasets


def load_raw(task: TaskConfig, data_dir: str | os.PathLike | None = None) -> RawDataset:
    """Resolve ``task.dataset`` (see module docstring) and load every split it has."""
    spec = task.dataset
    path = Path(spec).expanduser()
    if path.is_dir():
        return _load_folder(path, task)
    if path.is_file():
        return _load_files({"all": path}, task, label_names=None, source=str(path))
    if path.suffix.lower() in FILE_BUILDERS or os.sep in spec and not _looks_like_hub_id(spec):
        raise DataError(f"dataset path not found: {path}")
    root = data_dir_from(data_dir)
    local = root / spec if root else None
    if local is not None and (local / "dataset.json").is_file():
        return _load_folder(local, task)
    return _load_hub(spec, task, local)


def _looks_like_hub_id(spec: str) -> bool:
    parts = spec.split("/")
    return len(parts) == 2 and all(parts) and not spec.startswith((".", "/", "~"))


def _load_folder(folder: Path, task: TaskConfig) -> RawDataset:
    meta_path = folder / "dataset.json"
    label_names = None
    text_col, label_col = task.text_column, task.label_column
    if meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"{meta_path}: not valid JSON: {exc}") from None
        label_names = meta.get("label_names")
        if label_names is not None:
            try:
                label_names = check_names(label_names)
            except DataError as exc:
                raise DataError(f"{meta_path}: {exc}") from None
        # the folder's own column names win over the defaults, not over an explicit setting
        if text_col == "text":
            text_col = meta.get("text_column", text_col)
        if label_col == "label":
            label_col = meta.get("label_column", label_col)
    files = {}
    for split in SPLIT_NAMES:
        for ext in FILE_BUILDERS:
            if (folder / f"{split}{ext}").is_file():
                files[split] = folder / f"{split}{ext}"
                break
    if not files:
        raise DataError(
            f"{folder}: no split files (train/validation/test/all .jsonl/.csv/.tsv/.parquet)")
    task = dataclasses.replace(task, text_column=text_col, label_column=label_col)
    return _load_files(files, task, label_names, source=str(folder))


def _builder(path: Path) -> tuple[str, dict]:
    ext = path.suffix.lower()
    if ext not in FILE_BUILDERS:
        raise DataError(f"{path}: unsupported file type {ext!r} (use {', '.join(FILE_BUILDERS)})")
    return FILE_BUILDERS[ext], ({"delimiter": "\t"} if ext == ".tsv" else {})


def _load_files(files: dict[str, Path], task: TaskConfig, label_names, source: str) -> RawDataset:
    splits, folds = {}, None
    for split, path in files.items():
        try:
            texts, labels, fold = _load_file(path, task)
        except UnicodeDecodeError:  # pyarrow decodes lazily: a bad byte surfaces on first read
            raise DataError(_utf8_error(path) or f"{path}: not valid UTF-8") from None
        if split == "all":
            folds = fold
        splits[split] = (texts, labels, path)
    return _labels_to_ids(source, splits, label_names, folds, task)


def _load_file(path: Path, task: TaskConfig) -> tuple[list, list, np.ndarray | None]:
    """``(texts, raw labels, fold column or None)`` of one split file."""
    builder, kwargs = _builder(path)
    if builder != "parquet":
        if _is_blank(path):
            raise DataError(f"{path}: no data rows (the file is empty or holds only blank lines)")
        check_file_lines(path)
    try:
        if path.suffix.lower() == ".jsonl":
            ds = _JsonLines(path)
        else:
            if builder == "csv":  # the text column as text, even when every cell is digits
                kwargs["converters"] = {task.text_column: _csv_text}
            ds = _quiet_datasets().load_dataset(builder, data_files=str(path), split="train",
                                                **kwargs)
    except DataError:
        raise
    except Exception as exc:  # datasets wraps parser errors in several types
        raise DataError(_explain_load_error(path, task, exc)) from None
    if len(ds) == 0:
        raise DataError(f"{path}: no data rows")
    for col, kind in ((task.text_column, "text"), (task.label_column, "label")):
        if col not in ds.column_names:
            raise DataError(
                f"{path}: no column '{col}' (columns: {', '.join(ds.column_names)}); "
                f"set tasks.<name>.{kind}_column (textcnn train --dataset: --{kind}-column)"
            )
    _check_nulls(ds, path, task)
    folds = np.asarray(ds["fold"]) if "fold" in ds.column_names else None
    return ds[task.text_column], ds[task.label_column], folds


def _csv_text(cell: str) -> str | None:
    """A CSV text cell as read (``007`` stays ``"007"``); an empty cell is a missing text."""
    return cell if cell != "" else None


class _JsonLines:
    """A JSON-lines file's rows, read by column as from a ``datasets.Dataset`` (a key missing from
    a row reads None), without the seconds ``datasets`` takes to import; a line that is not a JSON
    object raises (the caller names it)."""

    def __init__(self, path: Path):
        self.rows = [json.loads(decode_line(line, f"{path}:{lineno}"))
                     for lineno, line in file_lines(path) if line.strip()]
        if not all(isinstance(row, dict) for row in self.rows):
            raise ValueError("a line is not a JSON object")
        self.column_names = list(dict.fromkeys(key for row in self.rows for key in row))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, column: str) -> list:
        return [row.get(column) for row in self.rows]


def _utf8_error(path: Path) -> str | None:
    """``path:line: not valid UTF-8 (...)`` for the first line that is not, else None."""
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError as err:
                return (f"{path}:{lineno}: not valid UTF-8 (byte 0x{line[err.start]:02x} at "
                        f"column {err.start + 1}); save the file as UTF-8")
    return None


def _count_lines(path: Path) -> int:
    with open(path, "rb") as fh:
        return sum(1 for line in fh if line.strip())


def _is_blank(path: Path) -> bool:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return False
    return True


def _explain_load_error(path: Path, task: TaskConfig, exc: Exception) -> str:
    if path.suffix.lower() != ".parquet" and (bad := _utf8_error(path)):
        return bad
    if path.suffix.lower() in (".csv", ".tsv") and _count_lines(path) <= 1:
        return f"{path}: no data rows (only a header line)"
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as err:
                    return f"{path}:{lineno}: not valid JSON ({err.msg})"
                if not isinstance(row, dict):
                    return f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}"
    if path.suffix.lower() in (".csv", ".tsv"):
        problem = csv_problem(path, "\t" if path.suffix.lower() == ".tsv" else ",")
        if problem:
            return problem
    while exc.__cause__ or exc.__context__:  # the parser's own message is the innermost one
        exc = exc.__cause__ or exc.__context__
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"{path}: cannot be read: {first}"


def _row_line(path: Path, row_index: int) -> str:
    """``path:line`` of the ``row_index``-th data row (blank lines skipped, CSV header counted)."""
    if path.suffix.lower() in (".jsonl", ".json"):
        with open(path, encoding="utf-8", errors="replace") as fh:
            seen = -1
            for lineno, line in enumerate(fh, 1):
                if line.strip():
                    seen += 1
                    if seen == row_index:
                        return f"{path}:{lineno}"
    if path.suffix.lower() in (".csv", ".tsv"):
        return f"{path}: row {row_index + 1} (line {row_index + 2} if no field spans lines)"
    return f"{path}: row {row_index + 1}"


def _empty_cell_is_no_label(path: Path, task: TaskConfig) -> bool:
    """A multi-label CSV/TSV row with an empty label cell has no label (JSON says ``[]``)."""
    return task.multi_label and path.suffix.lower() in (".csv", ".tsv")


def _check_nulls(ds, path: Path, task: TaskConfig) -> None:
    for col, what in ((task.text_column, "text"), (task.label_column, "label")):
        values = ds[col]
        for i, v in enumerate(values):
            if v is None and not (what == "label" and _empty_cell_is_no_label(path, task)):
                raise DataError(f"{_row_line(path, i)}: missing {what} field '{col}'")
            if what == "text" and not isinstance(v, str):
                raise DataError(f"{_row_line(path, i)}: {what} field '{col}' is not a string")
            if what == "text":
                check_text(v, lambda i=i: _row_line(path, i))  # the line is found on failure only


def _labels_to_ids(source: str, raw: dict, label_names, folds,
                   task: TaskConfig | None = None) -> RawDataset:
    """The dataset with every split's labels as class ids (the rules of :mod:`textcnn.labels`;
    an error names the file and line); a ``multi_label`` task's labels become ``(n, labels)``
    multi-hot rows instead."""
    paths = {split: path for split, (_, _, path) in raw.items()}
    if task is not None and task.multi_label:
        sets = {split: [label_set(v, task.label_separator) for v in labels]
                for split, (_, labels, _) in raw.items()}
        train = "train" if "train" in sets else "all"
        if train in sets and not any(sets[train]):
            rows = "training row's" if train == "train" else "row's"
            raise DataError(f"{source}: no labels: every {rows} label set in column "
                            f"'{task.label_column}' is empty; a multi-label task needs rows "
                            "with labels")
        names, hot = multi_hot(sets, label_names, lambda split, i: _row_line(paths[split], i))
        splits = {split: Split(list(texts), hot[split]) for split, (texts, _, _) in raw.items()}
        return RawDataset(source, names, splits, folds, paths)
    names, ids = normalize({split: labels for split, (_, labels, _) in raw.items()}, label_names,
                           lambda split, i: _row_line(paths[split], i))
    splits = {split: Split(list(texts), ids[split]) for split, (texts, _, _) in raw.items()}
    return RawDataset(source, names, splits, folds, paths)


def _load_hub(spec: str, task: TaskConfig, local: Path | None) -> RawDataset:
    known = KNOWN.get(spec)
    hub_id = known.hub_id if known else spec
    looked = (f"{local}/dataset.json" if local
              else "no local data dir (set --data-dir or $TEXTCNN_DATA_DIR)")
    where = f"looked in {looked} and on the Hugging Face Hub as '{hub_id}'"
    if not known and not _looks_like_hub_id(spec):
        raise DataError(f"unknown dataset '{spec}': {where}; known names: {', '.join(KNOWN)}")
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes")
                  for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))
    if offline:
        raise DataError(f"dataset '{spec}' not found offline: {where} (Hub access is off)")
    if not hub_reachable():  # fail now, not after the Hub client's retries
        here = f"no {local}/dataset.json" if local else "no data dir given"
        raise DataError(f"dataset '{spec}': {here}, and the Hugging Face Hub is unreachable "
                        f"(no network?) to download '{hub_id}'; set TEXTCNN_DATA_DIR (or "
                        f"--data-dir) to a folder holding {spec}/dataset.json")
    datasets = _quiet_datasets()
    try:
        dd = datasets.load_dataset(hub_id)
    except Exception as exc:
        raise DataError(f"dataset '{spec}' not found: {where} ({type(exc).__name__})") from None
    text_col = known.text_column if known and task.text_column == "text" else task.text_column
    label_col = known.label_column if known and task.label_column == "label" else task.label_column
    raw, label_names = {}, None
    for split, ds in dd.items():
        name = "validation" if split in ("dev", "valid") else split
        if name not in SPLIT_NAMES:
            continue
        for col in (text_col, label_col):
            if col not in ds.column_names:
                raise DataError(f"Hub dataset '{hub_id}' split '{split}' has no column '{col}'")
        for i, text in enumerate(ds[text_col]):
            if isinstance(text, str):
                check_text(text, f"Hub dataset '{hub_id}' split '{split}' row {i + 1}")
        feature = ds.features[label_col]
        if label_names is None and hasattr(feature, "names"):
            label_names = list(feature.names)
        raw[name] = (ds[text_col], ds[label_col], Path(f"hub:{hub_id}/{split}"))
    return _labels_to_ids(f"hub:{hub_id}", raw, label_names, None, task)
