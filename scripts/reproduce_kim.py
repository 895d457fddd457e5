"""Reproduce Kim (2014) CNN-rand with textcnn's configs: test accuracy over seeds, or 10-fold CV.

The command line of :func:`textcnn.contrib.studies.reproduce.run_config`: sets with a test split are
trained once per seed (mean and std over seeds); sets with only an ``all`` split are
cross-validated on their 10 folds (mean and std over folds). Writes a markdown table to stdout
and, with --output, the raw numbers as JSON.

    python scripts/reproduce_kim.py --configs configs/kim2014/sst2.yaml configs/kim2014/trec.yaml \
        --seeds 0 1 2
    python scripts/reproduce_kim.py --configs configs/kim2014/mr.yaml configs/kim2014/subj.yaml
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from textcnn.contrib.studies.reproduce import run_config


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--output", help="append results to this JSON-lines file")
    args = ap.parse_args(argv)
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
