"""Unlabeled transfer text for distillation (``distill.unlabeled``): the sentences of another
dataset's training split, one per line, tokenized as SST is (lower case, punctuation and
clitics split off: "is n't", "film 's").

A text whose first block (up to a blank line) holds a mail or news header line ("From: ...")
loses that block, and every text its quoted lines ("> ...", "In article ... writes:"); its
sentences are cut at . ! or ?, and those with addresses, markup or long digit runs, under 6 or
over 40 words, or under 75% alphabetic words are dropped. The rest are deduplicated, shuffled
with ``--seed`` and the first ``--count`` written.

    python scripts/unlabeled_sentences.py 20newsgroups --count 40000 --out runs/ng40k.txt
"""

from __future__ import annotations

import argparse
import random
import re
from pathlib import Path

from textcnn.config import TaskConfig
from textcnn.data import load_raw

QUOTED = re.compile(r"\s*(>|\||In article|.*writes:)")
HEADER = re.compile(r"^(From|Subject|Organization|Lines|Path|Newsgroups): ", re.M)
NOISE = re.compile(r"[@<>_=\\/#*~^{}\[\]]|\d{3,}")


def sst_tokens(sentence: str) -> list[str]:
    """``sentence`` in SST's tokenization.

    >>> " ".join(sst_tokens("It isn't the director's best, is it?"))
    "it is n't the director 's best , is it ?"
    """
    s = re.sub(r"n't\b", " n't", sentence.lower())
    s = re.sub(r"'(s|re|ve|ll|d|m)\b", r" '\1", s)
    return re.sub(r"([.,!?;:()\"])", r" \1 ", s).split()


def sentences(text: str) -> list[str]:
    """The kept sentences of one text, tokenized (see the module docstring)."""
    head, _, rest = text.partition("\n\n")
    body = rest if rest and HEADER.search(head) else text
    body = " ".join(" ".join(line for line in body.split("\n") if not QUOTED.match(line)).split())
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", body):
        if NOISE.search(sentence):
            continue
        words = sst_tokens(sentence)
        if 6 <= len(words) <= 40 and sum(w.isalpha() for w in words) / len(words) > 0.75:
            kept.append(" ".join(words))
    return kept


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dataset", help="dataset name under $TEXTCNN_DATA_DIR, or a folder")
    p.add_argument("--out", required=True, help="file to write, one sentence per line")
    p.add_argument("--count", type=int, default=40000, help="sentences to keep")
    p.add_argument("--seed", type=int, default=0, help="the shuffle's seed")
    p.add_argument("--data-dir", help="local data directory (default: $TEXTCNN_DATA_DIR)")
    args = p.parse_args(argv)
    raw = load_raw(TaskConfig(dataset=args.dataset), args.data_dir)
    found = sorted({s for text in raw.splits["train"].texts for s in sentences(text)})
    random.Random(args.seed).shuffle(found)
    Path(args.out).write_text("\n".join(found[:args.count]) + "\n", encoding="utf-8")
    print(f"{len(found)} sentences found, {min(args.count, len(found))} written to {args.out}")


if __name__ == "__main__":
    main()
