"""The ``textcnn teach`` verb: its arguments and what it runs (fine-tune one teacher per task of
a config into ``OUTPUT/<task>``).

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


def teach_arguments(sub) -> None:
    """Declare ``textcnn teach``'s arguments on the verbs' subparsers ``sub``."""
    from ..cli import _data_dir, _device, _verb

    p = _verb(sub, "teach", "fine-tune a transformer teacher per task (the config's teacher: "
                            "section) for distillation into a textcnn student")
    p.add_argument("config", help="YAML config with a teacher: section (see configs/)")
    _data_dir(p)
    p.add_argument("--output", help="folder of the teachers, one subfolder per task (default: "
                                    "runs/<config name>-teacher)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set teacher.epochs=1 (repeatable)")
    _device(p, None)


def teach(args: argparse.Namespace) -> None:
    """Run ``textcnn teach``: print each task's teacher metrics as one JSON line."""
    from ..cli import _with_device
    from ..config import load_config
    from .teacher import teach as fine_tune_teachers

    config = load_config(args.config, _with_device(args))
    output = args.output or str(Path("runs") / f"{Path(args.config).stem}-teacher")
    for task, info in fine_tune_teachers(config, output, args.data_dir).items():
        print(json.dumps({"task": task, "folder": str(Path(output) / task),
                          "best_epoch": info["best_epoch"], "metrics": info["metrics"],
                          "train_seconds": info["train_seconds"]}))
