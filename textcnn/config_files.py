"""Reading a config file: YAML that rejects a key given twice, and ``--set key=value`` overrides.

Example
-------
>>> apply_overrides({"train": {"epochs": 25}}, ["train.epochs=3", "model.channels=50"])
{'train': {'epochs': 3}, 'model': {'channels': 50}}
>>> apply_overrides({}, ["train.lr=1e-4"])  # YAML 1.2 floats: no dot needed before the exponent
{'train': {'lr': 0.0001}}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


def _override_value(item: str, raw: str) -> Any:
    """The value of ``--set key=raw``: a flow list or mapping (``[2, 3]``, ``{a: 1}``) and a quoted
    string (``''``) as YAML reads them; anything else is one plain scalar: a number, boolean or
    null as YAML reads it, else the text itself (``|``, ``>``, ``#`` and ``-`` stay themselves)."""
    text = raw.strip()
    if text[:1] in ("[", "{", "'", '"'):
        try:
            return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigError(f"--set {item}: cannot parse the value {raw!r}: {problem}") from None
        except ConfigError as exc:  # a key given twice
            raise ConfigError(f"--set {item}: {exc}") from None
    loader = _UniqueKeyLoader("")
    tag = loader.resolve(yaml.ScalarNode, text, (True, False))
    if tag.rsplit(":", 1)[-1] not in ("bool", "int", "float", "null"):
        return text
    return loader.construct_object(yaml.ScalarNode(tag, text))


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key.sub=value, got {item!r}")
    key, raw = item.split("=", 1)
    return key.strip().split("."), _override_value(item, raw)


def blame(exc: ConfigError, source: str, overrides: list[str]) -> ConfigError:
    """``exc`` prefixed with where its key was set: the last ``--set`` item setting that key (or
    a section holding it), else ``source`` (the config file).

    >>> error = ConfigError.for_key("train.epochs", "must be an integer, got 'x'")
    >>> print(blame(error, "c.yaml", ["train.epochs=x"]))
    --set train.epochs=x: config key 'train.epochs' must be an integer, got 'x'
    >>> print(blame(error, "c.yaml", ["train.lr=1"]))
    c.yaml: config key 'train.epochs' must be an integer, got 'x'
    """
    key = exc.key or ""
    for item in reversed(overrides):
        path = item.split("=", 1)[0].strip()
        if key == path or key.startswith((path + ".", path + "[")):
            return ConfigError(f"--set {item}: {exc}")
    return ConfigError(f"{source}: {exc}")


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set a.b=value`` items (values parsed as YAML) to raw config data."""
    for item in overrides or ():
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {'.'.join(path)}: '{part}' is not a mapping")
            node = nxt
        node[path[-1]] = value
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects a key given twice in one mapping (e.g. two tasks named alike)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError.for_key(f"{key}", f"is given twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# PyYAML reads YAML 1.1, where "1e-4" is a string; read it (and 1E+3, .5e-2) as YAML 1.2 does
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."))


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}{_where(exc)}: not valid YAML: {_problem(exc)}") from None
    except ConfigError as exc:  # a key given twice
        raise ConfigError(f"{path}: {exc}") from None
    return data if data is not None else {}


def _where(exc: yaml.YAMLError) -> str:
    """``, line L, column C`` of a YAML error (1-based), when YAML knows it."""
    mark = getattr(exc, "problem_mark", None)
    return "" if mark is None else f", line {mark.line + 1}, column {mark.column + 1}"


def _problem(exc: yaml.YAMLError) -> str:
    """What a YAML error says went wrong, on one line (e.g. ``mapping values are not allowed
    here``), with its context (``while parsing a flow mapping``) when there is one."""
    problem = getattr(exc, "problem", None)
    if problem is None:
        return " ".join(str(exc).split())
    context, mark = getattr(exc, "context", None), getattr(exc, "context_mark", None)
    if context and mark is not None:
        context += f" at line {mark.line + 1}"
    return f"{problem} ({context})" if context else problem
