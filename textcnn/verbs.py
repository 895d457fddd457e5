"""The hooks through which a part outside the core adds to the ``textcnn`` command line: a verb
(:func:`register_verb`) or options of ``train`` (:func:`register_train_option`).

They live apart from :mod:`textcnn.cli` so that registering stays light and does not import the
command line itself (``python -m textcnn.cli`` runs that module as ``__main__``); the command
line reads them each time it builds its parser (:func:`textcnn.cli.build_parser`), and so lists
a registered verb wherever its ``after`` puts it, whichever was imported first. A part declares
its arguments with the helpers the core's verbs use (:func:`textcnn.cli.verb_parser`,
:func:`~textcnn.cli.add_data_dir`, :func:`~textcnn.cli.add_device`), imported when its
``add_arguments`` runs.

Example
-------
>>> from textcnn.cli import main, verb_parser
>>> register_verb("hello", Verb(lambda sub: verb_parser(sub, "hello", "say hello"),
...                             lambda args: print("hello"), "textcnn hello"))
>>> main(["hello"])
hello
0
>>> unregister_verb("hello")
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Verb:
    """A verb: ``add_arguments(sub)`` declares its parser on the verbs' subparsers (with
    :func:`textcnn.cli.verb_parser`), ``run(args)`` runs it (its exit code, or None for 0);
    ``example`` is shown in its help and in the main help."""

    add_arguments: Callable[..., None]
    run: Callable[[argparse.Namespace], int | None]
    example: str


@dataclass(frozen=True)
class TrainOption:
    """Options a part outside the core adds to ``textcnn train``: ``add_arguments(parser)``
    declares them (after the core's, before ``--device``), ``overrides(args)`` gives the config
    items they stand for (raising :class:`~textcnn.errors.TextCNNError` on a bad combination),
    ``no_resume(args)`` says why a run with them does not resume (None: it does)."""

    add_arguments: Callable[[argparse.ArgumentParser], None]
    overrides: Callable[[argparse.Namespace], list[str]]
    no_resume: Callable[[argparse.Namespace], str | None] = lambda args: None


# verb name -> (Verb, the verb it is listed after; None: last), in registration order
REGISTERED: dict[str, tuple[Verb, str | None]] = {}
TRAIN_OPTIONS: list[TrainOption] = []


def register_verb(name: str, verb: Verb, after: str | None = None) -> None:
    """Add the verb ``name``, listed after the verb ``after`` in the main help's verbs and
    examples (None: last)."""
    REGISTERED[name] = (verb, after)


def unregister_verb(name: str) -> None:
    """Remove the registered verb ``name`` (a test's or an example's own)."""
    REGISTERED.pop(name, None)


def register_train_option(option: TrainOption) -> None:
    """Add ``option`` to ``textcnn train`` (once)."""
    if option not in TRAIN_OPTIONS:
        TRAIN_OPTIONS.append(option)


def arranged(core: dict[str, Verb]) -> dict[str, Verb]:
    """``core`` (name -> Verb, in order) with every registered verb placed after its
    ``after`` (at the end when that verb is absent)."""
    names = list(core)
    verbs = dict(core)
    for name, (verb, after) in REGISTERED.items():
        if name in verbs:
            continue  # a core verb keeps its place
        names.insert(names.index(after) + 1 if after in names else len(names), name)
        verbs[name] = verb
    return {name: verbs[name] for name in names}
