"""Cutting a loaded dataset into train / validation / test: CV folds, the validation carve, and
the split a trained model is scored on.

Sets with only an ``all`` split are evaluated by 10-fold CV on their ``fold`` column (assigned
with ``StratifiedKFold(10, shuffle=True, random_state=0)`` when absent, ``KFold`` when no class
has 10 rows or the labels are sets): fold ``k`` is the test set. Without a validation split, a
stratified 10% of train is carved off with the run's seed.

Example
-------
>>> from textcnn.data import RawDataset, Split
>>> raw = RawDataset("toy", ["a", "b"], {"all": Split([f"t{i}" for i in range(40)],
...                                                   np.arange(40) % 2)})
>>> parts = make_splits(raw, seed=0, fold=0)
>>> {name: len(part) for name, part in parts.items()}
{'train': 32, 'test': 4, 'validation': 4}
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import DataError
from .dataset import N_FOLDS, RawDataset, Split
from .labels import check_classes


def cv_folds(raw: RawDataset, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold id (0..n_folds-1) per row of the ``all`` split: the dataset's 10 folds, grouped
    (fold j into j mod n_folds) when n_folds divides 10, else a stratified n_folds split."""
    if raw.folds is not None and n_folds == N_FOLDS:
        return raw.folds.astype(np.int64)
    if n_folds != N_FOLDS and N_FOLDS % n_folds == 0:
        return cv_folds(raw) % n_folds
    from sklearn.model_selection import KFold, StratifiedKFold

    labels = raw.splits["all"].labels
    if len(labels) < n_folds:
        raise DataError(f"{raw.source}: {len(labels)} rows are too few for {n_folds}-fold "
                        "cross-validation (or give train/test files)")
    folds = np.empty(len(labels), dtype=np.int64)
    # stratified needs one class with a row per fold; label sets (multi-label) cannot be
    stratified = labels.ndim == 1 and np.bincount(labels).max() >= n_folds
    kfold = (StratifiedKFold if stratified else KFold)(n_folds, shuffle=True, random_state=0)
    for k, (_, test_idx) in enumerate(kfold.split(np.zeros(len(labels)), labels)):
        folds[test_idx] = k
    return folds


def fold_protocol(n_folds: int) -> str:
    """What :func:`cv_folds` does for ``n_folds``, in words (``textcnn cv`` logs it)."""
    if n_folds == N_FOLDS:
        return "the dataset's 10 folds"
    if N_FOLDS % n_folds == 0:
        return f"the dataset's 10 folds grouped into {n_folds} (fold j into j mod {n_folds})"
    return f"a stratified {n_folds}-fold split (seed 0)"


def carve_validation(labels: np.ndarray, seed: int, fraction: float = 0.1
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sorted row indices ``(train, validation)``: a stratified ``fraction`` as validation
    (plain random when a class has one row or the validation rows are fewer than the classes;
    ``labels`` of shape (n, labels), label sets, get a plain random cut)."""
    from sklearn.model_selection import train_test_split

    if len(labels) < 2:
        raise DataError(f"{len(labels)} training row(s): too few to carve a validation split "
                        "from (give a validation file)")
    stratify = None
    if labels.ndim == 1:
        counts = np.bincount(labels)
        n_classes, n_val = int((counts > 0).sum()), math.ceil(fraction * len(labels))
        stratifiable = counts[counts > 0].min() >= 2 and n_classes <= min(n_val,
                                                                          len(labels) - n_val)
        stratify = labels if stratifiable else None
    tr, va = train_test_split(np.arange(len(labels)), test_size=fraction, random_state=seed,
                              stratify=stratify)
    return np.sort(tr), np.sort(va)


def make_splits(raw: RawDataset, seed: int = 0, fold: int = 0, check: bool = True
                ) -> dict[str, Split]:
    """Cut a raw dataset into ``train``, ``validation`` and ``test`` (``test`` may be absent).

    With ``check`` (a cut to train on), the cut itself must be trainable: two classes in
    ``train``, and no class of ``validation`` or ``test`` (a CV fold) missing from ``train``
    (:func:`textcnn.labels.check_classes`; the error names the row's file and line).
    """
    if raw.is_cv:  # where each part's rows are: (split of raw, row indices in it)
        folds = cv_folds(raw)
        origin = {"train": ("all", np.flatnonzero(folds != fold)),
                  "test": ("all", np.flatnonzero(folds == fold))}
    else:
        origin = {k: (k, np.arange(len(v))) for k, v in raw.splits.items() if k != "all"}
    if "train" not in origin:
        raise DataError(f"{raw.source}: no training split (need train.* or all.*)")
    if len(origin["train"][1]) == 0:
        raise DataError(f"{raw.source}: the training split is empty")
    named = {"test": f"CV fold {fold}"} if raw.is_cv else {}
    if "validation" not in origin:
        split, idx = origin["train"]
        tr, va = carve_validation(raw.splits[split].labels[idx], seed)
        origin["train"], origin["validation"] = (split, idx[tr]), (split, idx[va])
        named["validation"] = "carved from the training rows"
    out = {name: raw.splits[split].subset(idx) for name, (split, idx) in origin.items()}
    if check and out["train"].labels.ndim == 1:  # label sets may have any labels per row
        check_classes(raw.source, raw.label_names, {k: v.labels for k, v in out.items()},
                      lambda k, i: raw.locate(origin[k][0], int(origin[k][1][i])), named=named)
    return out


def select_split(raw: RawDataset, split: str, seed: int = 0) -> Split:
    """The ``split`` a trained model is scored on: ``train`` / ``validation`` as a run with
    ``seed`` cut them, ``test`` as shipped (fold 0 for a CV dataset), ``all`` every row of a
    dataset that has only an ``all`` split."""
    if raw.is_cv and split == "test":
        return raw.splits["all"].subset(np.flatnonzero(cv_folds(raw) == 0))
    parts = make_splits(raw, seed, check=False) if split in ("train", "validation") else \
        raw.splits
    if split not in parts:
        raise DataError(f"{raw.source} has no split '{split}' (has: {', '.join(parts)})")
    return parts[split]
