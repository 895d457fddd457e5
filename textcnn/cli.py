"""The ``textcnn`` command line. Exit codes: 0 success, 2 bad usage or bad input, 1 otherwise,
130 on SIGINT (Ctrl-C) and 143 on SIGTERM.

Each verb has a function that declares its arguments (``_<verb>_arguments``) and one that runs
it (``VERBS``); errors a user can fix (:class:`~textcnn.errors.TextCNNError`) print one
``error: ...`` line. SIGTERM unwinds like Ctrl-C (locks released, temp files removed); an
interrupted ``train`` says how to resume.

Parts outside the core add their verbs and options of ``train`` through :mod:`textcnn.verbs`
(``teach``, ``compare``, ``train --teacher``); they declare their arguments with the helpers the
core's verbs use (:func:`verb_parser`, :func:`add_data_dir`, :func:`add_device`,
:func:`with_device`). ``import textcnn`` registers the shipped parts (:mod:`textcnn.contrib`)
before :func:`build_parser` can run, so every door sees the same verbs.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shlex
import signal
import sys
import threading
import traceback
from collections.abc import Iterable
from pathlib import Path

from .backends import BACKENDS
from .errors import PeerLost, TextCNNError
from .verbs import TRAIN_OPTIONS, Verb, arranged

# the core's verbs in the order of the main help's examples (its list of verbs: VERBS)
EXAMPLE_ORDER = ("train", "evaluate", "cv", "predict", "explain", "serve", "export", "card")


def add_data_dir(p: argparse.ArgumentParser) -> None:
    """Declare ``--data-dir`` on the verb parser ``p``."""
    p.add_argument("--data-dir", help="local data directory (default: $TEXTCNN_DATA_DIR)")


def add_device(p: argparse.ArgumentParser, default: str | None) -> None:
    """Declare ``--device`` on ``p`` (``default`` None: the config's ``train.device``)."""
    where = ("default: train.device, auto = CUDA when present" if default is None
             else f"default: {default}")
    p.add_argument("--device", default=default,
                   help=f"cpu, cuda, cuda:N, mps or auto ({where})")


def verb_parser(sub, name: str, help_: str) -> argparse.ArgumentParser:
    """The parser of the verb ``name`` on the verbs' subparsers ``sub``, with its example."""
    return sub.add_parser(name, help=help_, description=help_,
                          epilog=f"example:\n  {verbs()[name].example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _train_arguments(sub) -> None:
    p = verb_parser(sub, "train", "train a YAML config or the default recipe; write a model folder")
    p.add_argument("config", nargs="?", help="YAML config (see configs/); or give --dataset")
    p.add_argument("--dataset", help="default recipe on a known name (sst2), Hub id or file")
    p.add_argument("--text-column", help="with --dataset: the text column (default: text)")
    p.add_argument("--label-column", help="with --dataset: the label column (default: label)")
    add_data_dir(p)
    p.add_argument("--output", help="model folder (default: runs/<config or dataset name>)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from OUTPUT/checkpoint.safetensors")
    p.add_argument("--time-budget", type=float, metavar="SECONDS",
                   help="stop after the epoch that passes SECONDS (data loading included) and "
                        "keep the best epoch so far (sets train.time_budget)")
    for option in TRAIN_OPTIONS:
        option.add_arguments(p)
    add_device(p, None)
    p.add_argument("--nproc", type=int, default=1, metavar="N",
                   help="data-parallel training in N local processes: runs `torchrun "
                        "--nproc-per-node N -m textcnn train ...` (default: 1)")


def _evaluate_arguments(sub) -> None:
    p = verb_parser(sub, "evaluate", "score a saved model on a dataset split")
    p.add_argument("model_dir")
    p.add_argument("--dataset", help="known name, Hub id or path (default: the dataset the "
                                     "model was trained on, from its config.json)")
    p.add_argument("--split", default="test",
                   help="train, validation, test (default), or all (every row of a dataset with "
                        "only an 'all' split, whose 'test' is CV fold 0)")
    p.add_argument("--head", help="head to score (needed when the model has several)")
    add_data_dir(p)
    add_device(p, "cpu")


def _cv_arguments(sub) -> None:
    p = verb_parser(sub, "cv", "k-fold cross-validation on a dataset with an 'all' split")
    p.add_argument("config")
    p.add_argument("--folds", type=int, default=10,
                   help="K of K-fold CV, 2-10 (default 10: the dataset's folds; 2 or 5 group "
                        "them; another K draws a stratified K-fold split)")
    add_data_dir(p)
    p.add_argument("--output", help="folder for cv_metrics.json (default: runs/<config>-cv)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    add_device(p, None)


def _predict_arguments(sub) -> None:
    p = verb_parser(sub, "predict", "classify texts; prints one JSON object per text")
    p.add_argument("model_dir")
    p.add_argument("texts", nargs="*", metavar="TEXT")
    p.add_argument("--file", help="read texts from this file, one per line ('-' = stdin); "
                                  "a .jsonl file (or --jsonl) holds one {\"text\": ..., "
                                  "\"id\": ...} object per line")
    p.add_argument("--jsonl", action="store_true", help="--file / stdin is JSON lines")
    p.add_argument("--top-k", type=int, default=1,
                   help="labels per head (a multi-label head: every label over its threshold)")
    p.add_argument("--head", help="only this head's answer")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the forward pass runs (as for serve; default: auto)")
    add_device(p, "cpu")


def _explain_arguments(sub) -> None:
    p = verb_parser(sub, "explain", "show which token windows drove each head's prediction: one "
                                    "JSON object per text, coloured text when stdout is a "
                                    "terminal")
    p.add_argument("model_dir")
    p.add_argument("texts", nargs="+", metavar="TEXT")
    p.add_argument("--top-k", type=int, default=5, help="windows per head (default: 5)")
    p.add_argument("--head", help="only this head's explanation")
    p.add_argument("--backend", choices=BACKENDS, default="auto",
                   help="how the forward pass runs (as for serve; default: auto)")
    p.add_argument("--json", action="store_true", help="JSON lines even on a terminal")


def _export_arguments(sub) -> None:
    p = verb_parser(sub, "export", "export a model folder's network to ONNX (writes model.onnx)")
    p.add_argument("model_dir")
    p.add_argument("--format", default="onnx", choices=["onnx"])
    p.add_argument("--output", help="file to write (default: MODEL_DIR/model.onnx)")


def _card_arguments(sub) -> None:
    p = verb_parser(sub, "card", "(re)write a model folder's or cv folder's model card (README.md)")
    p.add_argument("model_dir")
    p.add_argument("--command", help="the training command to name (default: the one in the "
                                     "current card)")


def _serve_arguments(sub) -> None:
    """``textcnn serve``: the HTTP service's limits and timeouts (fastapi and uvicorn are
    imported only when it runs)."""
    p = verb_parser(sub, "serve", "serve a model folder over HTTP (POST /v1/classify, POST "
                                  "/v1/explain, GET /healthz, GET /v1/model, /openapi.json; "
                                  "GET / is a demo page)")
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
    add_device(p, "cpu")
    p.add_argument("--max-texts", type=int, default=256, help="texts per request (422 beyond)")
    p.add_argument("--max-chars", type=int, default=None,
                   help="characters per text (422 beyond; default and most: the model's limit, "
                        "max(20000, 64 * tokenizer.max_length), what predict accepts)")
    p.add_argument("--max-body-bytes", type=int, default=1 << 20,
                   help="request body size (413 beyond; default: 1 MiB)")
    p.add_argument("--max-connections", type=int, default=1000,
                   help="open connections; past it a new one gets 503 and is closed "
                        "(default: 1000)")
    p.add_argument("--header-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="a request line and headers slower than this get 408 and the "
                        "connection closed (default: 10)")
    p.add_argument("--body-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="a request body not received this long after its headers gets 408 "
                        "(default: 30)")
    p.add_argument("--keep-alive", type=float, default=5.0, metavar="SECONDS",
                   help="idle keep-alive connections close after this (default: 5)")
    p.add_argument("--graceful-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="on SIGTERM, how long in-flight requests may finish (default: 30)")


def build_parser() -> argparse.ArgumentParser:
    """The parser of every verb: the core's, and those registered (:func:`register_verb`)."""
    parser = argparse.ArgumentParser(
        prog="textcnn", description="Train, evaluate and use convolutional text classifiers.",
        epilog="examples:\n" + "\n".join(f"  {e}" for e in examples()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    from ._version import __version__

    parser.add_argument("--version", action="version", version=f"textcnn {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb in verbs().values():
        verb.add_arguments(sub)
    return parser


def with_device(args: argparse.Namespace) -> list[str]:
    """The --set overrides, with --device as ``train.device``."""
    return args.overrides + ([f"train.device={args.device}"] if args.device else [])


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise TextCNNError(f"{where} is not valid UTF-8 (byte 0x{raw[err.start]:02x} at "
                           f"column {err.start + 1}); texts must be UTF-8") from None


def _argument_texts(texts: list[str]) -> list[str]:
    """TEXT arguments, checked to be UTF-8 (Python hands undecodable bytes over escaped) and to
    follow the text rules of :mod:`textcnn.texts`."""
    from .texts import check_text

    return [check_text(_decode(os.fsencode(t), f"TEXT argument {i}"), f"TEXT argument {i}")
            for i, t in enumerate(texts, 1)]


def _train(args: argparse.Namespace) -> int | None:
    from .recipes import train_config
    from .recipes.portfolio import Portfolio, override_keys
    from .runs import train
    from .training import distributed

    if args.nproc < 1:
        raise TextCNNError(f"--nproc must be at least 1, got {args.nproc}")
    budget = [] if args.time_budget is None else [f"train.time_budget={args.time_budget!r}"]
    if args.time_budget is not None and not args.time_budget >= 0:
        raise TextCNNError(f"--time-budget must be >= 0 seconds, got {args.time_budget}")
    options = [item for option in TRAIN_OPTIONS for item in option.overrides(args)]
    config = train_config(args, options + with_device(args) + budget,
                          args.data_dir)
    if args.nproc > 1 and not distributed.launched_by_torchrun():
        return distributed.launch(args.nproc, without_nproc(args.argv))
    # the default recipe compares its candidates, leaving alone the keys of --set
    step = Portfolio(override_keys(args.overrides)) if args.dataset else None
    train(config, args.data_dir, _train_output(args), args.resume, command=args.command_line,
          train_step=step)


def _train_output(args: argparse.Namespace) -> str:
    from .recipes import run_name

    return args.output or str(Path("runs") / run_name(args.config, args.dataset))


def without_nproc(argv: list[str]) -> list[str]:
    """``argv`` less its ``--nproc N`` / ``--nproc=N`` (what each torchrun process runs)."""
    out, skip = [], False
    for arg in argv:
        if skip or arg.startswith("--nproc="):
            skip = False
        elif arg == "--nproc":
            skip = True
        else:
            out.append(arg)
    return out


def _cross_validate(args: argparse.Namespace) -> None:
    from .config import load_config
    from .runs import cross_validate

    config = load_config(args.config, with_device(args))
    output = args.output or str(Path("runs") / f"{Path(args.config).stem}-cv")
    cross_validate(config, args.folds, args.data_dir, output, command=args.command_line)


def _evaluate(args: argparse.Namespace) -> None:
    from .runs import evaluate_folder

    print(json.dumps(evaluate_folder(args.model_dir, args.dataset, args.split, args.data_dir,
                                     args.head, device=args.device)))


def _predict(args: argparse.Namespace) -> None:
    from . import tokenizer
    from .chunked import predict_lines
    from .classifier import load
    from .data.inputs import read_inputs

    tokenizer.QUIET_PANICS = True  # a tokenizer that fails on a text: one error line

    clf = load(args.model_dir, backend=args.backend, device=args.device)
    if clf.kind != "text":
        raise TextCNNError(f"{args.model_dir} is an {clf.kind} model: `predict` classifies texts "
                           "(use textcnn.load(path).predict(pixels))")
    inputs: Iterable[tuple[object, str]] = [
        (None, t) for t in _argument_texts(args.texts)]
    if args.file:  # read, tokenized and classified a chunk at a time
        inputs = itertools.chain(inputs, read_inputs(args.file, args.jsonl))
    if not args.texts and not args.file and not sys.stdin.isatty():
        inputs = read_inputs("-", args.jsonl)
    count, cut = predict_lines(clf, inputs, args.top_k, args.head)
    if not count:
        raise TextCNNError("predict: give texts as arguments, with --file, or on stdin")
    if cut:
        print(f"note: {cut} of {count} text(s) had more than max_length "
              f"({clf.config.tokenizer.max_length}) tokens; the model read the first "
              f"{clf.config.tokenizer.max_length} of each (marked \"truncated\": true)",
              file=sys.stderr)


def _explain(args: argparse.Namespace) -> None:
    from . import tokenizer
    from .classifier import load
    from .explain import render

    tokenizer.QUIET_PANICS = True  # a tokenizer that fails on a text: one error line

    clf = load(args.model_dir, backend=args.backend)
    if clf.kind != "text":
        raise TextCNNError(f"{args.model_dir} is an {clf.kind} model: `explain` explains texts")
    rows = clf.explain(_argument_texts(args.texts), head=args.head,
                       top_k=args.top_k)
    pretty = sys.stdout.isatty() and not args.json
    for i, row in enumerate(rows):
        print(("\n" if i else "") + render(row) if pretty else json.dumps(row, ensure_ascii=False))


def _export(args: argparse.Namespace) -> None:
    from .export import export

    path, diff = export(args.model_dir, args.output, args.format)
    print(json.dumps({"path": str(path), "format": args.format, "max_abs_diff": diff}))


def _serve(args: argparse.Namespace) -> None:
    """Run ``textcnn serve``: the parsed arguments as :class:`~textcnn.serve.ServeSettings`."""
    from .serve import ServeSettings, serve

    serve(args.model_dir, ServeSettings(
        host=args.host, port=args.port, backend=args.backend,
        max_batch_size=args.max_batch_size, max_wait_ms=args.max_wait_ms,
        threads=args.threads, device=args.device, max_texts=args.max_texts,
        max_chars=args.max_chars, max_body_bytes=args.max_body_bytes,
        max_connections=args.max_connections, header_timeout_s=args.header_timeout,
        body_timeout_s=args.body_timeout, keep_alive_s=args.keep_alive,
        graceful_timeout_s=args.graceful_timeout))


def _card(args: argparse.Namespace) -> None:
    from .card import write_card

    print(write_card(args.model_dir, args.command))


# the core's verbs, in the order of the main help's list
VERBS: dict[str, Verb] = {
    "train": Verb(_train_arguments, _train, "textcnn train --dataset sst2 --set train.epochs=5"),
    "evaluate": Verb(_evaluate_arguments, _evaluate, "textcnn evaluate runs/sst2 --split test"),
    "cv": Verb(_cv_arguments, _cross_validate,
               "textcnn cv configs/kim2014/mr.yaml --folds 10 --output runs/mr-cv"),
    "predict": Verb(_predict_arguments, _predict,
                    'textcnn predict runs/sst2 "a gorgeous, witty film" --top-k 2'),
    "serve": Verb(_serve_arguments, _serve,
                  "textcnn serve runs/sst2 --port 8000 --backend onnx --max-batch-size 64"),
    "export": Verb(_export_arguments, _export, "textcnn export runs/sst2 --format onnx"),
    "card": Verb(_card_arguments, _card, "textcnn card runs/sst2"),
    "explain": Verb(_explain_arguments, _explain,
                    'textcnn explain runs/sst2 "a gorgeous, witty film" --top-k 3'),
}


def verbs() -> dict[str, Verb]:
    """Every verb, the core's and the registered (:mod:`textcnn.verbs`), in the help's order."""
    return arranged(VERBS)


def examples() -> list[str]:
    """The main help's examples: the core's in :data:`EXAMPLE_ORDER`, the registered ones placed
    as in the list of verbs."""
    return [verb.example for verb in arranged({n: VERBS[n] for n in EXAMPLE_ORDER}).values()]


def run(args: argparse.Namespace) -> int:
    """Run the verb ``args.verb``; returns the exit code."""
    return verbs()[args.verb].run(args) or 0


class Terminated(BaseException):
    """SIGTERM, raised in the main thread so that it unwinds like Ctrl-C."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated


def interrupted(args: argparse.Namespace, argv: list[str], what: str) -> str:
    """What an interrupted verb tells the user (``what``: why, e.g. ``interrupted (SIGINT)``):
    for ``train``, how to resume (under torchrun, with ``--nproc`` of the run)."""
    if args.verb != "train":
        return what
    for option in TRAIN_OPTIONS:
        why = option.no_resume(args)
        if why:
            return f"{what}; {why}"
    from .training import CHECKPOINT, read_checkpoint

    output = Path(_train_output(args))
    try:
        _, meta = read_checkpoint(output / CHECKPOINT, tensors=False)
    except TextCNNError:
        return (f"{what} before the first epoch ended: no checkpoint in {output}; run the "
                "command again")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    nproc = ["--nproc", str(world)] if world > 1 and "--nproc" not in argv else []
    command = shlex.join(["textcnn", *argv, *nproc, *([] if args.resume else ["--resume"])])
    return f"{what}; epoch {meta.get('epoch')} is saved in {output}: resume with\n  {command}"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    on_main = threading.current_thread() is threading.main_thread() and args.verb != "serve"
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main else None
    try:
        args.command_line = shlex.join(["textcnn", *argv])  # shown in reports and cards
        args.argv = list(argv)
        return run(args)
    except TextCNNError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as exc:
        term = isinstance(exc, Terminated)
        print(interrupted(args, argv, f"interrupted ({'SIGTERM' if term else 'SIGINT'})"),
              file=sys.stderr)
        return 143 if term else 130
    except PeerLost as exc:  # another training process was killed: not bad input
        print(f"error: {interrupted(args, argv, str(exc))}", file=sys.stderr)
        return 1
    except Exception:  # a bug, not bad input: keep the traceback for the report
        traceback.print_exc()
        return 1
    finally:
        if on_main:  # None: a handler installed outside Python, i.e. the default
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":
    sys.exit(main())
