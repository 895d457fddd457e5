"""Deletion test of the explanations: do the top-attributed windows matter more than random ones?

For each test sentence the model's predicted label and its probability ``p`` are taken; then the
sentence's top-2 windows of :meth:`TextClassifier.explain` are deleted from the text (their
characters, by the explanation's character offsets) and ``p`` measured again. The baseline
deletes two random windows of the same widths (uniform start positions inside the sentence),
``--draws`` times per sentence. The explanations pass when the mean drop of ``p`` for the
top-2 windows is at least twice the mean drop for the random ones.

    python scripts/explain_deletion.py runs/sst2 --threads 1 --output deletion.json
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time

import numpy as np

import textcnn
from textcnn.config import TaskConfig
from textcnn.data import load_raw, select_split
from textcnn.threads import set_threads


def delete(text: str, tokens: list[dict], spans: list[tuple[int, int]]) -> str:
    """``text`` without the characters of the tokens in ``spans`` (token ``start .. end - 1``);
    each deleted token becomes one space."""
    gone = sorted({i for start, end in spans for i in range(start, end)}, reverse=True)
    for i in gone:
        text = text[:tokens[i]["start"]] + " " + text[tokens[i]["end"]:]
    return text


def random_spans(rng: random.Random, n_tokens: int, widths: list[int]) -> list[tuple[int, int]]:
    """One random window of each width inside a text of ``n_tokens`` tokens."""
    spans = []
    for w in widths:
        start = rng.randrange(max(n_tokens - w + 1, 1))
        spans.append((start, min(start + w, n_tokens)))
    return spans


def measure(clf, texts: list[str], head: str, draws: int, seed: int) -> dict:
    """Per-sentence probability drops for the top-2 and the random deletions."""
    rng = random.Random(seed)
    rows = clf.explain(texts, head=head, top_k=2)
    top_texts, random_texts, labels = [], [], []
    for row in rows:
        answer = row["heads"][head]
        spans = [(w["start"], w["end"]) for w in answer["windows"]]
        labels.append(clf.heads[head].index(answer["label"]))
        top_texts.append(delete(row["text"], row["tokens"], spans))
        widths = [end - start for start, end in spans]
        random_texts.extend(delete(row["text"], row["tokens"],
                                   random_spans(rng, len(row["tokens"]), widths))
                            for _ in range(draws))
    labels = np.array(labels)
    rows_idx = np.arange(len(texts))
    before = clf.predict_proba(texts, head)[head][rows_idx, labels]
    top = clf.predict_proba(top_texts, head)[head][rows_idx, labels]
    rand = clf.predict_proba(random_texts, head)[head][np.arange(len(random_texts)),
                                                        np.repeat(labels, draws)]
    rand = rand.reshape(len(texts), draws).mean(axis=1)
    return {"before": before, "top": top, "random": rand}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir",
                    help="a folder written by `textcnn train configs/kim2014/sst2.yaml`")
    ap.add_argument("--dataset", default="sst2")
    ap.add_argument("--split", default="test")
    ap.add_argument("--data-dir", help="default: $TEXTCNN_DATA_DIR")
    ap.add_argument("--draws", type=int, default=10, help="random deletions per sentence")
    ap.add_argument("--limit", type=int, default=0, help="first N sentences only (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--backend", default="auto")
    ap.add_argument("--output", help="also write the summary here (JSON)")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    clf = textcnn.load(args.model_dir, backend=args.backend)
    head = next(iter(clf.heads))
    raw = load_raw(TaskConfig(dataset=args.dataset), args.data_dir)
    texts = select_split(raw, args.split).texts[:args.limit or None]
    start = time.perf_counter()
    m = measure(clf, texts, head, args.draws, args.seed)
    drop_top, drop_random = m["before"] - m["top"], m["before"] - m["random"]
    summary = {
        "model_dir": str(args.model_dir), "backend": clf.backend, "split": args.split,
        "sentences": len(texts), "draws": args.draws, "seed": args.seed,
        "mean_p_before": round(float(m["before"].mean()), 4),
        "mean_drop_top2": round(float(drop_top.mean()), 4),
        "mean_drop_random2": round(float(drop_random.mean()), 4),
        "ratio": round(float(drop_top.mean() / drop_random.mean()), 2),
        "share_top2_beats_random": round(float((drop_top > drop_random).mean()), 3),
        "flipped_top2": round(float((m["top"] < 0.5).mean()), 3),
        "flipped_random2": round(float((m["random"] < 0.5).mean()), 3),
        "seconds": round(time.perf_counter() - start, 1),
    }
    summary["passes"] = summary["ratio"] >= 2.0
    print(json.dumps(summary, indent=1))
    if args.output:
        with open(args.output, "w", encoding="utf-8") as fh:
            json.dump(summary, fh, indent=1)
    return 0 if summary["passes"] else 1


if __name__ == "__main__":
    sys.exit(main())
