"""Time the README's first command: wall seconds and SST-2 test accuracy per seed.

Runs ``textcnn train --dataset sst2`` (the default recipe; seed 0 is the command's own default,
the other seeds add ``--set train.seed=N``) as a fresh process per run, so start-up, data
loading, tokenization, training, the test evaluation and writing the model folder are all in
the seconds. Prints one line per run and a summary (mean / median), with the 1-minute load
average before and after each run; ``--output`` appends the runs as JSON lines.

    TEXTCNN_DATA_DIR=../shared/data python scripts/time_default.py --seeds 0 1 2
    python scripts/time_default.py --seeds 0 --set train.epochs=3   # a variant of the recipe

``--busy N`` keeps N busy-looping processes running beside the runs (a loaded machine), and
``--against KEY=VALUE`` runs each seed a second time with that override, right after the first,
so the two are timed under the same load; the summary gives both medians and their ratio:

    python scripts/time_default.py --seeds 0 1 2 --busy 5 --against train.threads=1

On a quiet machine each run waits (up to 3 minutes) for the load average that the run before
left to fall under ``--settle`` (default 0.4), so that every run starts on quiet cores, as the
first one does; ``--settle 0`` starts each run at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def load_average() -> float:
    return os.getloadavg()[0]


@contextlib.contextmanager
def busy(n: int):
    """``n`` processes that spin on a core each until the block ends (or this process dies)."""
    spin = ("import os\nparent = os.getppid()\n"
            "while os.getppid() == parent:\n    for _ in range(10 ** 6): pass")
    spinners = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(n)]
    try:
        yield
    finally:
        for proc in spinners:
            proc.kill()
            proc.wait()


def settle(below: float, longest: float = 180.0) -> None:
    """Wait until the 1-minute load average is under ``below`` (at most ``longest`` seconds)."""
    deadline = time.monotonic() + longest
    while below > 0 and load_average() >= below and time.monotonic() < deadline:
        time.sleep(5)


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
    threads = re.search(r"; (\d+ threads? \([^)]*\));", done.stderr)
    return {"seed": seed, "seconds": round(seconds, 2), "test": metrics[head]["test"]["accuracy"],
            "validation": metrics[head]["validation"]["accuracy"],
            "load_before": round(before, 2), "load_after": round(load_average(), 2),
            "threads": threads.group(1) if threads else "", "command": " ".join(cmd[1:])}


def summary(runs: list[dict]) -> str:
    tests = [100 * r["test"] for r in runs]
    seconds = [r["seconds"] for r in runs]
    return (f"test {statistics.fmean(tests):.2f} ± {statistics.pstdev(tests):.2f}; seconds median "
            f"{statistics.median(seconds):.1f} (max {max(seconds):.1f})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--dataset", default="sst2")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--output", help="append the runs to this JSON-lines file")
    ap.add_argument("--busy", type=int, default=0, metavar="N",
                    help="keep N busy-looping processes running beside the runs")
    ap.add_argument("--against", action="append", default=[], metavar="KEY=VALUE",
                    help="also run each seed with this override (repeatable), right after")
    ap.add_argument("--settle", type=float, default=0.4, metavar="LOAD",
                    help="before each run, wait for the load average to fall under LOAD "
                         "(0: do not wait; not with --busy)")
    args = ap.parse_args(argv)
    variants = {"recipe": args.overrides}
    if args.against:
        variants[" ".join(args.against)] = args.overrides + args.against
    runs: dict[str, list[dict]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp, busy(args.busy):
        for seed in args.seeds:
            for i, (name, overrides) in enumerate(variants.items()):
                if not args.busy:
                    settle(args.settle)
                run = one_run(seed, args.dataset, overrides, Path(tmp) / f"{i}-seed{seed}")
                runs[name].append(run)
                print(f"{name}, seed {seed}: test {100 * run['test']:.2f}  "
                      f"{run['seconds']:.1f} s  {run['threads']}  "
                      f"(load {run['load_before']} -> {run['load_after']})", flush=True)
    for name, done in runs.items():
        print(f"{name}: {summary(done)}")
    if args.against:
        first, second = (statistics.median(r["seconds"] for r in done) for done in runs.values())
        print(f"median seconds ratio, recipe / {' '.join(args.against)}: {first / second:.2f}")
    if args.output:
        with open(args.output, "a") as fh:
            for done in runs.values():
                for run in done:
                    fh.write(json.dumps(run) + "\n")


if __name__ == "__main__":
    main()
