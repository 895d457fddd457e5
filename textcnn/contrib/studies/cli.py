"""The ``textcnn compare`` verb: its arguments, and what it runs (:func:`.compare.main`, imported
when the verb runs, so that building the command line's parser stays light).

Example
-------
>>> from textcnn.cli import build_parser
>>> args = build_parser().parse_args(["compare", "--text-epochs", "2"])
>>> args.verb, args.text_epochs, args.image_dataset
('compare', 2, 'digits')
"""

from __future__ import annotations

import argparse

EXAMPLE = "textcnn compare --output compare-report --image-dataset digits"


def compare_arguments(sub) -> None:
    """Declare ``textcnn compare``'s arguments on the verbs' subparsers ``sub``."""
    from ...cli import add_data_dir, verb_parser

    p = verb_parser(sub, "compare", "train a text and an image model on one conv core; write a "
                                    "report")
    p.add_argument("--output", default="compare-report",
                   help="report folder (default: compare-report)")
    p.add_argument("--image-dataset", default="digits",
                   help="digits (default, bundled), mnist ($TEXTCNN_DATA_DIR/mnist-t10k) or a "
                        "folder of IDX files")
    p.add_argument("--text-dataset", default="sst2", help="local text dataset (default: sst2)")
    add_data_dir(p)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default 0: the idle cores this process may use)")
    p.add_argument("--text-train-size", type=int, default=0, metavar="N",
                   help="train the text model on a random sample of N sentences (0: all)")
    p.add_argument("--text-epochs", type=int, default=4, help="at most (default: 4)")
    p.add_argument("--image-epochs", type=int, default=12, help="at most (default: 12)")


def compare_command(args: argparse.Namespace) -> int:
    """Run ``textcnn compare`` from its parsed arguments."""
    from .compare import main

    return main(args, command=args.command_line)
