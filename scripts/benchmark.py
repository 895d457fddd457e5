"""textcnn against the linear peers, side by side: one run, same splits, folds and threads.

For every dataset it runs textcnn's config (``configs/<group>/<dataset>.yaml``, by default the
``best`` group; ``--group default``: the default recipe of ``textcnn train --dataset``, with the
dataset as its task; :mod:`textcnn.contrib.studies.reproduce`) and the peers of
:mod:`textcnn.contrib.studies.peers` (TF-IDF + logistic regression, TF-IDF + LinearSVC, fastText
with word bigrams; fastText needs the ``bench`` extra and is skipped without it). Sets with a test
split: textcnn and fastText over --seeds, the deterministic sklearn peers once; cross-validated
sets (MR, Subj): the 10 folds. Every system gets --threads threads.

The table (accuracy and macro-F1 as mean ± std over seeds or folds, train seconds per run, time
to accuracy: textcnn's seconds to the end of its best epoch, a peer's train seconds, and
textcnn's margin over the best peer, which must exceed that peer's std, or 0.5 points where it
has none) goes to stdout, to --output as JSON, and with --write into BENCHMARKS.md between
``<!-- benchmark.py -->`` and ``<!-- /benchmark.py -->``.

A full run takes hours on 2 cores (spaCy's ensemble and the 10-fold sets most of it), so
--output is rewritten after every row, and ``--resume`` reuses the rows of an earlier --output
made with the same seeds and threads (a row is one system on one dataset; textcnn's row also
records its config file, so a config with edited settings, not only comments, runs again): an
interrupted run continues where it stopped and still ends in one table. Rows of the file that a
run does not ask for stay in it, so the cheap peers can run first and spaCy's ensemble later
into the same file. To use both cores with one thread each, run two parts side by side into two
files (``--no-textcnn`` for a peers-only part), then ``--report --merge`` the second into the
first: the table of every row, with nothing run again.

    python scripts/benchmark.py --threads 2 --write BENCHMARKS.md
    python scripts/benchmark.py --datasets sst2 trec --group kim2014 --peers tfidf_lr
    python scripts/benchmark.py --datasets sst2 --group default --seeds 0 1 2
    python scripts/benchmark.py --threads 2 --output bench.json --resume   # after a stop
    python scripts/benchmark.py --threads 1 --output a.json --peers tfidf_lr &
    python scripts/benchmark.py --threads 1 --output b.json --peers spacy_ensemble --no-textcnn
    python scripts/benchmark.py --output a.json --merge b.json --report --write BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from functools import partial
from pathlib import Path

import yaml

from textcnn.contrib.studies.peers import (
    DATASETS,
    PEERS,
    fasttext_available,
    format_mean_std,
    run_peer,
    spacy_available,
    table_row,
)
from textcnn.contrib.studies.reproduce import run_config
from textcnn.recipes import recipe_data

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- benchmark.py -->", "<!-- /benchmark.py -->"


def textcnn_system(config: Path) -> str:
    """textcnn's name in the table: ``textcnn <group>/<dataset>``."""
    return f"textcnn {config.parent.name}/{config.stem}"


def textcnn_row(dataset: str, config: Path, seeds: list[int], threads: int) -> dict:
    r = run_config(str(config), seeds, 10, threads, [])
    runs = len(r["accuracy"])
    f1_std = statistics.pstdev(r["macro_f1"]) if runs > 1 else 0.0
    return {"system": textcnn_system(config), "dataset": dataset,
            "protocol": "cv10" if "CV" in r["protocol"] else "test", "runs": runs,
            "accuracy": {"mean": r["accuracy_mean"], "std": r["accuracy_std"]},
            "macro_f1": {"mean": statistics.fmean(r["macro_f1"]), "std": f1_std},
            "train_seconds": {"mean": statistics.fmean(r["run_seconds"]),
                              "std": statistics.pstdev(r["run_seconds"])},
            "seconds_to_best": {"mean": statistics.fmean(r["seconds_to_best"]),
                                "std": statistics.pstdev(r["seconds_to_best"])},
            "sentences_per_second": {"mean": r["sentences_per_second"], "std": 0.0}}


def row_key(row: dict) -> tuple:
    """What makes a result reusable by ``--resume``: dataset, system, seeds, threads and, for
    textcnn, its config's settings (the parsed YAML: an edited comment does not rerun a row)."""
    text = row.get("config_text", "")
    settings = json.dumps(yaml.safe_load(text), sort_keys=True) if text else ""
    return (row["dataset"], row["system"], tuple(row["seeds"]), row["threads"], settings)


