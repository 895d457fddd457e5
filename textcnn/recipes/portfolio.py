"""Choosing among candidate recipes on the run's own validation data.

Which loss and which branches suit a set is a property of that set, not of the six benchmark
sets the recipe was tuned on, and on a small set one validation carve is too noisy to tell
them apart (100 rows of a 1,000-row set: about 4 points of standard error). So the default
recipe trains a few :class:`Candidate` recipes, scores each on validation carves of the
training rows (the run's own 10%, then a third of the rows; the carves' scores weighted by
their rows), and keeps the best by ``train.select_metric`` when it beats the recipe as it is
by more than one standard error of the recipe's score (:func:`choose`): the recipe was chosen
across many sets, so a candidate must show more than noise. At 1,000 rows that scores every
candidate on 433 rows (one standard error: about 2 points), at the cost of two runs per
candidate; the wide branch alone costs little. On rows held out of five short-text training
pools (1,000 rows, one draw) the squared hinge scored -0.5 to +0.6 against the recipe: noise,
which the margin leaves alone (on long documents it is worth seven points, and :mod:`.shape`
sets it).

What is compared (:func:`candidates`):

- short texts (the CNN reads every token): the recipe (CNN + wide branch, cross-entropy), the
  same network on the one-vs-rest squared hinge with an L2 of ``1 / rows`` on the n-gram
  weights (as LinearSVC is trained), and the wide branch alone on that loss (a TF-IDF linear
  model trained by the same loop), each on :data:`CARVES` carves;
- long texts (:mod:`.shape` already trains them on the squared hinge, the CNN on the first
  tokens): the recipe and the wide branch alone, on the run's own carve only, since a CNN run
  over long documents costs several short-text runs.

Only a training split of at most :data:`MAX_ROWS` rows is compared: beyond it one carve holds
enough rows, and the runs the comparison costs are long. A validation file of the user's own
replaces the carves (every candidate is scored on it). A candidate that would change a key the
user set (``--set``, an estimator parameter) is left out, so the user's values always win; a
run with a teacher, a streamed task, a label set per row, a head of its own
(``tasks.<name>.head``, which ``train.loss`` does not choose), or ``--resume`` trains the recipe
as it is. With ``train.time_budget`` a candidate whose runs would not fit in what is left of it
is skipped, and the table says so.

Carve 0 is the one a run without candidates makes (the same rows and seed), and each
candidate's carve-0 run is a complete run: the chosen candidate's is the model that is kept,
so nothing is trained again. The choice, with every candidate's validation scores, goes to the
log, to ``metrics.json`` (``"candidates"``) and to the model card.

Example
-------
>>> from textcnn.recipes import recipe_config
>>> [c.name for c in candidates(recipe_config("sst2"), rows=1000, long_texts=False)]
['cnn+wide', 'cnn+wide hinge', 'wide hinge']
>>> [c.name for c in candidates(recipe_config("sst2"), rows=1000, long_texts=False,
...                             fixed={"train.loss"})]
['cnn+wide']
>>> [c.name for c in candidates(recipe_config("sst2"), rows=50000, long_texts=False)]
['cnn+wide']
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MAX_ROWS = 2000  # the largest training split whose candidates are compared
CARVES = 2  # validation carves per candidate on short texts (carve 0 is the run's own)
CARVE_FRACTION = 1 / 3  # of the training rows, the validation of every carve after the first
CANDIDATES_DIR = ".candidates"  # inside the output folder while the candidates train


@dataclass(frozen=True)
class Candidate:
    """A recipe to compare: ``settings`` ({dotted key: value}) set over the run's config."""

    name: str
    settings: dict = field(default_factory=dict)
    why: str = ""


def hinge_settings(rows: int) -> dict[str, object]:
    """The wide branch trained as LinearSVC is: squared hinge, L2 of ``1 / rows``."""
    return {"train.loss": "squared_hinge", "model.ngram_l2": float(f"{1 / max(rows, 1):.3g}")}


