"""The ``textcnn`` command line. Exit codes: 0 success, 2 bad usage or bad input, 1 otherwise,
130 on SIGINT (Ctrl-C) and 143 on SIGTERM.

Each verb has a function that declares its arguments (``_<verb>_arguments``) and one that runs
it (``VERBS``); errors a user can fix (:class:`~textcnn.errors.TextCNNError`) print one
``error: ...`` line. SIGTERM unwinds like Ctrl-C (locks released, temp files removed); an
interrupted ``train`` says how to resume.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys
import threading
import traceback
from pathlib import Path

from .backends import BACKENDS
from .errors import TextCNNError

EXAMPLES = {
    "train": "textcnn train configs/sst2.yaml --output runs/sst2 --set train.epochs=5",
    "evaluate": "textcnn evaluate runs/sst2 --dataset sst2 --split test",
    "cv": "textcnn cv configs/mr.yaml --folds 10 --output runs/mr-cv",
    "predict": 'textcnn predict runs/sst2 "a gorgeous, witty film" --top-k 2',
    "serve": "textcnn serve runs/sst2 --port 8000 --backend onnx --max-batch-size 64",
    "export": "textcnn export runs/sst2 --format onnx",
    "compare": "textcnn compare --output compare-report --image-dataset digits",
}


def _data_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="local data directory (default: $TEXTCNN_DATA_DIR)")


def _verb(sub, name: str, help_: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help=help_, description=help_,
                          epilog=f"example:\n  {EXAMPLES[name]}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _train_arguments(sub) -> None:
    p = _verb(sub, "train", "train a model from a YAML config and write its model folder")
    p.add_argument("config", help="YAML config (see configs/)")
    _data_dir(p)
    p.add_argument("--output", help="model folder to write (default: runs/<config name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUTPUT/checkpoint.safetensors")


def _evaluate_arguments(sub) -> None:
    p = _verb(sub, "evaluate", "score a saved model on a dataset split")
    p.add_argument("model_dir")
    p.add_argument("--dataset", required=True, help="known name, Hub id or path")
    p.add_argument("--split", default="test",
                   help="train, validation, test (default), or all (every row of a dataset with "
                        "only an 'all' split, whose 'test' is CV fold 0)")
    p.add_argument("--head", help="head to score (needed when the model has several)")
    _data_dir(p)


def _cv_arguments(sub) -> None:
    p = _verb(sub, "cv", "k-fold cross-validation on a dataset with an 'all' split")
    p.add_argument("config")
    p.add_argument("--folds", type=int, default=10, help="how many of the 10 folds to run")
    _data_dir(p)
    p.add_argument("--output", help="folder for cv_metrics.json (default: runs/<config>-cv)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")


def _predict_arguments(sub) -> None:
    p = _verb(sub, "predict", "classify texts; prints one JSON object per text")
    p.add_argument("model_dir")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="read texts from this file, one per line ('-' = stdin)")
    p.add_argument("--top-k", type=int, default=1)
    p.add_argument("--head", help="only this head's answer")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the forward pass runs (as for serve; default: auto)")


def _serve_arguments(sub) -> None:
    p = _verb(sub, "serve", "serve a model folder over HTTP (POST /v1/classify, GET /healthz, "
                            "GET /v1/model, /openapi.json)")
    p.add_argument("model_dir")
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the forward pass runs: folded (convolutions precomputed into the "
                        "embedding table), torch, onnx (onnxruntime), or auto = folded when the "
                        "model folds, else torch (default: auto)")
    p.add_argument("--max-batch-size", type=int, default=64,
                   help="texts per forward pass; 1 turns micro-batching off (default: 64)")
    p.add_argument("--max-wait-ms", type=float, default=5.0,
                   help="longest a request waits for others to batch with (default: 5)")
    p.add_argument("--threads", type=int, default=0,
                   help="intra-op threads of the forward pass (default: 0 = one per core)")
    p.add_argument("--max-texts", type=int, default=256, help="texts per request (422 beyond)")
    p.add_argument("--max-chars", type=int, default=20_000,
                   help="characters per text (422 beyond)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="request body size (413 beyond; default: 1 MiB)")


def _export_arguments(sub) -> None:
    p = _verb(sub, "export", "export a model folder's network to ONNX (writes model.onnx)")
    p.add_argument("model_dir")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.add_argument("--output", help="file to write (default: MODEL_DIR/model.onnx)")


def _compare_arguments(sub) -> None:
    p = _verb(sub, "compare", "train a text and an image model on one conv core; write a report")
    p.add_argument("--output", default="compare-report",
                   help="report folder (default: compare-report)")
    p.add_argument("--image-dataset", default="digits",
                   help="digits (default, bundled), mnist ($TEXTCNN_DATA_DIR/mnist-t10k) or a "
                        "folder of IDX files")
    p.add_argument("--text-dataset", default="sst2", help="local text dataset (default: sst2)")
    _data_dir(p)
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: all cores)")
    p.add_argument("--text-train-size", type=int, default=0, metavar="N",
                   help="train the text model on a random sample of N sentences (0: all)")
    p.add_argument("--text-epochs", type=int, default=4, help="at most (default: 4)")
    p.add_argument("--image-epochs", type=int, default=12, help="at most (default: 12)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="textcnn", description="Train, evaluate and use convolutional text classifiers.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in EXAMPLES.values()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from . import __version__

    parser.add_argument("--version", action="version", version=f"textcnn {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add_arguments in (_train_arguments, _evaluate_arguments, _cv_arguments,
                          _predict_arguments, _serve_arguments, _export_arguments,
                          _compare_arguments):
        add_arguments(sub)
    return parser


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextCNNError(f"{where} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at "
                           f"column {err.start + 1}); texts must be UTF-8") from None


def _read_lines(path: str) -> list[str]:
    """The lines of ``path`` (``-``: stdin), each checked to be UTF-8."""
    name = "stdin" if path == "-" else path
    if path == "-" and not hasattr(sys.stdin, "buffer"):  # a text stream put in its place
        return [line.rstrip("\r\n") for line in sys.stdin]
    try:
        fh = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        with fh:
            return [_decode(line, f"{name}:{i}").rstrip("\r\n") for i, line in enumerate(fh, 1)]
    except OSError as exc:
        raise TextCNNError(f"cannot read --file {path}: {exc.strerror or exc}") from None


def _argument_texts(texts: list[str]) -> list[str]:
    """TEXT arguments, checked to be UTF-8 (Python hands undecodable bytes over escaped)."""
    return [_decode(os.fsencode(t), f"TEXT argument {i}") for i, t in enumerate(texts, 1)]


def _train(args: argparse.Namespace) -> None:
    from .config import load_config
    from .runs import train

    config = load_config(args.config, args.overrides)
    train(config, args.data_dir, args.output or str(Path("runs") / Path(args.config).stem),
          resume=args.resume)


def _cross_validate(args: argparse.Namespace) -> None:
    from .config import load_config
    from .runs import cross_validate

    config = load_config(args.config, args.overrides)
    output = args.output or str(Path("runs") / f"{Path(args.config).stem}-cv")
    cross_validate(config, args.folds, args.data_dir, output)


def _evaluate(args: argparse.Namespace) -> None:
    from .runs import evaluate_folder

    print(json.dumps(evaluate_folder(args.model_dir, args.dataset, args.split, args.data_dir,
                                     args.head)))


def _predict(args: argparse.Namespace) -> None:
    from .folder import load

    clf = load(args.model_dir, backend=args.backend)
    if clf.kind != "text":
        raise TextCNNError(f"{args.model_dir} is an {clf.kind} model: `predict` classifies texts "
                           "(use textcnn.load(path).predict(pixels))")
    texts = _argument_texts(args.texts)
    if args.file:
        texts += _read_lines(args.file)
    if not args.texts and not args.file and not sys.stdin.isatty():
        texts = _read_lines("-")
    if not texts:
        raise TextCNNError("predict: give texts as arguments, with --file, or on stdin")
    for row in clf.predict(texts, top_k=args.top_k, head=args.head):
        print(json.dumps(row, ensure_ascii=False))


def _serve(args: argparse.Namespace) -> None:
    from .serve import ServeSettings, serve

    serve(args.model_dir, ServeSettings(
        host=args.host, port=args.port, backend=args.backend,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        threads=args.threads, max_texts=args.max_texts, max_chars=args.max_chars,
        max_body_bytes=args.max_body_bytes))


def _export(args: argparse.Namespace) -> None:
    from .backends.onnx import export

    path, diff = export(args.model_dir, args.output, args.format)
    print(json.dumps({"path": str(path), "format": args.format, "max_abs_diff": diff}))


def _compare(args: argparse.Namespace) -> int:
    from .studies import compare

    return compare.main(args, command=args.command_line)


VERBS = {"train": _train, "cv": _cross_validate, "evaluate": _evaluate, "predict": _predict,
         "serve": _serve, "export": _export, "compare": _compare}


def run(args: argparse.Namespace) -> int:
    """Run the verb ``args.verb``; returns the exit code."""
    return VERBS[args.verb](args) or 0


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def _interrupted(args: argparse.Namespace, argv: list[str], signal_name: str) -> str:
    """What an interrupted verb tells the user: for ``train``, how to resume."""
    if args.verb != "train":
        return f"interrupted ({signal_name})"
    from .training import CHECKPOINT, read_checkpoint

    output = Path(args.output or Path("runs") / Path(args.config).stem)
    try:
        _, meta = read_checkpoint(output / CHECKPOINT, tensors=False)
    except TextCNNError:
        return (f"interrupted ({signal_name}) before the first epoch ended: no checkpoint in "
                f"{output}; run the command again")
    command = shlex.join(["textcnn", *argv, *([] if args.resume else ["--resume"])])
    return (f"interrupted ({signal_name}); epoch {meta.get('epoch')} is saved in {output}: "
            f"resume with\n  {command}")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread() and args.verb != "serve"
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main else None
    try:
        args.command_line = " ".join(["textcnn", *argv])  # shown in reports
        return run(args)
    except TextCNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        term = isinstance(exc, Terminated)
        print(_interrupted(args, argv, "SIGTERM" if term else "SIGINT"), file=sys.stderr)
        return 143 if term else 130
    except Exception:  # a bug, not bad input: keep the traceback for the report
        traceback.print_exc()
        return 1
    finally:
        if on_main:  # None: a handler installed outside Python, i.e. the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
