"""Wide and deep ablation: each config trained as CNN only, linear (wide branch) only and both.

The three rows of one config differ only in ``--set`` overrides on top of the config's own
(and of ``--set`` given here): CNN only is ``model.ngram_buckets=0`` (the convolutions read what
the config gives them, ``model.conv_tokens``), linear only is ``model.deep=false`` (the wide
branch alone, trained by the same loop), both is the config as it is. A config without the
branch gets it from ``--wide`` (``KEY=VALUE`` overrides, e.g. ``model.ngram_buckets=262144``).
Each row is ``textcnn.contrib.studies.reproduce.run_config`` (test split, the given seeds); the
table gives test accuracy, each run's train-and-test seconds and the 1-minute load average after it.

    python scripts/wide_ablation.py --configs configs/best/20newsgroups.yaml --threads 2
    python scripts/wide_ablation.py --configs configs/best/sst2.yaml --threads 2 \\
        --wide model.ngram_buckets=262144 --wide model.ngram_scale=10
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from textcnn.contrib.studies.reproduce import run_config

VARIANTS = {"CNN only": ["model.ngram_buckets=0"], "linear only": ["model.deep=false"],
            "both": []}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--wide", action="append", default=[],
                    help="KEY=VALUE turning the wide branch on for a config without it")
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    ap.add_argument("--output", help="append results to this JSON-lines file")
    args = ap.parse_args(argv)
    print("| config | variant | test accuracy (mean ± std) | seconds per run | load average |")
    print("|---|---|---|---|---|")
    for path in args.configs:
        for variant in args.variants:
            sets = [*args.wide, *args.overrides, *VARIANTS[variant]]
            r = run_config(path, args.seeds, 10, args.threads, sets)
            load = os.getloadavg()[0]
            print(f"| {Path(path).name} | {variant} | {100 * r['accuracy_mean']:.2f} ± "
                  f"{100 * r['accuracy_std']:.2f} | {', '.join(map(str, r['run_seconds']))} | "
                  f"{load:.1f} |", flush=True)
            if args.output:
                with open(args.output, "a") as fh:
                    fh.write(json.dumps({**r, "variant": variant, "load_average": load}) + "\n")


if __name__ == "__main__":
    main()