def candidates(config, rows: int, long_texts: bool, fixed: Iterable[str] = ()
               ) -> list[Candidate]:
    """The candidates for ``config`` (the recipe with what the data set) on ``rows`` training
    rows: the recipe as it is first, then those that change no key of ``fixed``."""
    deep = "cnn" if getattr(config.model, "deep", True) else "wide"
    loss = " hinge" if config.train.loss == "squared_hinge" else ""
    recipe = Candidate(f"{deep}+wide{loss}" if deep == "cnn" else f"wide{loss}", {},
                       "the recipe as it is")
    if rows > MAX_ROWS or not config.model.ngram_buckets or deep == "wide" or \
            config.train.select_metric == "loss":  # a validation loss is cross-entropy's alone
        return [recipe]
    hinge = hinge_settings(rows)
    wide = Candidate("wide hinge", {"model.deep": False, **hinge},
                     "the wide branch alone: a TF-IDF linear model, as LinearSVC")
    if long_texts:
        others = [wide]
    elif config.train.loss == "squared_hinge":
        others = [Candidate("cnn+wide", {"train.loss": "cross_entropy", "model.ngram_l2": 0.0},
                            "cross-entropy"), wide]
    else:
        others = [Candidate("cnn+wide hinge", hinge, "squared hinge + L2 on the n-grams"), wide]
    fixed = tuple(fixed)
    return [recipe] + [c for c in others if not any(_covers(f, k) for f in fixed
                                                     for k in c.settings)]


def _covers(given: str, key: str) -> bool:
    """Whether the user's ``given`` key (``train.loss``, or a whole section, ``train``) sets
    the dotted ``key``."""
    return key == given or key.startswith(given + ".")


def override_keys(overrides: Iterable[str]) -> set[str]:
    """The dotted keys of ``KEY=VALUE`` items (``--set``).

    >>> sorted(override_keys(["train.loss=squared_hinge", " model.deep = false"]))
    ['model.deep', 'train.loss']
    """
    return {item.split("=", 1)[0].strip() for item in overrides}


def applies(config, resume: bool) -> bool:
    """Whether a run of ``config`` may compare candidates at all."""
    tasks = list(config.tasks.values())
    return (not resume and len(tasks) == 1 and not tasks[0].stream
            and not tasks[0].multi_label and not tasks[0].head  # candidates vary train.loss
            and not config.distill.teacher
            and config.model.input_kind == "text")