def load_done(path: Path, option: str = "--resume") -> dict[tuple, dict]:
    """The rows of an earlier --output, by :func:`row_key` (none if the file is missing)."""
    if not path.is_file():
        return {}
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))["results"]
        return {row_key(r): r for r in rows}
    except (ValueError, KeyError, TypeError) as err:
        raise SystemExit(f"{option}: {path} is not a benchmark.py output ({err})") from None


def load_merged(output: Path, merge: list[str]) -> dict[tuple, dict]:
    """--output's rows and those of the --merge files (which must exist), by :func:`row_key`."""
    done = load_done(output)
    for name in merge:
        if not Path(name).is_file():
            raise SystemExit(f"--merge: no such file {name}")
        done.update(load_done(Path(name), "--merge"))
    return done


def report(done: dict[tuple, dict]) -> str:
    """The table of every row, by dataset (in :data:`DATASETS` order), textcnn first. Of two
    rows that differ only in their config, the later (the --merge file's) is shown."""
    order = {d: i for i, d in enumerate(DATASETS)}
    latest = {key[:4]: r for key, r in done.items()}
    rows = sorted(latest.values(), key=lambda r: (order.get(r["dataset"], len(order)),
                                                not r["system"].startswith("textcnn")))
    return table(rows, rows_threads(rows))


def rows_threads(rows) -> str:
    """The thread counts of ``rows``: ``1``, or ``1/2`` for a mix."""
    return "/".join(map(str, sorted({r["threads"] for r in rows})))


def write_output(path: Path, threads: int | str, results: list[dict],
                 done: dict[tuple, dict]) -> None:
    """--output: this run's rows, then the earlier rows it has not reached or did not ask for
    (other datasets, peers or seeds), so a resumed or narrower run never drops a result."""
    mine = {row_key(r) for r in results}
    kept = [r for key, r in done.items() if key not in mine]
    path.write_text(json.dumps({"threads": threads, "results": results + kept}, indent=2) + "\n",
                    encoding="utf-8")


def margin(rows: list[dict]) -> str:
    """textcnn's lead over the best peer, and whether it clears the peer's spread."""
    ours = [r for r in rows if r["system"].startswith("textcnn")]
    peers = [r for r in rows if not r["system"].startswith("textcnn")]
    if not ours or not peers:
        return ""
    best = max(peers, key=lambda r: r["accuracy"]["mean"])
    lead = 100 * (ours[0]["accuracy"]["mean"] - best["accuracy"]["mean"])
    need = max(100 * best["accuracy"]["std"], 0.0) or 0.5
    verdict = "beats" if lead > need else "does not beat"
    return (f"{lead:+.1f} over {best['system']} (needs > {need:.1f}): {verdict}")


def table(results: list[dict], threads: int | str) -> str:
    lines = [f"Threads: {threads} per system. Accuracy and macro-F1 in %, mean ± std over seeds "
             "(test sets) or the 10 folds (cv10); textcnn's seconds include its test-set "
             "evaluation.", "",
             "| dataset | system | protocol | runs | accuracy | macro-F1 | train s / run "
             "| s to best | sentences/s |", "|---|---|---|---|---|---|---|---|---|"]
    verdicts = []
    for dataset in dict.fromkeys(r["dataset"] for r in results):
        rows = [r for r in results if r["dataset"] == dataset]
        lines += [with_seconds_to_best(table_row(r, r["system"], seconds_digits=1), r)
                  for r in rows]
        if margin(rows):
            verdicts.append(f"- {dataset}: textcnn {margin(rows)}")
    return "\n".join(lines + [""] + verdicts)


def peer_row(peer: str, args: argparse.Namespace, dataset: str) -> dict:
    row = run_peer(peer, args.data_dir, dataset, threads=args.threads, seeds=tuple(args.seeds))
    return {**row, "system": row.pop("peer")}


def with_seconds_to_best(line: str, r: dict) -> str:
    """A table row with its "s to best" cell before sentences/s: textcnn's seconds to the end of
    its best epoch, a peer's train seconds (it has no epochs to choose from)."""
    cells = line.split(" | ")
    cells.insert(-1, format_mean_std(r.get("seconds_to_best") or r["train_seconds"], 1.0, 1))
    return " | ".join(cells)


