"""Reproduce Kim (2014) CNN-rand with textcnn's configs: test accuracy over seeds, or 10-fold CV.

Sets with a test split are trained once per seed (mean and std over seeds); sets with only an
``all`` split are cross-validated on their 10 folds (mean and std over folds). Writes a markdown
table to stdout and, with --output, the raw numbers as JSON.

    python scripts/reproduce_kim.py --configs configs/sst2.yaml configs/trec.yaml --seeds 0 1 2
    python scripts/reproduce_kim.py --configs configs/mr.yaml configs/subj.yaml
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from textcnn.config import load_config
from textcnn.experiment import cross_validate, fit, load_tasks


def run_config(path: str, seeds: list[int], folds: int, threads: int, overrides: list[str]) -> dict:
    config = load_config(path, [f"train.threads={threads}", *overrides])
    raws = load_tasks(config)
    head = next(iter(config.tasks))
    start = time.perf_counter()
    quiet = lambda line: None  # noqa: E731
    if raws[head].is_cv:
        result = cross_validate(config, folds=folds, log=quiet, raws=raws)[head]
        accs = [f["accuracy"] for f in result["folds"]]
        f1s = [f["macro_f1"] for f in result["folds"]]
        run_seconds = result["seconds"]
        protocol = f"{folds}-fold CV"
    else:
        accs, f1s, run_seconds = [], [], []
        for seed in seeds:
            config.train.seed = seed
            run_start = time.perf_counter()
            _, metrics = fit(config, raws, log=quiet, write_folder=False)
            run_seconds.append(round(time.perf_counter() - run_start, 1))
            accs.append(metrics[head]["test"]["accuracy"])
            f1s.append(metrics[head]["test"]["macro_f1"])
        protocol = f"test, {len(seeds)} seeds"
    return {
        "config": path, "overrides": overrides, "protocol": protocol, "accuracy": accs,
        "macro_f1": f1s,
        "accuracy_mean": statistics.mean(accs),
        "accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
        "macro_f1_mean": statistics.mean(f1s),
        "seconds": round(time.perf_counter() - start, 1), "run_seconds": run_seconds,
        "threads": threads,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--output", help="append results to this JSON-lines file")
    args = ap.parse_args()
    print("| config | protocol | accuracy (mean ± std) | macro-F1 | seconds |")
    print("|---|---|---|---|---|")
    for path in args.configs:
        r = run_config(path, args.seeds, args.folds, args.threads, args.overrides)
        print(f"| {Path(path).name} | {r['protocol']} | {100 * r['accuracy_mean']:.1f} ± "
              f"{100 * r['accuracy_std']:.1f} | {100 * r['macro_f1_mean']:.1f} | {r['seconds']} |",
              flush=True)
        if args.output:
            with open(args.output, "a") as fh:
                fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
