"""Linear peer baselines (TF-IDF + LR / linear SVM, fastText) on the benchmark datasets.

The command line of :mod:`textcnn.contrib.studies.peers`. The datasets live in the folder named
by the ``TEXTCNN_DATA_DIR`` environment variable (or ``--data-dir``), each a folder with
``dataset.json`` and its split files. fastText needs the ``bench`` extra
(``pip install 'textcnn[bench]'``) and is skipped when it cannot be imported.

Usage::

    python scripts/peers.py --datasets sst2 mr --peers tfidf_lr fasttext --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from textcnn.contrib.studies.peers import (
    DATASETS,
    PEERS,
    fasttext_available,
    format_mean_std,
    markdown_table,
    run_peer,
)


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.environ.get("TEXTCNN_DATA_DIR"),
                        help="dataset folder (default: $TEXTCNN_DATA_DIR)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=PEERS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", default="peers_results.json", help="JSON output path")
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.error("set TEXTCNN_DATA_DIR or pass --data-dir")
    peers = list(args.peers)
    if "fasttext" in peers and not fasttext_available():
        print("fastText could not be imported (pip install 'textcnn[bench]'): skipping it")
        peers.remove("fasttext")

    results = []
    for name in args.datasets:
        for peer in peers:
            result = run_peer(peer, args.data_dir, name, threads=args.threads)
            print(f"{name:>14} {peer:>10}: acc {format_mean_std(result['accuracy'])}", flush=True)
            results.append(result)
    print()
    print(markdown_table(results))
    Path(args.output).write_text(json.dumps({"threads": args.threads, "results": results},
                                            indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.output}")


if __name__ == "__main__":
    main()
