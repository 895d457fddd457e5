"""Multi-task vs single-task: one SST-2 + 20 Newsgroups model against two single-task models.

Every variant uses the settings of configs/studies/multitask.yaml (same tokenizer, model and
training budget); a single-task variant keeps just one of its tasks. For each seed it trains the
three models, writes their folders, and records test accuracy per head and folder size.

    python scripts/multitask_bench.py --seeds 0 1 2 --threads 2 --output multitask.jsonl

Runs already recorded in --output with the same resolved config (seed and thread count
included) are not trained again, so an interrupted benchmark picks up where it stopped, and
editing the config file never reuses a stale run; the table covers the recorded runs of this
setting. ``--set`` changes every variant (an ablation), ``--single-set`` only the single-task
ones. A single-task variant has no other task to keep filters from, so its
``model.private_channels`` become ordinary filters (``channels + private_channels`` per kernel
size, the width its head reads in the multi-task model).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from textcnn.config import load_config
from textcnn.modality import load_datasets
from textcnn.runs import train_and_evaluate


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.iterdir()
               if p.name in ("model.safetensors", "tokenizer.json", "config.json"))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/studies/multitask.yaml")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=["topic", "multi", "sentiment"],
                    help="multi, or the name of one task to train alone")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for every variant (e.g. model.channels=200)")
    ap.add_argument("--single-set", action="append", default=[], metavar="KEY=VALUE",
                    help="override for the single-task variants only (e.g. model.channels=100 "
                         "when the shared core of the multi-task config is wider)")
    ap.add_argument("--output", help="append one JSON line per run here")
    args = ap.parse_args(argv)
    config = load_config(args.config, [f"train.threads={args.threads}", *args.overrides])
    all_raws = load_datasets(config)
    recorded = []
    if args.output and Path(args.output).exists():
        recorded = [json.loads(line) for line in Path(args.output).read_text().splitlines()
                    if line]
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for variant in args.variants:
                overrides = [*args.overrides, *([] if variant == "multi" else args.single_set)]
                cfg = load_config(args.config, [f"train.threads={args.threads}",
                                                f"train.seed={seed}", *overrides])
                if variant != "multi":
                    cfg.tasks = {variant: cfg.tasks[variant]}
                    cfg.model.channels += cfg.model.private_channels
                    cfg.model.private_channels = 0
                resolved = cfg.to_dict()  # with the seed and thread count: both change a run
                same = [r for r in recorded
                        if r["variant"] == variant and r.get("config") == resolved]
                if same:
                    runs.append(same[0])
                    continue
                raws = {name: all_raws[name] for name in cfg.tasks}
                out = Path(tmp) / f"{variant}-{seed}"
                start = time.perf_counter()
                _, metrics = train_and_evaluate(cfg, raws, out,
                                 log=lambda line, tag=f"[{variant} seed {seed}]":
                                 print(tag, line, file=sys.stderr, flush=True))
                row = {"variant": variant, "seed": seed, "threads": args.threads,
                       "overrides": overrides,
                       "seconds": round(time.perf_counter() - start, 1),
                       "bytes": folder_bytes(out),
                       "test_accuracy": {h: m["test"]["accuracy"] for h, m in metrics.items()},
                       "config": resolved}
                runs.append(row)
                print(json.dumps(row), flush=True)
                if args.output:
                    with open(args.output, "a") as fh:
                        fh.write(json.dumps(row) + "\n")
    print("\n| variant | head | seeds | test accuracy (mean ± std) | model folder MB | "
          "train s (mean) |\n|---|---|---|---|---|---|")
    for variant in args.variants:
        rows = [r for r in runs if r["variant"] == variant]
        if not rows:
            continue
        for head in rows[0]["test_accuracy"]:
            accs = [r["test_accuracy"][head] for r in rows]
            std = statistics.pstdev(accs) if len(accs) > 1 else 0.0
            each = ", ".join(f"{100 * a:.2f}" for a in accs)
            print(f"| {variant} | {head} | {len(rows)} | {100 * statistics.mean(accs):.2f} ± "
                  f"{100 * std:.2f} ({each}) | {rows[0]['bytes'] / 1e6:.1f} | "
                  f"{statistics.mean(r['seconds'] for r in rows):.0f} |")


if __name__ == "__main__":
    main()