def default_recipe_config(dataset: str, folder: Path) -> Path:
    """The default recipe with ``dataset`` as its task, as a YAML file in ``folder``."""
    path = folder / f"{dataset}.yaml"
    data = {"tasks": {"label": {"dataset": dataset}}, **recipe_data()}
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def write_section(path: Path, text: str) -> None:
    doc = path.read_text(encoding="utf-8") if path.exists() else ""
    block = f"{BEGIN}\n{text}\n{END}"
    if BEGIN in doc and END in doc:
        doc = doc[:doc.index(BEGIN)] + block + doc[doc.index(END) + len(END):]
    else:
        doc = doc.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(doc, encoding="utf-8")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--group", default="best", help="textcnn config: configs/<group>/<dataset>"
                                                     ".yaml (default: best), or default: the "
                                                     "default recipe")
    ap.add_argument("--textcnn", action=argparse.BooleanOptionalAction, default=True,
                    help="run textcnn's config (--no-textcnn: the peers only)")
    ap.add_argument("--peers", nargs="*", default=list(PEERS), choices=PEERS,
                    help="the peers to run (none: textcnn only)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--data-dir", default=os.environ.get("TEXTCNN_DATA_DIR"))
    ap.add_argument("--output", default="benchmark.json",
                    help="all results as JSON, rewritten after each row")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the rows of --output made with the same seeds, threads and "
                         "config")
    ap.add_argument("--merge", nargs="+", default=[], metavar="FILE",
                    help="also reuse the rows of these --output files (parts run side by side)"
                         "; implies --resume")
    ap.add_argument("--report", action="store_true",
                    help="run nothing: the table of every row of --output and --merge")
    ap.add_argument("--write", help="replace the benchmark.py section of this markdown file")
    args = ap.parse_args(argv)
    if args.report:  # nothing runs: no data, configs or peers needed
        return args
    if not args.data_dir:
        ap.error("set TEXTCNN_DATA_DIR or pass --data-dir")
    if args.group == "default":
        folder = Path(tempfile.mkdtemp(prefix="recipe-")) / "default"
        folder.mkdir()
        args.configs = {d: default_recipe_config(d, folder) for d in args.datasets}
    else:
        args.configs = {d: ROOT / "configs" / args.group / f"{d}.yaml" for d in args.datasets}
    missing = [str(c) for c in args.configs.values() if not c.is_file()]
    if missing and args.textcnn:
        ap.error(f"no such config: {', '.join(missing)}")
    return args


def available_peers(asked: list[str]) -> list[str]:
    """The peers asked for, less those whose package is missing (said on stderr)."""
    peers = list(asked)
    spacy = spacy_available()
    for peer, available in (("fasttext", fasttext_available()), ("spacy_bow", spacy),
                            ("spacy_ensemble", spacy)):
        if peer in peers and not available:
            print(f"{peer} is not installed (pip install 'textcnn[bench]'): skipping it",
                  file=sys.stderr)
            peers.remove(peer)
    return peers


def run(args: argparse.Namespace, done: dict[tuple, dict]) -> list[dict]:
    """Every asked-for row, reused from ``done`` where it is there, --output rewritten after
    each."""
    peers = available_peers(args.peers)
    results = []
    for dataset in args.datasets:
        config = args.configs[dataset]
        jobs = [(textcnn_system(config), config.read_text("utf-8"),
                 partial(textcnn_row, dataset, config, args.seeds, args.threads))
                ] if args.textcnn else []
        jobs += [(peer, "", partial(peer_row, peer, args, dataset)) for peer in peers]
        for system, config_text, job in jobs:
            meta = {"dataset": dataset, "system": system, "seeds": args.seeds,
                    "threads": args.threads, "config_text": config_text}
            r = done.get(row_key(meta))
            reused = r is not None
            r = r or {**job(), **meta}
            results.append(r)
            write_output(Path(args.output), args.threads, results, done)
            print(f"{dataset:>14} {system:>24}: {100 * r['accuracy']['mean']:.1f} ± "
                  f"{100 * r['accuracy']['std']:.1f}{' (from --output)' if reused else ''}",
                  file=sys.stderr, flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.data_dir:
        os.environ["TEXTCNN_DATA_DIR"] = args.data_dir
    output = Path(args.output)
    resume = args.resume or args.merge or args.report
    done = load_merged(output, args.merge) if resume else {}
    if args.report:
        if args.merge:  # the merged rows, in --output for later runs
            write_output(output, rows_threads(done.values()), [], done)
        text = report(done)
    else:
        text = table(run(args, done), args.threads)
    print(text)
    if args.write:
        write_section(Path(args.write), text)


if __name__ == "__main__":
    main()
