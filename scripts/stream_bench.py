"""Peak memory of streamed training and of ``predict --file`` as the corpus grows.

Generates synthetic corpora (short sentences, two classes, never committed) of each ``--rows``
size, then for each size runs, as child processes:

1. ``textcnn train`` on a streamed config (``tasks.<name>.stream: true``), one epoch of a tiny
   model (``--threads`` torch threads, ``--workers`` DataLoader workers);
2. ``textcnn predict MODEL --file LINES`` over as many lines, output to /dev/null.

While each runs, the process tree (the command and its DataLoader workers) is sampled every
0.1 s: the peak of its summed PSS (proportional set size: pages shared between the parent and a
forked worker counted once) and the peak RSS of its largest process. Memory is flat in the
corpus size when the largest corpus' peak is within 20% of the smallest's.

    nice -n 10 python scripts/stream_bench.py --rows 200000 1000000 --threads 1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORDS = [f"w{i}" for i in range(3000)]
CUES = (["awful", "dull", "boring", "worst"], ["great", "superb", "fine", "best"])


def write_corpus(folder: Path, rows: int, seed: int = 0) -> Path:
    """``train.jsonl`` (``rows`` rows), validation / test (2,000 each), ``dataset.json`` and
    ``lines.txt`` (the training texts, one per line, for predict)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)

    def sentence() -> tuple[str, int]:
        label = rng.randrange(2)
        words = rng.choices(WORDS, k=rng.randrange(4, 12))
        words.insert(rng.randrange(len(words) + 1), rng.choice(CUES[label]))
        return " ".join(words), label

    for split, n in (("train", rows), ("validation", 2000), ("test", 2000)):
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as out, \
                open(folder / f"{split}.txt", "w", encoding="utf-8") as lines:
            for _ in range(n):
                text, label = sentence()
                out.write(json.dumps({"text": text, "label": label}) + "\n")
                lines.write(text + "\n")
    (folder / "dataset.json").write_text(json.dumps({"label_names": ["negative", "positive"]}))
    return folder / "train.txt"


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as fh:
            kids = [int(p) for p in fh.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


def _memory(pid: int) -> tuple[int, int]:
    """``(PSS, RSS)`` of one process in KiB (0, 0 once it is gone)."""
    pss = rss = 0
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


def measure(command: list[str], env: dict, stdout=subprocess.DEVNULL) -> dict:
    """Run ``command``; its seconds, peak tree PSS and peak single-process RSS in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(command, env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)
    peak_pss = peak_rss = peak_main = 0
    while proc.poll() is None:
        sizes = [_memory(p) for p in [proc.pid, *_children(proc.pid)]]
        peak_pss = max(peak_pss, sum(s[0] for s in sizes))
        peak_rss = max([peak_rss, *(s[1] for s in sizes)])
        peak_main = max(peak_main, sizes[0][0])
        time.sleep(0.1)
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(command)} failed ({proc.returncode}):\n{err}")
    return {"seconds": round(time.perf_counter() - start, 1), "peak_pss_mib":
            round(peak_pss / 1024, 1), "peak_rss_mib": round(peak_rss / 1024, 1),
            "peak_main_pss_mib": round(peak_main / 1024, 1),
            "log": err.strip().splitlines()[-3:]}


def config_for(folder: Path, args: argparse.Namespace) -> dict:
    return {
        "tasks": {"sentiment": {"dataset": str(folder), "stream": True}},
        "tokenizer": {"kind": "word", "max_length": 32, "sample": 20000},
        "model": {"embedding_dim": 16, "kernel_sizes": [3], "channels": 8},
        "train": {"epochs": 1, "batch_size": 256, "threads": args.threads,
                  "loader_workers": args.workers, "shuffle_buffer": 10000},
    }


def run_size(rows: int, root: Path, args: argparse.Namespace, env: dict) -> dict:
    folder = root / f"corpus-{rows}"
    t = time.perf_counter()
    lines = folder / "train.txt"
    if not (args.reuse and lines.is_file()):
        write_corpus(folder, rows)
    print(f"{rows} rows written in {time.perf_counter() - t:.0f}s", file=sys.stderr, flush=True)
    tag = f"{rows}-w{args.workers}"
    config = root / f"stream-{tag}.json"  # JSON is YAML
    config.write_text(json.dumps(config_for(folder, args)))
    textcnn = [sys.executable, "-c", "import sys; from textcnn.cli import main; sys.exit(main())"]
    model = root / f"model-{tag}"
    result = {"rows": rows, "workers": args.workers}
    if "train" in args.steps:
        result["train"] = measure([*textcnn, "train", str(config), "--output", str(model)], env)
        print(f"train {rows}: {result['train']}", file=sys.stderr, flush=True)
    if "predict" in args.steps:
        model = Path(args.model) if args.model else model
        result["predict"] = measure([*textcnn, "predict", str(model), "--file", str(lines)], env)
        print(f"predict {rows}: {result['predict']}", file=sys.stderr, flush=True)
    return result


def table(results: list[dict]) -> str:
    lines = ["| rows | step | seconds | peak PSS, tree (MiB) | peak RSS, largest process (MiB) |",
             "|---|---|---|---|---|"]
    steps = [step for step in ("train", "predict") if step in results[0]]
    for r in results:
        for step in steps:
            m = r[step]
            lines.append(f"| {r['rows']:,} | {step} | {m['seconds']} | {m['peak_pss_mib']} | "
                         f"{m['peak_rss_mib']} |")
    first, last = results[0], results[-1]
    for step in steps:
        ratio = last[step]["peak_pss_mib"] / first[step]["peak_pss_mib"]
        lines.append(f"\n{step}: peak PSS at {last['rows']:,} rows / at {first['rows']:,} rows = "
                     f"{ratio:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers (default: 1)")
    parser.add_argument("--workdir", help="where corpora and models go (default: a temp dir)")
    parser.add_argument("--output", help="also write the results as JSON here")
    parser.add_argument("--steps", nargs="+", default=["train", "predict"],
                        choices=["train", "predict"], help="what to measure (default: both)")
    parser.add_argument("--model", help="predict with this model folder (default: the one "
                        "trained on each corpus)")
    parser.add_argument("--reuse", action="store_true",
                        help="keep corpora already in --workdir instead of writing them again")
    args = parser.parse_args(argv)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="stream-bench-"))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
           "OMP_NUM_THREADS": str(args.threads)}
    results = [run_size(rows, root, args, env) for rows in sorted(args.rows)]
    print(table(results))
    if args.output:
        Path(args.output).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