class Portfolio:
    """A train step (what :func:`textcnn.runs.train_and_evaluate` takes and returns) that
    trains the candidates of the default recipe and returns the chosen one's classifier and
    metrics; ``fixed`` are the dotted keys the user set."""

    def __init__(self, fixed: Iterable[str] = ()):
        self.fixed = frozenset(fixed)

    def __call__(self, config, datasets: dict, output=None, resume: bool = False, *, log,
                 write_folder: bool = True, command: str | None = None,
                 started: float | None = None, **kwargs):
        from ..runs import train_and_evaluate

        started = time.perf_counter() if started is None else started
        step = dict(log=log, command=command, **kwargs)
        if not applies(config, resume):
            return train_and_evaluate(config, datasets, output, resume, write_folder=write_folder,
                                      started=started, **step)
        (head, raw), = datasets.items()
        pool, own_rows = training_pool(raw, config.train.seed)
        long_texts = bool(config.model.conv_tokens)
        rows = len(pool.texts) if pool is not None else len(raw.splits["train"])
        options = candidates(config, rows, long_texts, self.fixed)
        if len(options) == 1:
            return train_and_evaluate(config, datasets, output, resume, write_folder=write_folder,
                                      started=started, **step)
        carves = 1 if pool is None or long_texts else CARVES
        log(f"candidates: {', '.join(c.name for c in options)}; each scored on "
            + (f"{carves} validation carves of the training rows" if carves > 1
               else "the run's validation split") + f" by {config.train.select_metric}")
        room = Path(output) / CANDIDATES_DIR if write_folder and output is not None else None
        table, kept = [], {}
        for candidate in options:
            row = {"name": candidate.name, "settings": candidate.settings, "why": candidate.why}
            table.append(row)
            if _over_budget(config, started, table, carves):
                row["skipped"] = "train.time_budget"
                log(f"candidate {candidate.name}: skipped, train.time_budget would be passed")
                continue
            kept[candidate.name] = self._score(config, candidate, datasets, raw, pool, carves,
                                               own_rows, row, room, step, train_and_evaluate)
        chosen = choose(table)
        clf, metrics = kept[chosen["name"]]
        report = choice_report(table, chosen, config.train.select_metric, carves)
        log(report["summary"])
        clf.timing["seconds"] = round(time.perf_counter() - started, 3)
        if room is not None:
            keep_chosen(room, Path(output) / CANDIDATES_DIR / _slug(chosen["name"]),
                        Path(output), report, clf.timing["seconds"], command)
            log(f"model folder: {output}")
        return clf, metrics

    def _score(self, config, candidate, datasets, raw, pool, carves, own_rows, row, room, step,
               train):
        from . import reconfigured

        cfg = reconfigured(config, candidate.settings)
        row["validation"], row["rows"], row["seconds"] = [], [], []
        first = None
        for carve in range(carves):
            begun = time.perf_counter()
            if carve == 0:  # the run's own cut: a complete run, kept if this candidate wins
                folder = room / _slug(candidate.name) if room is not None else None
                clf, metrics = train(cfg, datasets, folder, False, write_folder=folder is not None,
                                     started=begun, **_quiet(step, not candidate.settings))
                first = (clf, metrics)
            else:
                (head, _), = datasets.items()
                cut = carved(raw, pool, config.train.seed + carve, CARVE_FRACTION)
                _, metrics = train(cfg, {head: cut}, None, False, write_folder=False,
                                   started=begun, **_quiet(step, False))
            (scores,) = metrics.values()
            value = scores["validation"][config.train.select_metric]
            row["validation"].append(round(float(value), 4))
            row["rows"].append(len(cut.splits["validation"]) if carve else own_rows)
            row["seconds"].append(round(time.perf_counter() - begun, 1))
            step["log"](f"candidate {candidate.name}, carve {carve + 1}/{carves}: validation "
                        f"{config.train.select_metric} {value:.4f} ({row['seconds'][-1]:.1f} s)")
        row["mean"] = round(float(np.average(row["validation"], weights=row["rows"])), 4)
        return first


def _quiet(step: dict, first: bool) -> dict:
    """The train step's arguments with a log that keeps, indented, the first run's lines but
    its epochs, and only what stopped each later run."""
    log = step["log"]

    def keep(line: str) -> None:
        if line.startswith("stopped") or first and not line.startswith(("epoch ", "model fol")):
            log("  " + line)
    return {**step, "log": keep}


def _over_budget(config, started: float, table: list[dict], carves: int) -> bool:
    """Whether a next candidate's runs, as long as the mean of those so far, would end past
    ``train.time_budget`` (never for the first candidate, nor without a budget)."""
    budget = config.train.time_budget
    done = [s for r in table for s in r.get("seconds", [])]
    if not budget or not done:
        return False
    return time.perf_counter() - started + carves * float(np.mean(done)) > budget


def training_pool(raw, seed: int):
    """``(the rows a run trains and validates on, the rows of its own validation split)``: the
    pool is the training split before its validation carve (a CV set's folds 1-9), or None when
    a validation split of the user's own is given."""
    from ..data import Split, make_splits

    if "validation" in raw.splits:
        return None, len(raw.splits["validation"])
    parts = make_splits(raw, seed)
    pool = Split(parts["train"].texts + parts["validation"].texts,
                 np.concatenate([parts["train"].labels, parts["validation"].labels]))
    return pool, len(parts["validation"])


