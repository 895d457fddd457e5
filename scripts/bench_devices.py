"""Training speed by device, precision, torch.compile and process count: one table.

Each variant is one ``textcnn train`` run of a config (SST-2 by default) as a subprocess
(``--nproc N`` for data-parallel variants); the time is the history's ``train_seconds`` of the
last epoch (the training pass only, no validation; with ``--epochs 2`` the first epoch absorbs
torch.compile's compilation and the second is the steady state). Sentences/s and tokens/s count
the training split once per epoch (tokens after the config's truncation).

    python scripts/bench_devices.py --device cpu --threads 1 --variants fp32 bf16 compile nproc2
    python scripts/bench_devices.py --device cuda --variants fp32 bf16 fp16 nproc2

A variant is a precision (``fp32``, ``bf16``, ``fp16``), ``compile`` (fp32 + train.compile) or
``nprocN`` (fp32 in N processes: N GPUs with ``--device cuda``, N CPU processes with ``cpu``).

On a shared, oversubscribed CPU machine wall time measures the other jobs; ``--cpu-time N``
instead trains the single-process variants in this process on N training sentences and reports
the CPU seconds (``time.process_time``) of each epoch's training pass, which other jobs barely
move at 1 thread:

    python scripts/bench_devices.py --cpu-time 1500 --epochs 2 --variants fp32 bf16 compile
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def run_variant(args: argparse.Namespace, variant: str, out: Path) -> dict:
    """Train once for ``variant``; its row of the table."""
    sets = {"train.epochs": args.epochs, "train.threads": args.threads,
            "train.device": args.device, "train.patience": 100, "train.precision": "fp32"}
    nproc = 1
    if variant in ("fp32", "bf16", "fp16"):
        sets["train.precision"] = variant
    elif variant == "compile":
        sets["train.compile"] = "true"
    elif variant.startswith("nproc"):
        nproc = int(variant[5:])
    else:
        raise SystemExit(f"unknown variant {variant!r}")
    cmd = [sys.executable, "-m", "textcnn", "train", args.config, "--output", str(out)]
    for key, value in sets.items():
        cmd += ["--set", f"{key}={value}"]
    if nproc > 1:
        cmd += ["--nproc", str(nproc)]
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads or os.cpu_count())}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        return {"variant": variant, "error": done.stderr.strip().splitlines()[-1:]}
    history = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    last = history[-1]
    sentences, tokens = training_size(out, args)
    return {"variant": variant, "device": args.device, "processes": nproc,
            "epoch_seconds": [row["train_seconds"] for row in history],
            "sentences_per_s": round(sentences / last["train_seconds"], 1),
            "tokens_per_s": round(tokens / last["train_seconds"]),
            "validation_accuracy": last["validation_accuracy"]}


def training_size(folder: Path, args: argparse.Namespace) -> tuple[int, int]:
    """(sentences, tokens) of the config's training split, tokenized by the run's tokenizer."""
    import textcnn
    from textcnn.data import make_splits
    from textcnn.modality import load_datasets

    config = textcnn.load_config(args.config)
    clf = textcnn.load(folder, backend="torch")
    sentences = tokens = 0
    for raw in load_datasets(config).values():
        texts = make_splits(raw, config.train.seed)["train"].texts
        _, lengths = clf.encode(texts)
        sentences, tokens = sentences + len(texts), tokens + int(lengths.sum())
    return sentences, tokens


def cpu_time_rows(args: argparse.Namespace) -> list[dict]:
    """Each variant's training-pass CPU seconds per epoch on ``args.cpu_time`` sentences."""
    import time

    import numpy as np
    import torch

    import textcnn
    from textcnn.modality import load_datasets, modality_for
    from textcnn.models import build_model
    from textcnn.threads import set_threads
    from textcnn.training import Trainer

    set_threads(args.threads or 1)
    base = textcnn.load_config(args.config)
    datasets = load_datasets(base)
    data = modality_for(base).prepare(base, datasets)
    for splits in data.splits.values():  # a random sample of the training split
        train = splits["train"]
        pick = np.sort(np.random.default_rng(0).permutation(len(train))[:args.cpu_time])
        splits["train"] = type(train)(train.ids[pick], train.lengths[pick], train.labels[pick])
    sentences = sum(len(s["train"]) for s in data.splits.values())
    tokens = sum(int(s["train"].lengths.sum()) for s in data.splits.values())
    rows = []
    for variant in args.variants:
        config = textcnn.load_config(args.config, [
            "train.device=cpu", f"train.threads={args.threads or 1}",
            f"train.precision={variant if variant in ('bf16', 'fp16') else 'fp32'}",
            f"train.compile={'true' if variant == 'compile' else 'false'}"])
        torch.manual_seed(0)
        model = build_model(config.model, data.input_size,
                            {h: len(n) for h, n in data.heads.items()})
        trainer = Trainer(config, model, data.splits, log=lambda line: None)
        seconds = []
        for _ in range(args.epochs):
            start = time.process_time()
            trainer.train_epoch()
            seconds.append(round(time.process_time() - start, 2))
        rows.append({"variant": variant, "device": "cpu", "processes": 1,
                     "epoch_seconds": seconds,
                     "sentences_per_s": round(sentences / seconds[-1], 1),
                     "tokens_per_s": round(tokens / seconds[-1]),
                     "validation_accuracy": trainer.validate()[next(iter(data.heads))]["accuracy"]})
        print_row(rows[-1])
    return rows


def print_row(row: dict) -> None:
    """One line of the table."""
    if "error" in row:
        print(f"| {row['variant']} | failed: {row['error']} |||||", flush=True)
        return
    seconds = " / ".join(f"{s:.1f}" for s in row["epoch_seconds"])
    print(f"| {row['variant']} | {row['device']} | {row['processes']} | {seconds} | "
          f"{row['sentences_per_s']} | {row['tokens_per_s']} | "
          f"{row['validation_accuracy']:.4f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/kim2014/sst2.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="per process (0: all cores)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16", "compile", "nproc2"])
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--cpu-time", type=int, default=0, metavar="N",
                        help="in-process, on N training sentences, CPU seconds (CPU only)")
    args = parser.parse_args()
    unit = "CPU s" if args.cpu_time else "train s"
    print(f"| variant | device | processes | {unit} per epoch | sentences/s | tokens/s | "
          "val acc |\n|---|---|---|---|---|---|---|", flush=True)
    if args.cpu_time:
        rows = cpu_time_rows(args)
    else:
        rows = []
        with tempfile.TemporaryDirectory() as tmp:
            for variant in args.variants:
                rows.append(run_variant(args, variant, Path(tmp) / variant))
                print_row(rows[-1])
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
