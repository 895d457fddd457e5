"""Find a dataset, load it with `datasets`, and cut it into train / validation / test.

Resolution order for a task's ``dataset``:

1. a path: a folder (``dataset.json`` beside ``<split>.jsonl``, or bare split files) or one
   ``.jsonl`` / ``.csv`` / ``.tsv`` / ``.parquet`` file (an ``all`` split, CV folds assigned);
2. a known name (``sst2``...): ``<data dir>/<name>/dataset.json``, the data dir coming from
   ``--data-dir`` or ``$TEXTCNN_DATA_DIR``;
3. otherwise the Hugging Face Hub (the known name's Hub id, or the name itself).

Sets with only an ``all`` split are evaluated by 10-fold CV on their ``fold`` column (assigned
with ``StratifiedKFold(10, shuffle=True, random_state=0)`` when absent): fold ``k`` is the test set.
K-fold CV for K < 10 groups those folds when K divides 10, else draws a stratified K-fold split.
Without a validation split, a stratified 10% of train is carved off with the run's seed.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import TaskConfig
from .data_checks import csv_problem, hub_reachable
from .errors import DataError
from .multilabel import label_set, multi_hot

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
# whose Hub "coarse_label" numbers classes differently (see the shared data README).
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
    datasets = _quiet_datasets()
    splits, folds = {}, None
    for split, path in files.items():
        builder, kwargs = _builder(path)
        if builder != "parquet" and _is_blank(path):
            splits[split] = ([], [], path)  # empty file: an empty split, judged in make_splits
            continue
        try:
            ds = datasets.load_dataset(builder, data_files=str(path), split="train", **kwargs)
        except Exception as exc:  # datasets wraps parser errors in several types
            raise DataError(_explain_load_error(path, task, exc)) from None
        for col in (task.text_column, task.label_column):
            if col not in ds.column_names:
                raise DataError(
                    f"{path}: no column '{col}' (columns: {', '.join(ds.column_names)}); "
                    f"set tasks.<name>.{'text' if col == task.text_column else 'label'}_column"
                )
        _check_nulls(ds, path, task)
        if split == "all":
            folds = np.asarray(ds["fold"]) if "fold" in ds.column_names else None
        splits[split] = (ds[task.text_column], ds[task.label_column], path)
    return _labels_to_ids(source, splits, label_names, folds, task)


def _is_blank(path: Path) -> bool:
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 16):
            if chunk.strip():
                return False
    return True


def _explain_load_error(path: Path, task: TaskConfig, exc: Exception) -> str:
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


def _label_index(values: list, label_names) -> tuple[list[str], dict]:
    """``(label names, value -> id)``: the sorted values when the dataset names no labels;
    a label may be given by name or by id."""
    if label_names is None:
        uniq = sorted(set(values), key=lambda v: (isinstance(v, str), v))
        return [str(v) for v in uniq], {v: i for i, v in enumerate(uniq)}
    label_names = [str(n) for n in label_names]
    as_id = {name: i for i, name in enumerate(label_names)}
    as_id.update({i: i for i in range(len(label_names))})
    return label_names, as_id


def _labels_to_ids(source: str, raw: dict, label_names, folds,
                   task: TaskConfig | None = None) -> RawDataset:
    """The dataset with every split's labels as ids into ``label_names`` (sorted values when
    the dataset names none); a label outside them fails naming its file and line. A
    ``multi_label`` task's labels become ``(n, labels)`` multi-hot rows instead."""
    if task is not None and task.multi_label:
        sets = {split: ([label_set(v, task.label_separator) for v in labels], path)
                for split, (_, labels, path) in raw.items()}
        label_names, as_id = _label_index(
            [v for rows, _ in sets.values() for row in rows for v in row
             if isinstance(v, (str, int))], label_names)
        hot = multi_hot(sets, label_names, as_id, _row_line)
        splits = {split: Split(list(texts), hot[split]) for split, (texts, _, _) in raw.items()}
        return RawDataset(source, label_names, splits, folds)
    label_names, as_id = _label_index([v for _, labels, _ in raw.values() for v in labels],
                                      label_names)
    splits = {}
    for split, (texts, labels, path) in raw.items():
        ids = np.empty(len(labels), dtype=np.int64)
        for i, v in enumerate(labels):
            if isinstance(v, bool) or v not in as_id:
                raise DataError(
                    f"{_row_line(path, i)}: label {v!r} is outside the label names "
                    f"({', '.join(f'{j}={n}' for j, n in enumerate(label_names))})"
                )
            ids[i] = as_id[v]
        splits[split] = Split(list(texts), ids)
    return RawDataset(source, label_names, splits, folds)


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
        feature = ds.features[label_col]
        if label_names is None and hasattr(feature, "names"):
            label_names = list(feature.names)
        raw[name] = (ds[text_col], ds[label_col], Path(f"hub:{hub_id}/{split}"))
    return _labels_to_ids(f"hub:{hub_id}", raw, label_names, None, task)


