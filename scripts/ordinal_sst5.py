"""SST-5 with the ordinal head against the softmax head: test accuracy and mean absolute error.

Trains the default recipe on SST-5 at full size once per seed and head, one run at a time, each
as a fresh ``textcnn train`` process:

    textcnn train --dataset sst5 --set train.threads=1 --set train.seed=S \
        [--set tasks.label.head=ordinal]

then loads each model folder, predicts the test split and scores both heads the same way from
their answers: accuracy is the share of rows whose first answered label is the true one, MAE the
mean distance in label steps (very negative = 0 .. very positive = 4) between the two (for the
softmax head the most probable label, for the ordinal head its median). The numbers are checked
against each run's own ``metrics.json``. Prints one line per run (with the 1-minute load
average before it and the run's wall seconds) and a Markdown table (``--table FILE`` prints it
again from the runs an ``--output`` file saved).

    TEXTCNN_DATA_DIR=../shared/data python scripts/ordinal_sst5.py --seeds 0 1 2 --output o.jsonl
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

import numpy as np

HEADS = ("softmax", "ordinal")
TASK = "label"  # the task the default recipe names after SST-5's label column


def run(head: str, seed: int, output: Path) -> dict:
    """One training run and its test scores from the saved folder's predictions."""
    import textcnn
    from textcnn.config import TaskConfig
    from textcnn.data import load_raw

    command = [sys.executable, "-m", "textcnn", "train", "--dataset", "sst5", "--output",
               str(output), "--set", "train.threads=1", "--set", f"train.seed={seed}"]
    if head != "softmax":
        command += ["--set", f"tasks.{TASK}.head={head}"]
    load, started = os.getloadavg()[0], time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    clf = textcnn.load(output, backend="torch")
    raw = load_raw(TaskConfig(dataset="sst5"))
    test = raw.splits["test"]
    names = clf.heads[TASK]
    by_name = [names.index(n) for n in raw.label_names]
    truth = np.array([by_name[i] for i in test.labels])
    answers = clf.predict(test.texts, head=TASK)
    answered = np.array([names.index(a[TASK][0]["label"]) for a in answers])
    step = np.argsort(by_name)  # label id -> rating step
    accuracy = float((answered == truth).mean())
    mae = float(np.abs(step[answered] - step[truth]).mean())
    metrics = json.loads((output / "metrics.json").read_text())
    saved = metrics[TASK]["test"]  # scored in the training process: the same answers
    assert abs(saved["accuracy"] - accuracy) < 1e-3, (saved, accuracy)
    assert "mae" not in saved or abs(saved["mae"] - mae) < 1e-3, (saved, mae)
    return {"head": head, "seed": seed, "accuracy": round(accuracy, 4), "mae": round(mae, 4),
            "seconds": round(seconds, 1), "load_before": round(load, 2),
            "epochs": metrics["epochs"], "best_epoch": metrics["best_epoch"]}


def table(rows: list[dict]) -> str:
    """The Markdown table of the runs: per seed, mean and (population) std per head."""
    out = ["| head | test accuracy, seeds | mean ± std | test MAE, seeds | mean ± std "
           "| epochs run (best) | seconds per run (median) |", "|---|---|---|---|---|---|---|"]
    for head in HEADS:
        mine = [r for r in rows if r["head"] == head]
        if not mine:
            continue
        acc = [100 * r["accuracy"] for r in mine]
        mae = [r["mae"] for r in mine]
        out.append(f"| {head} | {' / '.join(f'{a:.2f}' for a in acc)} | "
                   f"{statistics.mean(acc):.2f} ± {statistics.pstdev(acc):.2f} | "
                   f"{' / '.join(f'{m:.3f}' for m in mae)} | "
                   f"{statistics.mean(mae):.3f} ± {statistics.pstdev(mae):.3f} | "
                   + " / ".join(f"{r['epochs']} ({r['best_epoch']})" for r in mine)
                   + f" | {statistics.median(r['seconds'] for r in mine):.0f} |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--output", type=Path, help="append each run as a JSON line here")
    parser.add_argument("--table", type=Path, help="only print the table of these saved runs "
                        "(an --output file)")
    args = parser.parse_args(argv)
    if args.table:
        rows = [json.loads(line) for line in args.table.read_text().splitlines() if line]
        print(table(rows))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for head in HEADS:
                row = run(head, seed, Path(tmp) / f"{head}-{seed}")
                rows.append(row)
                print(json.dumps(row), flush=True)
                if args.output:
                    with args.output.open("a", encoding="utf-8") as f:
                        f.write(json.dumps(row) + "\n")
    print("\n" + table(rows))


if __name__ == "__main__":
    main()
