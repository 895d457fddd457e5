"""User-facing errors: each carries a one-line message that names the problem.

The CLI turns any :class:`TextCNNError` into ``error: <message>`` on stderr and exit code 2.
"""

from __future__ import annotations


class TextCNNError(Exception):
    """Bad input from the user (config, data, model folder, request)."""


class ConfigError(TextCNNError, ValueError):
    """A config key is unknown, missing or has a wrong type or value."""

    @classmethod
    def for_key(cls, key: str, problem: str) -> ConfigError:
        """The error for the dotted config ``key``: ``config key '<key>' <problem>``.

        Examples
        --------
        >>> str(ConfigError.for_key("train.lr", "must be > 0, got 0"))
        "config key 'train.lr' must be > 0, got 0"
        """
        return cls(f"config key '{key}' {problem}")


class DataError(TextCNNError, ValueError):
    """A dataset cannot be found or a file in it is malformed."""


class ModelFolderError(TextCNNError, OSError):
    """A model folder is missing a file or holds a corrupt one."""
