"""``textcnn compare``: one conv core, text vs images, in one report folder.

Trains a text model (SST-2) and an image model (digits, or MNIST) with the same core settings,
then writes ``report.md``, ``results.json`` and PNG figures: learning curves side by side; a table
of parameters, FLOPs per example, training and inference examples/second and accuracy; the
learned first-layer filters (2D kernels as images, 1D filters as the n-grams that excite them
most); and the measured max differences of the parity checks of :mod:`.parity` (and
``tests/test_parity.py``). A missing dataset leaves its half out and the report says what is
missing. The measurements are in :mod:`.compare_measures`, the figures in
:mod:`.compare_figures`, the markdown in :mod:`.compare_report`.

Example
-------
>>> run("compare-report", command="textcnn compare")  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ...config import TaskConfig, from_dict
from ...data import data_dir_from, load_raw
from ...data.images import load_images
from ...data.resolve import local_folder
from ...errors import DataError
from ...fileio import write_json
from ...modality import modality_for
from ...runs import log_to_stderr, train_and_evaluate
from ...threads import set_threads
from .compare_figures import plot_curves_side_by_side, plot_image_filters, plot_text_filters
from .compare_measures import flops_per_example, infer_speed, top_ngrams, train_speed
from .compare_report import ReportContext, write_report
from .parity import parity_checks

# The same core settings on both sides where the two can share them: the conv block, width 3
# first, 64 channels into the global max-pool, dropout 0.5, AdamW 1e-3, batch 50, max-norm 3.
TEXT_MODEL = {"name": "textcnn", "embedding_dim": 128, "kernel_sizes": [3, 4, 5],
              "channels": 64, "dropout": 0.5}
IMAGE_MODEL = {"name": "imagecnn", "blocks": [32, 64], "kernel_size": 3, "pool": 2,
               "norm": "batch", "dropout": 0.5}
SPEED_SECONDS = 3.0  # how long training speed is measured per side
REPORT_FILES = ("report.md", "results.json", "curves.png", "image_filters.png",
                "text_filters.png")
TRAIN = {"batch_size": 50, "optimizer": "adamw", "lr": 0.001, "max_norm": 3.0, "seed": 0}
# what results.json keeps of each side
RESULT_KEYS = ("dataset", "sizes", "params", "embedding_params", "flops", "train_speed",
               "infer_speed", "seconds", "metrics")


def read_history(folder: Path) -> list[dict]:
    """The rows of a model folder's ``history.jsonl`` (one per epoch); [] when it has none."""
    path = folder / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _side_config(model: dict, tasks: dict, epochs: int, threads: int, **extra) -> dict:
    return {"tasks": tasks, "model": model, **extra,
            "train": {**TRAIN, "epochs": epochs, "patience": max(2, epochs // 3),
                      "threads": threads}}



def embedding_table(model: torch.nn.Module) -> torch.nn.Module:
    """A text model's input embedding module (an image model has none: an empty module)."""
    return getattr(model, "embedding", None) or torch.nn.Module()

def _train_side(name: str, data: dict, datasets: dict, out: Path, log) -> dict:
    """Train one side into ``out/<name>-model`` and measure it."""
    config = from_dict(data)
    head = next(iter(config.tasks))
    folder = out / f"{name}-model"
    start = time.perf_counter()
    clf, metrics = train_and_evaluate(config, datasets, folder, log=log)
    seconds = time.perf_counter() - start
    saved = {"tokenizer": clf.tokenizer.to_str()} if name == "text" else None
    prepared = modality_for(config).prepare(  # the splits the model saw, the same tokenizer
        config, datasets, 0, saved)
    train, test = prepared.splits[head]["train"], prepared.splits[head].get("test")
    if name == "text":
        length = int(round(float(np.mean(train.lengths))))
        inputs = (torch.randint(2, prepared.input_size, (1, length)), torch.tensor([length]))
    else:
        inputs = train.batch(np.arange(1))
    model = clf.model
    return {
        "clf": clf, "config": config, "head": head, "prepared": prepared, "folder": folder,
        "history": read_history(folder), "seconds": seconds,
        "sizes": {s: len(d) for s, d in prepared.splits[head].items()},
        "params": sum(p.numel() for p in model.parameters()),
        "embedding_params": sum(p.numel() for p in embedding_table(model).parameters()),
        "flops": flops_per_example(model, inputs),
        "flops_at": f"{inputs[1].item()} tokens" if name == "text" else "x".join(
            map(str, inputs[0].shape[1:])),
        "train_speed": train_speed(model, train, head, SPEED_SECONDS, TRAIN["batch_size"],
                                   TRAIN["lr"]),
        "infer_speed": infer_speed(model, test if test is not None else train),
        "metrics": metrics[head],
    }


def load_text_side(dataset: str, data_dir, train_size: int, seed: int = 0):
    """SST-2 (or ``dataset``) from the local data dir only: ``(datasets, None)`` or
    ``(None, why)``; ``datasets`` maps the task name to its raw dataset."""
    path = Path(dataset)
    if not path.exists():
        root = data_dir_from(data_dir)
        if root is None or local_folder(dataset, data_dir) is None:
            where = root / dataset if root else "no data dir (set --data-dir or $TEXTCNN_DATA_DIR)"
            return None, f"text dataset '{dataset}' not found: looked in {where}"
    try:
        raw = load_raw(TaskConfig(dataset=dataset), data_dir)
    except DataError as exc:
        return None, f"text dataset '{dataset}': {exc}"
    if "train" in raw.splits and 0 < train_size < len(raw.splits["train"]):
        rng = np.random.default_rng(seed)  # a random sample, never the first rows
        idx = np.sort(rng.choice(len(raw.splits["train"]), train_size, replace=False))
        raw.splits["train"] = raw.splits["train"].subset(idx)
    return {"sentiment": raw}, None


def load_image_side(dataset: str, data_dir):
    """Digits, MNIST or an IDX folder: ``(datasets, None)`` or ``(None, why)``."""
    try:
        return {"digit": load_images(TaskConfig(dataset=dataset), data_dir)}, None
    except DataError as exc:
        return None, f"image dataset '{dataset}': {exc}"


def _remove_earlier_report(out: Path) -> None:
    """Remove what an earlier run wrote here, so a missing half leaves nothing stale."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    for name in ("text-model", "image-model"):
        if (out / name / "config.json").is_file():
            shutil.rmtree(out / name)


def _draw_figures(sides: dict, out: Path) -> tuple[dict, list[dict]]:
    """Draw the figures into ``out``: ``({figure: drawn}, the text filters' top n-grams)``."""
    figures = {"curves": sides and plot_curves_side_by_side(sides, out / "curves.png")}
    if "image" in sides:
        figures["image_filters"] = plot_image_filters(sides["image"]["clf"].model,
                                                      out / "image_filters.png")
    filters = top_ngrams(sides["text"]) if "text" in sides else []
    figures["text_filters"] = plot_text_filters(filters, out / "text_filters.png")
    return figures, filters


def _train_sides(plans: dict, threads: int, out: Path, log) -> dict:
    """Train each side whose datasets were found: ``plans[name]`` is (datasets, dataset name,
    model settings, head, epochs, extra config sections)."""
    sides = {}
    for name, (datasets, dataset, model, head, epochs, extra) in plans.items():
        if datasets is None:
            continue
        log(f"{name}: {dataset}")
        data = _side_config(model, {head: {"dataset": dataset}}, epochs, threads, **extra)
        sides[name] = {**_train_side(name, data, datasets, out, log), "dataset": dataset}
    return sides


def run(output: str | Path = "compare-report", image_dataset: str = "digits",
        text_dataset: str = "sst2", data_dir=None, threads: int = 0, text_train_size: int = 0,
        text_epochs: int = 4, image_epochs: int = 12, log: Callable[[str], None] | None = None,
        command: str | None = None) -> dict:
    """Train both sides and write the report folder.

    Parameters
    ----------
    output : str or Path
        The report folder; what an earlier run wrote there is replaced.
    image_dataset, text_dataset : str
        Dataset names or paths; a missing one leaves its side out.
    data_dir : str, optional
        Local data directory (default: ``$TEXTCNN_DATA_DIR``).
    threads : int
        Torch threads (0: chosen by :func:`textcnn.threads.choose_threads`).
    text_train_size : int
        Train the text model on a random sample of this many sentences (0: all).
    text_epochs, image_epochs : int
        At most this many epochs per side.
    log : callable, optional
        Receives progress lines (default: stderr).
    command : str, optional
        The command line the report names as its origin (default: this call).

    Returns ``results.json``'s numbers; raises DataError if neither dataset is found (after
    writing a report that says so).
    """
    log = log or log_to_stderr
    command = command or f"textcnn.contrib.studies.compare.run(output={str(output)!r})"
    start = time.perf_counter()
    out = Path(output)
    _remove_earlier_report(out)
    threads = set_threads(threads).count
    text_datasets, why_text = load_text_side(text_dataset, data_dir, text_train_size)
    image_datasets, why_image = load_image_side(image_dataset, data_dir)
    missing = [w for w in (why_text, why_image) if w]
    sides = _train_sides({
        "text": (text_datasets, text_dataset, TEXT_MODEL, "sentiment", text_epochs,
                 {"tokenizer": {"kind": "word", "max_length": 64}}),
        "image": (image_datasets, image_dataset, IMAGE_MODEL, "digit", image_epochs, {}),
    }, threads, out, log)
    log("parity checks")
    parity = parity_checks()
    figures, filters = _draw_figures(sides, out)
    context = ReportContext(command, time.perf_counter() - start, threads, TRAIN)
    write_report(out, sides, missing, parity, figures, filters, context)
    results = {"threads": threads, "missing": missing, "parity": parity,
               "sides": {n: {k: s[k] for k in RESULT_KEYS} for n, s in sides.items()},
               "filters": filters}
    write_json(out / "results.json", results)
    log(f"report: {out / 'report.md'}")
    if not sides:
        raise DataError("compare: no dataset found (" + "; ".join(missing) + ")")
    return results


def main(args: argparse.Namespace, command: str) -> int:
    """The ``textcnn compare`` verb: ``args`` as parsed, ``command`` the line typed."""
    start = time.perf_counter()
    run(args.output, args.image_dataset, args.text_dataset, args.data_dir, args.threads,
        args.text_train_size, args.text_epochs, args.image_epochs, command=command)
    print(f"compare: {time.perf_counter() - start:.0f}s; report in {args.output}/report.md",
          file=sys.stderr)
    return 0
