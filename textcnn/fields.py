"""Dataclass fields that carry their default, their constraint and a one-line why, and
reading plain data (parsed YAML / JSON) into such dataclasses.

Declare a field with :func:`param` and a :class:`Rule` (``positive``, ``non_negative``,
``fraction``, ``one_of(...)``, ``positive_list(...)``); :func:`check_fields` walks any such
dataclass and applies every field's rule, naming the dotted key of the first that fails.

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass
... class Train:
...     lr: float = param(1e-3, "step size", positive)
>>> check_fields(Train(lr=0.0), "train")
Traceback (most recent call last):
    ...
textcnn.errors.ConfigError: config key 'train.lr' must be > 0, got 0.0
"""

from __future__ import annotations

import dataclasses
import difflib
import re
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError


# -- field constraints -----------------------------------------------------------------------------
@dataclass(frozen=True)
class Rule:
    """A constraint on one field's value: ``holds(value)`` is true, else the key ``must ...``."""

    holds: Callable[[Any], bool]
    must: str  # completes "config key '<key>' must ...", e.g. "be > 0"


positive = Rule(lambda value: value > 0, "be > 0")  # NaN fails every comparison, so fails here
non_negative = Rule(lambda value: value >= 0, "be >= 0")
fraction = Rule(lambda value: 0 <= value < 1, "be in [0, 1)")


def is_device_name(name: Any) -> bool:
    """True for ``auto``, ``cpu``, ``cuda``, ``cuda:N`` and ``mps`` (presence is not checked)."""
    return isinstance(name, str) and re.fullmatch(r"auto|cpu|mps|cuda(:\d+)?", name) is not None


device_name = Rule(is_device_name, "be auto, cpu, cuda, cuda:N or mps")


def one_of(*choices: str) -> Rule:
    """The value must be one of ``choices``."""
    return Rule(lambda value: value in choices, f"be one of {choices}")


def positive_list(what: str) -> Rule:
    """A non-empty list of numbers > 0 (``what`` names them in the error: sizes, channels)."""
    return Rule(lambda value: bool(value) and all(x > 0 for x in value),
                f"be a non-empty list of {what} > 0")


def param(default: Any, why: str, check: Rule | None = None, *,
          model_argument: bool = True, saved_at_default: bool = True) -> Any:
    """A dataclass field with its ``default``, its constraint ``check`` and a one-line ``why``.

    ``model_argument=False`` marks a model setting its model class does not take (it is read
    elsewhere, e.g. ``pretrained`` by the trainer); see :func:`textcnn.config.model_arguments`.
    ``saved_at_default=False`` leaves the key out of a saved config while it holds its default
    (a key added after folders were written, which they then match byte for byte).
    """
    metadata = {"why": why, "check": check, "model_argument": model_argument,
                "saved_at_default": saved_at_default}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


# -- checks ----------------------------------------------------------------------------------------
def check_fields(obj: Any, prefix: str = "") -> None:
    """Apply the ``check`` every field of the dataclass ``obj`` declares, and walk into fields
    holding dataclasses (or dicts of them); the error names the dotted key (a field with
    ``metadata={"inline": True}`` holds sections named by their own keys, without its name)."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), f"{prefix}.{f.name}" if prefix else f.name
        if f.metadata.get("inline"):
            key = prefix
        rule = f.metadata.get("check")
        if rule is not None and not rule.holds(value):
            raise ConfigError.for_key(key, f"must {rule.must}, got {value!r}")
        if dataclasses.is_dataclass(value):
            check_fields(value, key)
        elif isinstance(value, dict):
            for name, item in value.items():
                if dataclasses.is_dataclass(item):
                    check_fields(item, f"{key}.{name}" if key else name)


# -- reading plain data ----------------------------------------------------------------------------
def unknown_key(key: str, known: set[str]) -> ConfigError:
    """The error for the unknown dotted ``key`` whose section takes the names ``known``: the
    closest of them (a typo), else all of them.

    >>> print(unknown_key("train.epoch", {"epochs", "seed", "lr"}))
    config key 'train.epoch' is unknown: did you mean 'train.epochs'?
    >>> print(unknown_key("train.colour", {"epochs", "seed"}))
    config key 'train.colour' is unknown (known: epochs, seed)
    """
    section, _, name = key.rpartition(".")
    close = difflib.get_close_matches(name, sorted(known), n=3)
    if not close:
        return ConfigError.for_key(key, f"is unknown (known: {', '.join(sorted(known))})")
    names = " or ".join(f"'{section}.{c}'" if section else f"'{c}'" for c in close)
    return ConfigError.for_key(key, f"is unknown: did you mean {names}?")


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError.for_key(key, f"must be a list, got {value!r}")
        return [coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is dict:  # str keys (task names)
        _, item_tp = typing.get_args(tp)
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError.for_key(key, f"must be a mapping of names, got {value!r}")
        return {k: coerce(v, item_tp, f"{key}.{k}") for k, v in value.items()}
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError.for_key(key, f"must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError.for_key(key, f"must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError.for_key(key, f"must be a {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover


def build_dataclass(cls: type, data: Any, prefix: str) -> Any:
    """An instance of the dataclass ``cls`` from a mapping; unknown keys and wrong types fail."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.for_key(prefix, f"must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(str(key) for key in set(data) - names)
    if unknown:
        raise unknown_key(f"{prefix}.{unknown[0]}".lstrip("."), names)
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}".lstrip(".")
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = build_dataclass(tp, value, key)
        else:
            kwargs[name] = coerce(value, tp, key)
    return cls(**kwargs)


def model_arguments(model: Any) -> dict[str, Any]:
    """The keyword arguments of a model section's model class: every field not marked
    ``model_argument`` False, e.g. ``{"embedding_dim": 300, "kernel_sizes": [3, 4, 5], ...}``
    for TextCNN."""
    return {f.name: getattr(model, f.name) for f in dataclasses.fields(model)
            if f.metadata.get("model_argument", True)}
