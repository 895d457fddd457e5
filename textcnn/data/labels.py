"""Labels to class ids: one set of rules and one mapping (:class:`LabelMap`), for every path
that reads labelled rows.

The rules (a dataset's labels, all its splits together):

1. A label is one integer class id or one string class name. A number without a fraction
   (``1.0``, as pandas writes ids) is the integer ``1``. Booleans, NaN, None, fractions, lists
   and objects are refused, naming the file and line: none of them says which class a row is.
2. A dataset uses one kind: integers mixed with strings (``0`` and ``"abbreviation"``), or strings
   that are numbers mixed with strings that are names (``"0"`` and ``"abbreviation"``), are
   refused, instead of each spelling silently becoming a class of its own.
3. With declared label names (``dataset.json``'s ``label_names``, a Hub ``ClassLabel``), an
   integer is an index into them and a string is one of them. Without, the names are the distinct
   values, sorted (integers numerically, then named ``"0"``, ``"1"``...).
4. To train (:func:`check_trainable`): the training rows hold at least two classes (a classifier
   of one class is right by construction), and every class of the validation and test rows
   appears in training (the model could never predict it).

Example
-------
>>> names, ids = normalize({"train": [2, 0, 2.0]}, None, lambda split, i: f"{split}:{i + 1}")
>>> names, ids["train"].tolist()
(['0', '2'], [1, 0, 1])
>>> normalize({"train": [0, "abbreviation"]}, None, lambda split, i: f"{split}:{i + 1}")
Traceback (most recent call last):
textcnn.errors.DataError: labels mix integers and strings (0 at train:1, "abbreviation" at \
train:2): each spelling would become a class of its own; write every label as an integer id or \
every label as a name
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from ..errors import DataError

Locate = Callable[[str, int], str]  # (split, row index) -> "file:line" for messages
A_LABEL = "a label is one integer class id or one string class name"


def show(value) -> str:
    """A label as its data file spells it: ``true``, ``NaN``, ``[1]``, ``"abc"``, ``3``."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _why_not(value) -> str | None:
    """Why ``value`` is no label, or None when it is one."""
    if value is None:
        return "a missing value (None)"
    if isinstance(value, (bool, np.bool_)):
        return "a boolean"
    if isinstance(value, (str, numbers.Integral)):
        return None
    if isinstance(value, numbers.Real):
        if math.isnan(value):
            return "not a number (a missing value?)"
        return None if math.isfinite(value) and float(value).is_integer() \
            else "a fractional number"
    if isinstance(value, (list, tuple)):
        return "a list"
    return "an object" if isinstance(value, dict) else f"a {type(value).__name__}"


def canonical(value, where: Callable[[], str]):
    """``value`` as an ``int`` or a ``str``; a DataError at ``where()`` when it is no label."""
    why = _why_not(value)
    if why is not None:
        raise DataError(f"{where()}: label {show(value)} is {why}, not a class: {A_LABEL}")
    return value if isinstance(value, str) else int(value)


def _is_number(text: str) -> bool:
    return text.strip().lstrip("+-").isdigit()


def _first(values: dict[str, list], test) -> tuple[str, int] | None:
    for split, column in values.items():
        for i, v in enumerate(column):
            if test(v):
                return split, i
    return None


def _check_one_kind(values: dict[str, list], declared: bool, locate: Locate) -> None:
    """Rule 2: fail naming one row of each kind when the labels mix kinds."""
    pairs = [(lambda v: isinstance(v, int), lambda v: isinstance(v, str), "integers and strings")]
    if not declared:
        pairs.append((lambda v: isinstance(v, str) and _is_number(v),
                      lambda v: isinstance(v, str) and not _is_number(v), "numbers and names"))
    for one, other, what in pairs:
        a, b = _first(values, one), _first(values, other)
        if a and b:
            raise DataError(
                f"labels mix {what} ({show(values[a[0]][a[1]])} at {locate(*a)}, "
                f"{show(values[b[0]][b[1]])} at {locate(*b)}): each spelling would become a class "
                "of its own; write every label as an integer id or every label as a name")


def check_names(label_names) -> list[str]:
    """Declared label names as strings; they must be a list of distinct names."""
    if not isinstance(label_names, (list, tuple)) or not label_names:
        raise DataError(f"'label_names' must be a non-empty list of names, got {show(label_names)}")
    names = [str(n) for n in label_names]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"'label_names' lists {', '.join(map(show, twice))} more than once")
    return names