def cv_folds(raw: RawDataset, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold id (0..n_folds-1) per row of the ``all`` split: the dataset's 10 folds, grouped
    (fold j into j mod n_folds) when n_folds divides 10, else a stratified n_folds split."""
    if raw.folds is not None and n_folds == N_FOLDS:
        return raw.folds.astype(np.int64)
    if n_folds != N_FOLDS and N_FOLDS % n_folds == 0:
        return cv_folds(raw) % n_folds
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = raw.splits["all"].labels
    folds = np.empty(len(labels), dtype=np.int64)
    # label sets (multi-label) cannot be stratified on: plain shuffled folds
    cls = StratifiedKFold if labels.ndim == 1 else KFold
    skf = cls(n_folds, shuffle=True, random_state=0)
    for k, (_, test_idx) in enumerate(skf.split(np.zeros(len(labels)), labels)):
        folds[test_idx] = k
    return folds


def fold_protocol(n_folds: int) -> str:
    """What :func:`cv_folds` does for ``n_folds``, in words (``textcnn cv`` logs it)."""
    if n_folds == N_FOLDS:
        return "the dataset's 10 folds"
    if N_FOLDS % n_folds == 0:
        return f"the dataset's 10 folds grouped into {n_folds} (fold j into j mod {n_folds})"
    return f"a stratified {n_folds}-fold split (seed 0)"


def carve_validation(train: Split, seed: int, fraction: float = 0.1) -> tuple[Split, Split]:
    """Stratified ``fraction`` of train as validation (plain random when a class is too small)."""
    from sklearn.model_selection import train_test_split

    idx = np.arange(len(train))
    stratify = None
    if train.labels.ndim == 1:  # label sets (multi-label) get a plain random cut
        counts = np.bincount(train.labels)
        stratify = train.labels if counts[counts > 0].min() >= 2 else None
    tr, va = train_test_split(idx, test_size=fraction, random_state=seed, stratify=stratify)
    return train.subset(np.sort(tr)), train.subset(np.sort(va))


def make_splits(raw: RawDataset, seed: int = 0, fold: int = 0) -> dict[str, Split]:
    """Cut a raw dataset into ``train``, ``validation`` and ``test`` (``test`` may be absent)."""
    if raw.is_cv:
        folds = cv_folds(raw)
        data = raw.splits["all"]
        train = data.subset(np.flatnonzero(folds != fold))
        test = data.subset(np.flatnonzero(folds == fold))
        out = {"train": train, "test": test}
    else:
        out = {k: v for k, v in raw.splits.items() if k != "all"}
    if "train" not in out:
        raise DataError(f"{raw.source}: no training split (need train.* or all.*)")
    if len(out["train"]) == 0:
        raise DataError(f"{raw.source}: the training split is empty")
    if "validation" not in out:
        out["train"], out["validation"] = carve_validation(out["train"], seed)
    return out


def select_split(raw: RawDataset, split: str, seed: int = 0) -> Split:
    """The ``split`` a trained model is scored on: ``train`` / ``validation`` as a run with
    ``seed`` cut them, ``test`` as shipped (fold 0 for a CV dataset)."""
    parts = make_splits(raw, seed) if split in ("train", "validation") or raw.is_cv \
        else raw.splits
    if split not in parts:
        raise DataError(f"{raw.source} has no split '{split}' (has: {', '.join(parts)})")
    return parts[split]