def carved(raw, pool, seed: int, fraction: float):
    """``raw`` cut anew: a fresh validation carve (``fraction`` of the training ``pool``), no
    test split."""
    from ..data import RawDataset, carve_validation

    train, validation = carve_validation(pool.labels, seed, fraction)
    return RawDataset(raw.source, raw.label_names,
                      {"train": pool.subset(train), "validation": pool.subset(validation)})


def standard_error(score: float, rows: int) -> float:
    """The binomial standard error of a validation ``score`` (a rate) on ``rows`` rows.

    >>> round(standard_error(0.78, 433), 4)
    0.0199
    """
    score = min(max(score, 0.0), 1.0)
    return float(np.sqrt(score * (1 - score) / max(rows, 1)))


def choose(table: list[dict]) -> dict:
    """The row of ``table`` (the recipe's first) to keep: the best-scoring candidate when it
    beats the recipe by more than one standard error of the recipe's score, else the recipe
    (the recipe was chosen across many sets; a candidate must show more than noise).

    >>> table = [{"name": "a", "mean": 0.78, "rows": [100, 333]},
    ...          {"name": "b", "mean": 0.79}, {"name": "c"}]
    >>> choose(table)["name"], choose([table[0], {"name": "b", "mean": 0.81}])["name"]
    ('a', 'b')
    """
    recipe = table[0]
    best = max((r for r in table if "mean" in r), key=lambda r: r["mean"])  # first if tied
    margin = standard_error(recipe["mean"], sum(recipe.get("rows", [])))
    return best if best["mean"] - recipe["mean"] > margin else recipe


def choice_report(table: list[dict], chosen: dict, metric: str, carves: int) -> dict:
    """``metrics.json``'s ``"candidates"`` entry, with the log line saying what was kept.

    >>> table = [{"name": "a", "mean": 0.8, "rows": [30, 100]}, {"name": "b", "mean": 0.9},
    ...          {"name": "c"}]
    >>> choice_report(table, table[1], "accuracy", 2)["summary"]
    'kept candidate b: best mean validation accuracy over 2 carves: 0.9000 (the recipe, a: 0.8000, \
more than one standard error, 0.0351, below it)'
    """
    recipe, carves_said = table[0], f"{carves} carve{'s' if carves > 1 else ''}"
    scored = sorted((r for r in table if "mean" in r), key=lambda r: -r["mean"])
    margin = standard_error(recipe["mean"], sum(recipe.get("rows", [])))
    if chosen is recipe:
        runner = next((r for r in scored if r is not recipe), None)
        why = (f"the recipe, mean validation {metric} over {carves_said}: {recipe['mean']:.4f}"
               + (f"; the best other, {runner['name']} {runner['mean']:.4f}, is not more than "
                  f"one standard error ({margin:.4f}) above it" if runner else ""))
    else:
        why = (f"best mean validation {metric} over {carves_said}: {chosen['mean']:.4f} (the "
               f"recipe, {recipe['name']}: {recipe['mean']:.4f}, more than one standard error, "
               f"{margin:.4f}, below it)")
    return {"chosen": chosen["name"], "why": why, "metric": metric, "carves": carves,
            "candidates": table, "summary": f"kept candidate {chosen['name']}: {why}"}


def keep_chosen(room: Path, winner: Path, output: Path, report: dict, seconds: float,
                command: str | None) -> None:
    """Move the chosen candidate's model folder up into ``output``, record the comparison in
    its ``metrics.json`` and card, and remove the other candidates' folders."""
    from ..card import write_card
    from ..fileio import write_json

    for path in winner.iterdir():
        os.replace(path, output / path.name)
    shutil.rmtree(room, ignore_errors=True)
    metrics_path = output / "metrics.json"
    metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
    entry = {k: v for k, v in report.items() if k != "summary"}
    write_json(metrics_path, {**metrics, "seconds": seconds, "candidates": entry})
    write_card(output, command)


def _slug(name: str) -> str:
    return name.replace("+", "-").replace(" ", "-")