class LabelMap:
    """Label values -> class ids, and the one place a label becomes an id (:meth:`id`).

    Every reader of labelled rows maps its labels through one: a split read whole
    (:func:`normalize`), a streamed training split, ``textcnn evaluate`` and the estimator, so a
    label means the same class, and a bad one is refused in the same words, on every path.

    Parameters
    ----------
    names : list of str
        The class names, in id order.
    ids : dict
        Accepted label value (a name, an integer id) -> class id.

    Examples
    --------
    >>> labels = LabelMap.declared(["neg", "pos"])
    >>> labels.id("pos", "f:1"), labels.id(0, "f:2"), labels.id(1.0, "f:3")
    (1, 0, 1)
    >>> labels.id("meh", "f:4")
    Traceback (most recent call last):
    textcnn.errors.DataError: f:4: label "meh" is outside the label names (0=neg, 1=pos)
    >>> LabelMap.declared(["neg", "pos"]).onto(["pos", "neg"]).id(0, "f:5")
    1
    """

    def __init__(self, names: list[str], ids: dict):
        self.names, self.ids = names, ids

    @classmethod
    def declared(cls, names: Sequence) -> LabelMap:
        """Declared names (rule 3): an integer is an index into them, a string one of them."""
        names = check_names(names)
        return cls(names, {n: i for i, n in enumerate(names)} | {i: i for i in range(len(names))})

    @classmethod
    def of(cls, columns: dict[str, Sequence], label_names: Sequence | None, locate: Locate
           ) -> LabelMap:
        """The map of every split's raw label values by the module's rules (declared names
        when given, else the distinct values sorted); ``locate(split, i)`` names row ``i``."""
        values = {split: [canonical(v, lambda s=split, i=i: locate(s, i))
                          for i, v in enumerate(col)] for split, col in columns.items()}
        _check_one_kind(values, label_names is not None, locate)
        if label_names is not None:
            return cls.declared(label_names)
        uniq = sorted({v for col in values.values() for v in col})
        return cls([str(v) for v in uniq], {v: i for i, v in enumerate(uniq)})

    @classmethod
    def by_name(cls, names: Sequence[str]) -> LabelMap:
        """Labels matched to ``names`` by name only (an integer ``1`` is the name ``"1"``): a
        model's head read against data that declares no names."""
        names = list(names)
        ids = {n: i for i, n in enumerate(names)}
        return cls(names, ids | {int(n): i for n, i in ids.items() if _is_number(n)})

    def onto(self, names: Sequence[str]) -> LabelMap:
        """This map with its classes renumbered as in ``names`` (a model's head), by name;
        every class of this map must be one of ``names``."""
        names = list(names)
        return LabelMap(names, {v: names.index(self.names[i]) for v, i in self.ids.items()})

    def id(self, value, where: str | Callable[[], str]) -> int:
        """The class id of ``value``, or a :class:`DataError` naming ``where`` (a string, or a
        function giving it, called on failure only)."""
        at = where if callable(where) else lambda: where
        v = canonical(value, at)
        found = self.ids.get(v)
        if found is None:
            listed = ", ".join(f"{j}={n}" for j, n in enumerate(self.names))
            raise DataError(f"{at()}: label {show(v)} is outside the label names ({listed})")
        return found

    def column(self, values: Sequence, locate: Callable[[int], str]) -> np.ndarray:
        """``(n,)`` int64 ids of ``values``; ``locate(i)`` names row ``i`` on failure."""
        out, ids = np.empty(len(values), dtype=np.int64), self.ids
        for i, v in enumerate(values):
            # an int or a str is its own canonical value: :meth:`id` only for the others
            found = ids.get(v) if type(v) in (int, str) else None
            out[i] = found if found is not None else self.id(v, lambda i=i: locate(i))
        return out


