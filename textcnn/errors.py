"""User-facing errors: each carries a one-line message that names the problem.

The CLI turns any :class:`TextCNNError` into ``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class TextCNNError(Exception):
    """Bad input from the user (config, data, model folder, request).

    Every error below is one; catch this to handle them all.

    Examples
    --------
    >>> import textcnn
    >>> try:
    ...     textcnn.load_config("no-such-config.yaml")
    ... except textcnn.TextCNNError as exc:
    ...     print(f"error: {exc}")
    error: config file not found: no-such-config.yaml
    """


class ConfigError(TextCNNError, ValueError):
    """A config key is unknown, missing or has a wrong type or value.

    Examples
    --------
    >>> from textcnn.config import from_dict
    >>> from_dict({"tasks": {"s": {"dataset": "sst2"}}, "train": {"lr": 0}})
    Traceback (most recent call last):
    textcnn.errors.ConfigError: config key 'train.lr' must be > 0, got 0.0
    """

    @classmethod
    def for_key(cls, key: str, problem: str) -> ConfigError:
        """The error for the dotted config ``key``: ``config key '<key>' <problem>``.

        Examples
        --------
        >>> str(ConfigError.for_key("train.lr", "must be > 0, got 0"))
        "config key 'train.lr' must be > 0, got 0"
        """
        error = cls(f"config key '{key}' {problem}")
        error.key = key
        return error

    key: str | None = None  # the dotted key the error is about, when there is one


class DataError(TextCNNError, ValueError):
    """A dataset cannot be found or a file in it is malformed.

    Examples
    --------
    >>> from textcnn.config import TaskConfig
    >>> from textcnn.data import load_raw
    >>> load_raw(TaskConfig(dataset="no/such/file.jsonl"))
    Traceback (most recent call last):
    textcnn.errors.DataError: dataset path not found: no/such/file.jsonl
    """


class ModelFolderError(TextCNNError, OSError):
    """A model folder is missing a file or holds a corrupt one.

    Examples
    --------
    >>> import textcnn
    >>> textcnn.load("no-such-folder")
    Traceback (most recent call last):
    textcnn.errors.ModelFolderError: model folder not found: no-such-folder
    """


class InputError(TextCNNError, TypeError):
    """Inputs handed to a classifier are of the wrong type or shape, or name an unknown head.

    Examples
    --------
    >>> import textcnn
    >>> textcnn.load(model_dir).predict(["a gorgeous, witty film"], top_k=0)
    Traceback (most recent call last):
    textcnn.errors.InputError: top_k must be a positive integer, got 0
    """


class PeerLost(Exception):
    """A training process lost its connection to another (one was killed or crashed): not bad
    input, so the CLI exits 1, with one line and how to resume."""


class OutputError(TextCNNError, OSError):
    """A file or folder cannot be written (a read-only or full file system, a path under a
    file), or an output folder is held by another run.

    Examples
    --------
    >>> from textcnn.fileio import write_text
    >>> write_text("README.md/notes.txt", "hello")
    Traceback (most recent call last):
    textcnn.errors.OutputError: cannot write README.md/notes.txt: README.md is a file, not a folder
    """
