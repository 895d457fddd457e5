"""Multi-label benchmark: 20 Newsgroups as hierarchy tags, textcnn against one-vs-rest TF-IDF + SVM.

Every message gets its group and each prefix of the group's name as tags (``comp.sys.mac.hardware``
-> ``comp``, ``comp.sys``, ``comp.sys.mac``, ``comp.sys.mac.hardware``; 38 tags). The tagged set
is built from ``$TEXTCNN_DATA_DIR/20newsgroups`` into ``--work`` (never committed). textcnn
trains ``configs/studies/20newsgroups-tags.yaml`` (thresholds tuned on validation); the peer (one
linear SVM per tag over TF-IDF uni+bigrams of the whole message) trains on the same training rows
and is scored on the same test rows, once at its SVMs' own cut (decision > 0) and once with
per-tag thresholds tuned on the same validation rows. Both report micro-F1, macro-F1 and subset
accuracy.

    TEXTCNN_DATA_DIR=../shared/data python scripts/multilabel_bench.py --work runs/20ng-tags \\
        --output multilabel_bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from textcnn.config import TaskConfig, load_config
from textcnn.contrib.studies.peers import tfidf_svc_multilabel
from textcnn.data import load_raw, make_splits
from textcnn.metrics import multilabel_scores
from textcnn.multilabel import tune_thresholds
from textcnn.runs import train_and_evaluate


def hierarchy_tags(group: str) -> list[str]:
    """``a.b.c`` -> ``["a", "a.b", "a.b.c"]``."""
    parts = group.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def build_tagged_set(source: Path, out: Path) -> Path:
    """Write ``out/{train,test}.jsonl`` with a ``tags`` list per message, and dataset.json."""
    meta = json.loads((source / "dataset.json").read_text(encoding="utf-8"))
    names = meta["label_names"]
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        with open(source / f"{split}.jsonl", encoding="utf-8") as fh, \
                open(out / f"{split}.jsonl", "w", encoding="utf-8") as dst:
            for line in fh:
                if line.strip():
                    row = json.loads(line)
                    label = row["label"]
                    group = names[label] if isinstance(label, int) else label
                    dst.write(json.dumps({"text": row["text"],
                                          "tags": hierarchy_tags(group)}) + "\n")
    (out / "dataset.json").write_text(json.dumps({"name": "20newsgroups-tags",
                                                  "label_column": "tags"}), encoding="utf-8")
    return out


def run_textcnn(config_path: str, data: Path, work: Path, overrides: list[str]) -> dict:
    config = load_config(config_path, [f"tasks.tags.dataset={data}", *overrides])
    raw = {"tags": load_raw(config.tasks["tags"])}
    start = time.perf_counter()
    _, metrics = train_and_evaluate(config, raw, output=work / "model")
    return {"system": "textcnn", "seconds": round(time.perf_counter() - start, 1),
            "config": config_path, "overrides": overrides, **metrics["tags"]["test"]}


def run_peer(data: Path, seed: int, threads: int) -> list[dict]:
    task = TaskConfig(str(data), label_column="tags", multi_label=True)
    parts = make_splits(load_raw(task), seed)  # textcnn's cut: the same train/validation/test
    train, validation, test = parts["train"], parts["validation"], parts["test"]
    (val_scores, test_scores), seconds = tfidf_svc_multilabel(
        train.texts, train.labels, [validation.texts, test.texts], threads)
    tuned = tune_thresholds(validation.labels, val_scores)
    return [{"system": "tfidf_svc (decision > 0)", "seconds": round(seconds, 1),
             **multilabel_scores(test.labels, test_scores > 0)},
            {"system": "tfidf_svc (thresholds tuned on validation)", "seconds": round(seconds, 1),
             **multilabel_scores(test.labels, test_scores >= tuned)}]


def table(rows: list[dict]) -> str:
    lines = ["| system | micro-F1 | macro-F1 | subset accuracy | train s |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {100 * r['micro_f1']:.2f} | {100 * r['macro_f1']:.2f} | "
              f"{100 * r['subset_accuracy']:.2f} | {r['seconds']:,.0f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("TEXTCNN_DATA_DIR"))
    ap.add_argument("--work", default="runs/20ng-tags", help="tagged set and model folder")
    ap.add_argument("--config", default="configs/studies/20newsgroups-tags.yaml")
    ap.add_argument("--set", dest="overrides", action="append", default=[],
                    help="config override for the textcnn run, e.g. train.epochs=3")
    ap.add_argument("--threads", type=int, default=1, help="the peer's threads")
    ap.add_argument("--skip-textcnn", action="store_true")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--output", default="multilabel_bench.json")
    args = ap.parse_args(argv)
    if not args.data_dir:
        ap.error("set TEXTCNN_DATA_DIR or pass --data-dir")
    work = Path(args.work)
    data = build_tagged_set(Path(args.data_dir) / "20newsgroups", work / "data")
    seed = load_config(args.config, args.overrides).train.seed
    rows = [] if args.skip_peer else run_peer(data, seed, args.threads)
    print(table(rows), file=sys.stderr, flush=True)
    if not args.skip_textcnn:
        rows.insert(0, run_textcnn(args.config, data, work, args.overrides))
    print(table(rows))
    load = os.getloadavg()
    Path(args.output).write_text(json.dumps({"rows": rows, "loadavg_after": load}, indent=2)
                                 + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
