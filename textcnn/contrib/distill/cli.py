"""The ``textcnn teach`` verb: its arguments and what it runs (fine-tune one teacher per task of
a config into ``OUTPUT/<task>``); and ``textcnn train``'s switch ``--teacher`` (with
``--unlabeled``), which fine-tunes the teacher inside the run (:mod:`.switch`).

Example
-------
>>> from textcnn.cli import build_parser
>>> args = build_parser().parse_args(["teach", "configs/studies/sst2-distill.yaml"])
>>> args.verb, args.output
('teach', None)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ...errors import TextCNNError

EXAMPLE = "textcnn teach configs/studies/sst2-distill.yaml --output runs/sst2-teacher"


def teach_arguments(sub) -> None:
    """Declare ``textcnn teach``'s arguments on the verbs' subparsers ``sub``."""
    from ...cli import add_data_dir, add_device, verb_parser

    p = verb_parser(sub, "teach", "fine-tune a transformer teacher per task (the config's teacher: "
                            "section) for distillation into a textcnn student")
    p.add_argument("config", help="YAML config with a teacher: section (see configs/)")
    add_data_dir(p)
    p.add_argument("--output", help="folder of the teachers, one subfolder per task (default: "
                                    "runs/<config name>-teacher)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set teacher.epochs=1 (repeatable)")
    add_device(p, None)


def teach(args: argparse.Namespace) -> None:
    """Run ``textcnn teach``: print each task's teacher metrics as one JSON line."""
    from ...cli import with_device
    from ...config import load_config
    from .teacher import teach as fine_tune_teachers

    config = load_config(args.config, with_device(args))
    output = args.output or str(Path("runs") / f"{Path(args.config).stem}-teacher")
    for task, info in fine_tune_teachers(config, output, args.data_dir).items():
        print(json.dumps({"task": task, "folder": str(Path(output) / task),
                          "best_epoch": info["best_epoch"], "metrics": info["metrics"],
                          "train_seconds": info["train_seconds"]}))


def switch_arguments(p: argparse.ArgumentParser) -> None:
    """Declare ``textcnn train``'s ``--teacher`` and ``--unlabeled`` on its parser ``p``."""
    p.add_argument("--teacher", metavar="NAME",
                   help="with --dataset: fine-tune a transformer (minilm: the local "
                        "all-MiniLM-L6-v2; the distill extra) on the training rows and distil "
                        "it into the recipe's CNN; kept in OUTPUT-teacher (docs/distillation.md)")
    p.add_argument("--unlabeled", metavar="FILE", help="with --teacher: more texts, one per "
                                                      "line, for the teacher to score")


def switch_overrides(args: argparse.Namespace) -> list[str]:
    """The config items of ``--teacher`` and ``--unlabeled`` (none without them)."""
    from .switch import teacher_overrides

    if args.teacher and args.config:
        raise TextCNNError("--teacher goes with --dataset (the default recipe); a config file "
                           "sets distill.teacher itself (see docs/distillation.md)")
    if args.teacher and args.resume:
        raise TextCNNError("--resume: a run with --teacher does not resume; run it again "
                           "without --resume (its teacher is fine-tuned again)")
    if args.unlabeled and not args.teacher:
        raise TextCNNError("--unlabeled goes with --teacher (its texts are the teacher's to "
                           "score); a config file sets distill.unlabeled")
    unlabeled = [f"distill.unlabeled={args.unlabeled}"] if args.unlabeled else []
    return teacher_overrides(args.teacher) + unlabeled


def no_resume(args: argparse.Namespace) -> str | None:
    """Why an interrupted ``textcnn train --teacher`` run does not resume (its teacher is not
    in the checkpoint); None without ``--teacher``."""
    return "a run with --teacher does not resume: run the command again" if args.teacher \
        else None
