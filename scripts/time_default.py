"""Time the README's first command: wall seconds and SST-2 test accuracy per seed.

Runs ``textcnn train --dataset sst2`` (the default recipe; seed 0 is the command's own default,
the other seeds add ``--set train.seed=N``) as a fresh process per run, so start-up, data
loading, tokenization, training, the test evaluation and writing the model folder are all in
the seconds. Prints one line per run and a summary (mean / median), with the 1-minute load
average before and after each run; ``--output`` appends the runs as JSON lines.

    TEXTCNN_DATA_DIR=../shared/data python scripts/time_default.py --seeds 0 1 2
    python scripts/time_default.py --seeds 0 --set train.epochs=3   # a variant of the recipe
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_average() -> float:
    return os.getloadavg()[0]


def one_run(seed: int, dataset: str, overrides: list[str], folder: Path) -> dict:
    cmd = [sys.executable, "-m", "textcnn", "train", "--dataset", dataset, "--output",
           str(folder)]
    if seed:
        cmd += ["--set", f"train.seed={seed}"]
    for item in overrides:
        cmd += ["--set", item]
    before = load_average()
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed:\n{done.stderr}")
    metrics = json.loads((folder / "metrics.json").read_text())
    head = next(iter(metrics))
    return {"seed": seed, "seconds": round(seconds, 2), "test": metrics[head]["test"]["accuracy"],
            "validation": metrics[head]["validation"]["accuracy"],
            "load_before": round(before, 2), "load_after": round(load_average(), 2),
            "command": " ".join(cmd[1:])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--dataset", default="sst2")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--output", help="append the runs to this JSON-lines file")
    args = ap.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            run = one_run(seed, args.dataset, args.overrides, Path(tmp) / f"seed{seed}")
            runs.append(run)
            print(f"seed {seed}: test {100 * run['test']:.2f}  {run['seconds']:.1f} s  "
                  f"(load {run['load_before']} -> {run['load_after']})", flush=True)
    tests = [100 * r["test"] for r in runs]
    seconds = [r["seconds"] for r in runs]
    print(f"test {statistics.fmean(tests):.2f} ± {statistics.pstdev(tests):.2f}; seconds median "
          f"{statistics.median(seconds):.1f} (max {max(seconds):.1f})")
    if args.output:
        with open(args.output, "a") as fh:
            for run in runs:
                fh.write(json.dumps(run) + "\n")


if __name__ == "__main__":
    main()
