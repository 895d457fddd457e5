"""Make a noisy-text copy of a dataset: seeded character-level typos in every split.

Each non-space character of each text is, independently with probability ``--rate``, hit by one
typo drawn uniformly from three kinds: **swap** (with the next character, when that is not a
space), **drop** (deleted) and **duplicate** (typed twice). The draws come from
``random.Random(f"{seed}/{split}/{row}")``, so a copy is the same on every machine and a row's
typos do not depend on the rows before it. Train and test get the same rate (a model sees the
kind of noise it is tested on); labels and every other field are copied unchanged. The new
folder's ``dataset.json`` is the source's, renamed ``<name>-noisy``, with a ``noise`` entry
saying how it was made.

    TEXTCNN_DATA_DIR=/path/to/data python scripts/make_noisy.py trec --rate 0.1 --seed 0 \\
        --output /tmp/noisy
    textcnn train configs/charcnn/trec.yaml --set tasks.question.dataset=/tmp/noisy/trec-noisy
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

KINDS = ("swap", "drop", "duplicate")


def add_typos(text: str, rate: float, rng: random.Random) -> str:
    """``text`` with each non-space character hit by a typo with probability ``rate``.

    >>> add_typos("a good film", 0.0, random.Random(0))
    'a good film'
    >>> add_typos("abc", 1.0, random.Random(3)) != "abc"
    True
    """
    out, i = [], 0
    while i < len(text):
        char = text[i]
        if char.isspace() or rng.random() >= rate:
            out.append(char)
            i += 1
            continue
        kind = rng.choice(KINDS)
        if kind == "swap" and i + 1 < len(text) and not text[i + 1].isspace():
            out += [text[i + 1], char]
            i += 2
            continue
        if kind == "duplicate":
            out += [char, char]
        elif kind == "swap":  # nothing to swap with: the character stays
            out.append(char)
        i += 1
    return "".join(out)


def make_noisy(source: Path, output: Path, rate: float, seed: int) -> Path:
    """Write the noisy copy of the dataset folder ``source`` under ``output``; its path."""
    meta = json.loads((source / "dataset.json").read_text(encoding="utf-8"))
    name = f"{meta.get('name', source.name)}-noisy"
    target = output / name
    target.mkdir(parents=True, exist_ok=True)
    column = meta.get("text_column", "text")
    for split in meta.get("splits") or {}:
        lines = (source / f"{split}.jsonl").read_text(encoding="utf-8").splitlines()
        rows = []
        for i, line in enumerate(line for line in lines if line.strip()):
            row = json.loads(line)
            row[column] = add_typos(row[column], rate, random.Random(f"{seed}/{split}/{i}"))
            rows.append(json.dumps(row, ensure_ascii=False))
        (target / f"{split}.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    meta.update(name=name, noise={
        "source": meta.get("name", source.name), "rate": rate, "seed": seed, "kinds": KINDS,
        "how": "each non-space character, with probability rate, swapped with the next "
               "(non-space) one, dropped or duplicated (one of the three, uniformly); every "
               "split", "script": "scripts/make_noisy.py"})
    meta.pop("hub_id", None)  # not the Hub's data any more
    (target / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dataset", help="a known name under --data-dir, or a dataset folder")
    parser.add_argument("--data-dir", default=os.environ.get("TEXTCNN_DATA_DIR", ""))
    parser.add_argument("--rate", type=float, default=0.1, help="typos per character")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", required=True, help="folder the noisy copy is written in")
    args = parser.parse_args(argv)
    source = Path(args.dataset)
    if not (source / "dataset.json").is_file():
        source = Path(args.data_dir) / args.dataset
    if not (source / "dataset.json").is_file():
        print(f"error: no dataset.json in {args.dataset} or {source}", file=sys.stderr)
        return 2
    if not 0.0 <= args.rate <= 1.0:
        print(f"error: --rate must be from 0 to 1, got {args.rate}", file=sys.stderr)
        return 2
    print(make_noisy(source, Path(args.output), args.rate, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
