"""A scikit-learn estimator at the edge of the package: ``fit(texts, labels)`` on plain lists.

:class:`TextCNNClassifier` follows scikit-learn's estimator rules (``__init__`` only stores its
parameters; ``get_params`` / ``set_params`` / ``clone`` work; it fits in a ``Pipeline``,
``GridSearchCV`` and ``cross_val_score``). Each parameter maps onto one config key
(:data:`PARAMETERS`), so a fitted estimator is an ordinary textcnn run: ``save(path)`` writes a
normal model folder, and pickling (joblib) stores that folder's bytes, never a torch pickle.

Example
-------
>>> texts = ["a gorgeous , witty film", "a dull mess", "witty and moving", "dull , flat , long"]
>>> clf = TextCNNClassifier(embedding_dim=8, channels=4, epochs=2, threads=1)
>>> clf.fit(texts * 10, ["pos", "neg", "pos", "neg"] * 10).classes_.tolist()
['neg', 'pos']
>>> clf.predict(["a witty film"]).shape, clf.predict_proba(["a dull film"]).shape
((1,), (1, 2))
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .texts import check_text

# estimator parameter -> config key (the defaults are the config's, except where noted)
PARAMETERS = {
    "model": "model.name",
    "embedding_dim": "model.embedding_dim",
    "kernel_sizes": "model.kernel_sizes",
    "channels": "model.channels",
    "dropout": "model.dropout",
    "pretrained": "model.pretrained",
    "embedding_mode": "model.embedding_mode",
    "ngram_buckets": "model.ngram_buckets",
    "ngram_scale": "model.ngram_scale",
    "ngram_l2": "model.ngram_l2",
    "conv_tokens": "model.conv_tokens",
    "tokenizer": "tokenizer.kind",
    "max_length": "tokenizer.max_length",
    "epochs": "train.epochs",
    "batch_size": "train.batch_size",
    "lr": "train.lr",
    "patience": "train.patience",
    "seed": "train.seed",
    "threads": "train.threads",
    "loss": "train.loss",
}
HEAD = "label"  # the one head of a fitted estimator


class TextCNNClassifier(ClassifierMixin, BaseEstimator):
    """A textcnn model as a scikit-learn classifier of texts.

    Parameters
    ----------
    model, embedding_dim, kernel_sizes, channels, dropout, pretrained, embedding_mode
        ``model.*`` config keys (Kim's CNN by default).
    ngram_buckets, ngram_scale, ngram_l2, conv_tokens
        ``model.*`` keys of the wide branch (off by default; docs/models.md, "Wide and deep").
    tokenizer, max_length
        ``tokenizer.kind`` and ``tokenizer.max_length``.
    epochs, batch_size, lr, patience, seed, threads, loss
        ``train.*`` config keys; 10% of the texts given to ``fit`` (stratified, by ``seed``)
        are held out to choose the epoch.
    verbose : bool
        Print the run's log lines to stderr.

    Attributes
    ----------
    classes_ : ndarray
        The labels seen by ``fit``, sorted; ``predict`` returns values of this array.
    classifier_ : textcnn.TextClassifier
        The trained model.

    Examples
    --------
    >>> from sklearn.model_selection import cross_val_score
    >>> texts = ["good fun", "bad and dull", "good , witty", "dull mess"] * 15
    >>> labels = [1, 0, 1, 0] * 15
    >>> small = TextCNNClassifier(embedding_dim=8, channels=4, epochs=4, batch_size=4, lr=0.01,
    ...                           threads=1)
    >>> cross_val_score(small, texts, labels, cv=2).round(2).tolist()
    [1.0, 1.0]
    """

    def __init__(self, model: str = "textcnn", embedding_dim: int = 300,
                 kernel_sizes: tuple[int, ...] = (3, 4, 5), channels: int = 100,
                 dropout: float = 0.5, pretrained: str = "", embedding_mode: str = "non-static",
                 ngram_buckets: int = 0, ngram_scale: float = 1.0, ngram_l2: float = 0.0,
                 conv_tokens: int = 0, tokenizer: str = "word", max_length: int = 256,
                 epochs: int = 10, batch_size: int = 50, lr: float = 1e-3, patience: int = 3,
                 seed: int = 0, threads: int = 0, loss: str = "cross_entropy",
                 verbose: bool = False):
        self.model = model
        self.embedding_dim = embedding_dim
        self.kernel_sizes = kernel_sizes
        self.channels = channels
        self.dropout = dropout
        self.pretrained = pretrained
        self.embedding_mode = embedding_mode
        self.ngram_buckets = ngram_buckets
        self.ngram_scale = ngram_scale
        self.ngram_l2 = ngram_l2
        self.conv_tokens = conv_tokens
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.patience = patience
        self.seed = seed
        self.threads = threads
        self.loss = loss
        self.verbose = verbose

    def to_config(self):
        """The run configuration these parameters stand for (``PARAMETERS`` maps them)."""
        from .config import from_dict

        data: dict[str, Any] = {"tasks": {HEAD: {"dataset": "in-memory"}}}
        for name, key in PARAMETERS.items():
            section, field = key.split(".")
            value = getattr(self, name)
            if name == "model" or value != "" or field != "pretrained":
                data.setdefault(section, {})[field] = list(value) \
                    if isinstance(value, tuple) else value
        if self.model != "textcnn":  # only the Kim CNN has filter widths
            data["model"].pop("kernel_sizes")
        return from_dict(data)

    def fit(self, X, y) -> TextCNNClassifier:
        """Train on texts ``X`` (strings) with labels ``y`` (integer ids or names, one kind).

        Everything is checked (texts, parameters, labels) before training starts, and the fitted
        attributes are set only once training has succeeded: a fit that fails leaves the model
        of the last successful fit (or none) in place.
        """
        from .data import RawDataset, Split
        from .errors import DataError
        from .runs import log_to_stderr, train_and_evaluate

        texts = _texts(X)
        config = self.to_config()
        classes, names, ids = _labels(y, len(texts))
        if len(classes) < 2:
            raise DataError(f"fit needs at least two classes, got only {classes.tolist()}")
        dataset = RawDataset("fit(X, y)", names, {"train": Split(texts, ids)})
        log = log_to_stderr if self.verbose else (lambda line: None)
        classifier, _ = train_and_evaluate(config, {HEAD: dataset}, log=log, write_folder=False)
        self.classes_, self.classifier_ = classes, classifier
        return self

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (n, len(classes_)) in the order of ``classes_``."""
        check_is_fitted(self, ("classes_", "classifier_"))
        return self.classifier_.predict_proba(_texts(X), head=HEAD)[HEAD]

    def predict(self, X) -> np.ndarray:
        """The most probable label per text, as values of ``classes_``."""
        probabilities = self.predict_proba(X)
        return self.classes_[probabilities.argmax(axis=1)]

    def save(self, path: str | Path) -> Path:
        """Write the fitted model as an ordinary model folder (``textcnn.load`` opens it)."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.save(path)

    # -- pickling: the model folder's bytes, no torch pickle --------------------------------------
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        clf = state.pop("classifier_", None)
        if clf is not None:
            with tempfile.TemporaryDirectory() as tmp:
                clf.save(tmp)
                state["model_folder_"] = {p.name: p.read_bytes() for p in Path(tmp).iterdir()}
        return state

    def __setstate__(self, state: dict) -> None:
        from .folder import load

        files = state.pop("model_folder_", None)
        self.__dict__.update(state)
        if files is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in files.items():
                    (Path(tmp) / name).write_bytes(data)
                self.classifier_ = load(tmp, backend="torch")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts, not a numeric matrix
        tags.input_tags.two_d_array = False
        return tags


def _labels(y, n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(classes_, label names, int64 ids)`` of the ``n`` labels ``y``, by the rules that label
    files follow (:mod:`textcnn.labels`; an error names the row as ``y[i]``). ``classes_`` holds
    the labels as given (an integer array for integer ids), sorted as the names are."""
    from .labels import normalize

    values = np.asarray(y, dtype=object)  # (no dtype guessing: 0 and "pos" stay what they are)
    if values.ndim != 1 or len(values) != n:
        raise ValueError(f"y must be a 1-d array of {n} labels, got shape {values.shape}")
    names, ids = normalize({"y": values.tolist()}, None, lambda split, i: f"y[{i}]")
    first = np.unique(ids["y"], return_index=True)[1]  # a row of each class, in name order
    return np.asarray(y)[first], names, ids["y"]


def _texts(X) -> list[str]:
    """``X`` as a list of strings (a list, a 1-d array or a Series of texts)."""
    if isinstance(X, str):
        raise ValueError("X must be a list of texts, got a single string; wrap it in [ ]")
    texts = list(np.asarray(X, dtype=object).ravel()) if not isinstance(X, list) else X
    bad = next((i for i, t in enumerate(texts) if not isinstance(t, str)), None)
    if bad is not None:
        raise ValueError(f"X[{bad}] must be a string, got {type(texts[bad]).__name__}")
    for i, text in enumerate(texts):  # the text rule of every path (textcnn.texts)
        check_text(text, f"X[{i}]", ValueError)
    return texts
