"""A textcnn config over seeds or folds: test accuracy per seed, or 10-fold cross-validation.

Sets with a test split are trained once per seed (mean and std over seeds); sets with only an
``all`` split are cross-validated on their folds (mean and std over folds). Kim (2014)'s
CNN-rand numbers are reproduced this way (``scripts/reproduce_kim.py``), and
``scripts/benchmark.py`` scores textcnn's side of its table with it.

Example
-------
>>> r = run_config("configs/kim2014/trec.yaml", [0, 1, 2], folds=10, threads=2)  # doctest: +SKIP
>>> r["protocol"], round(r["accuracy_mean"], 3)  # doctest: +SKIP
('test, 3 seeds', 0.912)
"""

from __future__ import annotations

import statistics
import time

from ...config import load_config
from ...data import make_splits
from ...modality import load_datasets
from ...runs import train_and_evaluate


def run_config(path: str, seeds: list[int], folds: int, threads: int,
               overrides: list[str] | None = None) -> dict:
    """Train the config at ``path`` once per seed (test split) or once per fold (CV).

    Parameters
    ----------
    path : str
        A YAML config; its first task is scored.
    seeds : list of int
        ``train.seed`` of each run on a dataset with a test split.
    folds : int
        K of K-fold CV on a CV dataset (with the config's seed; see ``cross_validate``).
    threads : int
        ``train.threads``.
    overrides : list of str, optional
        ``KEY=VALUE`` config overrides, as ``--set``.

    Returns
    -------
    dict
        ``config``, ``overrides``, ``protocol``, per run ``accuracy`` and ``macro_f1``, their
        ``accuracy_mean``, ``accuracy_std`` (population, 0 for one run), ``macro_f1_mean``,
        total ``seconds``, ``run_seconds``, ``seconds_to_best`` (per run, tokenization included:
        ``runs.run_timing``), ``sentences_per_second`` (the first model predicting its test
        texts with the ``auto`` backend) and ``threads``.
    """
    overrides = list(overrides or [])
    config = load_config(path, [f"train.threads={threads}", *overrides])
    datasets = load_datasets(config)
    head = next(iter(config.tasks))
    start = time.perf_counter()
    cv = datasets[head].is_cv
    runs = [(config.train.seed, k) for k in range(folds)] if cv else [(s, 0) for s in seeds]
    accs, f1s, run_seconds, to_best, rate = [], [], [], [], None
    for seed, fold in runs:
        config.train.seed = seed
        run_start = time.perf_counter()
        clf, metrics = train_and_evaluate(config, datasets, fold=fold, log=lambda line: None,
                                          write_folder=False)
        run_seconds.append(round(time.perf_counter() - run_start, 1))
        to_best.append(round(clf.timing["seconds_to_best"], 1))
        accs.append(metrics[head]["test"]["accuracy"])
        f1s.append(metrics[head]["test"]["macro_f1"])
        if rate is None:  # prediction throughput of the first model, as served (auto backend)
            texts = make_splits(datasets[head], seed, fold)["test"].texts
            clf.set_backend("auto")
            predict_start = time.perf_counter()
            clf.predict_proba(texts)
            rate = len(texts) / max(time.perf_counter() - predict_start, 1e-9)
    protocol = f"{folds}-fold CV" if cv else f"test, {len(seeds)} seeds"
    return {
        "config": path, "overrides": overrides, "protocol": protocol, "accuracy": accs,
        "macro_f1": f1s,
        "accuracy_mean": statistics.mean(accs),
        "accuracy_std": statistics.pstdev(accs) if len(accs) > 1 else 0.0,
        "macro_f1_mean": statistics.mean(f1s),
        "seconds": round(time.perf_counter() - start, 1), "run_seconds": run_seconds,
        "seconds_to_best": to_best,
        "sentences_per_second": round(rate), "threads": threads,
    }