def normalize(columns: dict[str, Sequence], label_names: Sequence | None, locate: Locate
              ) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(label names, {split: int64 ids})`` of every split's raw label values (module rules).

    ``locate(split, i)`` names the file and line of row ``i``, for the errors.
    """
    labels = LabelMap.of(columns, label_names, locate)
    return labels.names, {split: labels.column(col, lambda i, s=split: locate(s, i))
                          for split, col in columns.items()}


def check_classes(source: str, label_names: list[str], splits: dict, locate: Locate,
                  train: str = "train", named: dict[str, str] | None = None) -> None:
    """Rule 4 for the rows of ``splits`` (``{split: int64 ids}``; ``train`` names the training
    rows): two classes at least in training, and no class of another split missing from it.

    ``locate(split, i)`` names row ``i`` in an error; ``named`` says more of a split
    (``{"test": "CV fold 3"}``).

    Examples
    --------
    >>> check_classes("toy", ["a", "b", "c"], {"train": np.array([0, 1]),
    ...               "test": np.array([1, 2])}, lambda split, i: f"{split} row {i + 1}")
    Traceback (most recent call last):
    textcnn.errors.DataError: test row 2: the class 'c' is in the test split (1 row) but in no \
training row, so the model could never predict it; add training rows of it or drop it from test
    """
    counts = np.bincount(splits[train], minlength=len(label_names))
    present = np.flatnonzero(counts)
    if len(present) < 2:
        only = f" are of the class '{label_names[present[0]]}'" if len(present) else " hold none"
        raise DataError(f"{source}: a classifier needs at least two classes, but all "
                        f"{len(splits[train])} training rows{only}")
    for split, ids in splits.items():
        unseen = [] if split == train else np.flatnonzero(~np.isin(ids, present))
        if len(unseen):
            label, n = label_names[ids[unseen[0]]], len(unseen)
            what = ", ".join([*filter(None, [(named or {}).get(split)]),
                              f"{n} row{'s' if n > 1 else ''}"])
            raise DataError(
                f"{locate(split, int(unseen[0]))}: the class '{label}' is in the {split} split "
                f"({what}) but in no training row, so the model "
                f"could never predict it; add training rows of it or drop it from {split}")


def check_trainable(raw):
    """Rule 4 for a loaded dataset (a :class:`~textcnn.data.RawDataset`) before it is cut
    (:func:`textcnn.splits.make_splits` checks the cut again); returns it.

    A dataset without training rows passes (the cut into splits says so), and so do label sets.
    """
    name = "train" if "train" in raw.splits else "all"
    train = raw.splits.get(name)
    if train is None or len(train) == 0 or train.labels.ndim != 1:
        return raw  # (label sets, multi-label, may have any labels per row)
    splits = {name: train.labels} | {split: raw.splits[split].labels
                                     for split in ("validation", "test") if split in raw.splits}
    check_classes(raw.source, raw.label_names, splits, raw.locate, train=name)
    return raw


def label_set(value, separator: str) -> list:
    """The labels of one row: a list as it is, a string cut at ``separator`` (when set; blank
    parts dropped), None (an empty CSV cell) as none, anything else as a single label.

    Examples
    --------
    >>> label_set("comp| comp.sys |", "|"), label_set(["a", "b"], ""), label_set(3, "")
    (['comp', 'comp.sys'], ['a', 'b'], [3])
    """
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str) and separator:
        return [part.strip() for part in value.split(separator) if part.strip()]
    return [value]


def multi_hot(sets: dict[str, list[list]], label_names: Sequence | None, locate: Locate
              ) -> tuple[list[str], dict[str, np.ndarray]]:
    """``(label names, {split: (n, labels) float32 multi-hot rows})`` of every split's label
    sets, each label of each set read by the rules of this module (one kind of label:
    ``0`` and ``"0"`` do not make two labels named alike; an integer indexes declared names).

    Parameters
    ----------
    sets : dict
        ``{split: label sets}``, one list of label values per row.
    label_names : list of str, optional
        Declared label names (``dataset.json``'s), else the sorted distinct labels.
    locate : callable
        ``locate(split, row)`` names a row in an error (``file:line``).

    Examples
    --------
    >>> names, hot = multi_hot({"train": [["b"], [], ["a", "b"]]}, None, lambda s, i: f"{s}:{i}")
    >>> names, hot["train"].tolist()
    (['a', 'b'], [[0.0, 1.0], [0.0, 0.0], [1.0, 1.0]])
    """
    rows = {split: np.repeat(np.arange(len(part)), [len(labels) for labels in part])
            for split, part in sets.items()}  # the row of each label, in reading order
    names, ids = normalize({split: [v for labels in part for v in labels]
                            for split, part in sets.items()}, label_names,
                           lambda split, i: locate(split, int(rows[split][i])))
    out = {}
    for split, part in sets.items():
        hot = np.zeros((len(part), len(names)), dtype=np.float32)
        hot[rows[split], ids[split]] = 1.0
        out[split] = hot
    return names, out
