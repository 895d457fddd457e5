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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="configs/sst2.yaml")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="per process (0: all cores)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16", "compile", "nproc2"])
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    rows = []
    print("| variant | device | processes | train s per epoch | sentences/s | tokens/s | "
          "val acc |\n|---|---|---|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            row = run_variant(args, variant, Path(tmp) / variant)
            rows.append(row)
            if "error" in row:
                print(f"| {variant} | {args.device} | failed: {row['error']} |||||", flush=True)
                continue
            seconds = " / ".join(f"{s:.1f}" for s in row["epoch_seconds"])
            print(f"| {variant} | {row['device']} | {row['processes']} | {seconds} | "
                  f"{row['sentences_per_s']} | {row['tokens_per_s']} | "
                  f"{row['validation_accuracy']:.4f} |", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
