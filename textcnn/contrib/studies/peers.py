"""Linear peer baselines (TF-IDF + LR / linear SVM, fastText) on the benchmark datasets.

:func:`tfidf_svc_multilabel` is the one-vs-rest SVM peer of multi-label heads.

A dataset is a folder ``<data_dir>/<name>`` with ``dataset.json`` and one ``<split>.jsonl`` per
split (``{"text": ..., "label": ...}`` rows). Datasets with ``cv_folds`` are evaluated by
10-fold cross-validation over ``all.jsonl`` (test = rows with ``fold == k``); the others train
on ``train`` and report accuracy on ``test``. Hyperparameters are fixed: they were picked once
from a small grid on validation data (SST's ``validation`` split, else 10% of the training
rows), never on a test split. fastText, spaCy (:mod:`.spacy_peer`: its ``textcat``, bag of bigrams
or default ensemble) and threadpoolctl come with the ``bench`` extra (``pip install
'textcnn[bench]'``) and are imported only when a peer needs them.

Example
-------
>>> result = run_peer("tfidf_lr", "/data", "sst2", threads=2)  # doctest: +SKIP
>>> format_mean_std(result["accuracy"])  # doctest: +SKIP
'81.2 ± 0.0'
"""

from __future__ import annotations

import json
import os
import random
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score
from sklearn.svm import LinearSVC

from ...data.resolve import META, local_folder, read_meta
from .extras import import_bench_extra, importable

PEERS = ("tfidf_lr", "tfidf_svc", "fasttext", "spacy_bow", "spacy_ensemble")
DATASETS = ("sst2", "sst5", "mr", "subj", "trec", "20newsgroups")

# Fixed hyperparameters (see module docstring). LR uses "sag": same optimum as lbfgs, ~10x faster.
LR_C = 10.0
SVC_C = 1.0
FASTTEXT_PARAMS = {"epoch": 25, "lr": 0.5, "dim": 100, "wordNgrams": 2, "minCount": 1}

_WS = re.compile(r"\s+")
_PUNCT = re.compile(r"([^\w\s])")


def _dataset_dir(data_dir: str, name: str) -> Path:
    path = local_folder(name, data_dir)
    if path is None:
        raise FileNotFoundError(f"dataset {name!r} not found: no {Path(data_dir) / name / META}")
    return path


def protocol(data_dir: str, name: str) -> str:
    """Return ``"cv"`` if the dataset is evaluated by cross-validation, else ``"test"``."""
    meta = read_meta(_dataset_dir(data_dir, name))
    return "cv" if meta.raw.get("cv_folds") else "test"


def load_rows(data_dir: str, name: str, split: str
              ) -> tuple[list[str], list[int], list[int] | None]:
    """Read one split of a dataset.

    Parameters
    ----------
    data_dir : str
        Folder holding one sub-folder per dataset.
    name, split : str
        Dataset name (folder) and split (``train``, ``test``, ``all``, ...).

    Returns
    -------
    texts, labels, folds
        ``folds`` is ``None`` when the rows carry no ``"fold"`` field.

    Raises
    ------
    FileNotFoundError
        If the dataset or split does not exist.
    """
    path = _dataset_dir(data_dir, name) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"dataset {name!r} has no split {split!r}: no {path}")
    texts, labels, folds = [], [], []
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                row = json.loads(line)
                texts.append(row["text"])
                labels.append(int(row["label"]))
                folds.append(row.get("fold"))
    return texts, labels, (None if any(k is None for k in folds) else folds)


def _train_test_splits(data_dir: str, name: str
                       ) -> Iterator[tuple[list[str], list[int], list[str], list[int]]]:
    """Yield ``(train_texts, train_labels, test_texts, test_labels)`` per fold or split."""
    if protocol(data_dir, name) == "cv":
        texts, labels, folds = load_rows(data_dir, name, "all")
        if folds is None:
            raise ValueError(f"dataset {name!r} is a CV dataset but rows carry no 'fold'")
        for k in sorted(set(folds)):
            tr = [i for i, f in enumerate(folds) if f != k]
            te = [i for i, f in enumerate(folds) if f == k]
            yield ([texts[i] for i in tr], [labels[i] for i in tr],
                   [texts[i] for i in te], [labels[i] for i in te])
    else:
        yield (*load_rows(data_dir, name, "train")[:2], *load_rows(data_dir, name, "test")[:2])


def import_fasttext() -> ModuleType:
    """The ``fasttext`` module.

    Raises
    ------
    ImportError
        If it is not installed, naming the ``bench`` extra.
    """
    return import_bench_extra("fasttext", "fastText")


def fasttext_available() -> bool:
    """Whether the fastText peer can run (``fasttext`` imports)."""
    return importable("fasttext")


def spacy_available() -> bool:
    """Whether the spaCy ``textcat`` peers can run (``spacy`` imports)."""
    return importable("spacy")


def tfidf_vectorizer(**overrides) -> TfidfVectorizer:
    """The TF-IDF peers' features: sublinear uni- and bi-gram TF-IDF over scikit-learn's word
    tokens (``overrides``: other ``TfidfVectorizer`` arguments, e.g. ``token_pattern``)."""
    return TfidfVectorizer(**{"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 1,
                              **overrides})


def _fit_predict_sklearn(peer: str, x_train: list[str], y_train: list[int], x_test: list[str],
                         threads: int) -> tuple[np.ndarray, float, float]:
    """Fit TF-IDF + linear model; return test predictions, train and predict seconds."""
    threadpoolctl = import_bench_extra("threadpoolctl", "threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=threads):
        start = time.perf_counter()
        vec = tfidf_vectorizer()
        features = vec.fit_transform(x_train)
        if peer == "tfidf_lr":
            model = LogisticRegression(C=LR_C, solver="sag", max_iter=1000, random_state=0)
        else:
            model = LinearSVC(C=SVC_C)
        model.fit(features, y_train)
        seconds = time.perf_counter() - start
        start = time.perf_counter()
        pred = model.predict(vec.transform(x_test))
        return pred, seconds, time.perf_counter() - start


def tfidf_svc_multilabel(x_train: list[str], y_train: np.ndarray, x_score: list[list[str]],
                         threads: int = 1) -> tuple[list[np.ndarray], float]:
    """One-vs-rest TF-IDF + linear SVM for label sets: one binary SVM per label.

    Parameters
    ----------
    x_train : list of str
        Training texts.
    y_train : np.ndarray
        ``(n, labels)`` multi-hot rows.
    x_score : list of lists of str
        Text sets to score (e.g. validation and test).
    threads : int
        Threads for the one-vs-rest fits (BLAS limited to the same count).

    Returns
    -------
    scores, seconds
        The SVMs' decision values ``(n, labels)`` per text set (a label is predicted at > 0),
        and the training seconds (TF-IDF fitting + the SVMs).
    """
    from sklearn.multiclass import OneVsRestClassifier

    threadpoolctl = import_bench_extra("threadpoolctl", "threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=threads):
        start = time.perf_counter()
        vec = tfidf_vectorizer()
        model = OneVsRestClassifier(LinearSVC(C=SVC_C), n_jobs=threads)
        model.fit(vec.fit_transform(x_train), np.asarray(y_train) > 0.5)
        seconds = time.perf_counter() - start
        return [model.decision_function(vec.transform(x)) for x in x_score], seconds


def _normalize_for_fasttext(text: str) -> str:
    """Normalize a text for fastText: one lower-case line, punctuation split off.

    As in fastText's ``classification-example.sh``; newlines must go, since
    fastText reads one example per line.
    """
    return _WS.sub(" ", _PUNCT.sub(r" \1 ", text.lower())).strip()


def _fit_predict_fasttext(fasttext: ModuleType, x_train: list[str], y_train: list[int],
                          x_test: list[str], threads: int, seed: int
                          ) -> tuple[np.ndarray, float, float]:
    """Train fastText on shuffled rows; return test predictions, train and predict seconds."""
    order = list(range(len(x_train)))
    random.Random(seed).shuffle(order)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        start = time.perf_counter()
        with open(path, "w", encoding="utf-8") as f:
            f.writelines(f"__label__{y_train[i]} {_normalize_for_fasttext(x_train[i])}\n"
                         for i in order)
        model = fasttext.train_supervised(input=path, thread=threads, seed=seed, verbose=0,
                                          **FASTTEXT_PARAMS)
        seconds = time.perf_counter() - start
    # A list goes through ``multilinePredict``, which works under numpy 2 (single strings do not).
    start = time.perf_counter()
    labels, _ = model.predict([_normalize_for_fasttext(t) for t in x_test], k=1)
    pred = np.array([int(lab[0].removeprefix("__label__")) for lab in labels])
    return pred, seconds, time.perf_counter() - start


def fit_predict(peer: str, x_train: list[str], y_train: list[int], x_test: list[str],
                threads: int = 1, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """Train one peer on ``(x_train, y_train)`` and predict ``x_test``.

    Returns
    -------
    predictions, train_seconds, predict_seconds
        Test label ids, and the seconds to fit and to predict (as :func:`run_peer` counts them).

    Raises
    ------
    ImportError
        If the peer's optional dependency cannot be imported; the message names the extra.
    """
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; choose from {PEERS}")
    if peer == "fasttext":
        return _fit_predict_fasttext(import_fasttext(), x_train, y_train, x_test, threads, seed)
    if peer.startswith("spacy"):
        from .spacy_peer import fit_predict_spacy

        return fit_predict_spacy(peer, x_train, y_train, x_test, threads, seed)
    return _fit_predict_sklearn(peer, x_train, y_train, x_test, threads)


def _summary(values: list[float]) -> dict:
    return {"mean": statistics.fmean(values),
            "std": statistics.pstdev(values) if len(values) > 1 else 0.0}


def run_peer(peer: str, data_dir: str, name: str, threads: int = 2, seeds=(0, 1, 2)) -> dict:
    """Evaluate one peer on one dataset.

    Split datasets are run once per seed for fastText and once for the
    (deterministic) sklearn peers; CV datasets are run once per fold with
    ``seeds[0]``. Standard deviations are population std over runs.
    ``train_seconds`` covers TF-IDF fitting + model fit (sklearn) or writing
    the training file + training (fastText; with ``threads > 1`` its runs are
    not bit-reproducible even for a fixed seed).

    Returns
    -------
    dict
        ``peer``, ``dataset``, ``protocol`` ("test" or "cv10"), ``accuracy``,
        ``macro_f1``, ``train_seconds`` and ``sentences_per_second`` (prediction throughput on
    the test texts; each ``{"mean", "std"}``), ``runs``.

    Raises
    ------
    ImportError
        If the peer's optional dependency (fastText, threadpoolctl) cannot be imported; the
        message names the ``bench`` extra.
    """
    if peer not in PEERS:
        raise ValueError(f"unknown peer {peer!r}; choose from {PEERS}")
    if peer == "fasttext":
        import_fasttext()  # fail before the first fold, naming the extra
    proto = protocol(data_dir, name)
    seeded = peer == "fasttext" or peer.startswith("spacy")
    run_seeds = list(seeds) if (seeded and proto == "test") else [seeds[0]]
    acc, f1, secs, rates = [], [], [], []
    for x_train, y_train, x_test, y_test in _train_test_splits(data_dir, name):
        for seed in run_seeds:
            pred, sec, predict_sec = fit_predict(peer, x_train, y_train, x_test, threads, seed)
            acc.append(accuracy_score(y_test, pred))
            f1.append(f1_score(y_test, pred, average="macro"))
            secs.append(sec)
            rates.append(len(x_test) / max(predict_sec, 1e-9))
    return {"peer": peer, "dataset": name, "protocol": "cv10" if proto == "cv" else "test",
            "accuracy": _summary(acc), "macro_f1": _summary(f1),
            "train_seconds": _summary(secs), "sentences_per_second": _summary(rates),
            "runs": len(acc)}


def format_mean_std(stat: dict, scale: float = 100.0, digits: int = 1) -> str:
    """``"mean ± std"`` of a ``{"mean", "std"}`` dict, scaled (percent by default)."""
    return f"{stat['mean'] * scale:.{digits}f} ± {stat['std'] * scale:.{digits}f}"


def table_row(r: dict, system: str, seconds_digits: int = 2) -> str:
    """One markdown row of a result: dataset, ``system``, protocol, runs, accuracy and macro-F1
    (percent), train seconds and sentences/s ("-" when not measured)."""
    rate = r.get("sentences_per_second")
    rate = f"{rate['mean']:,.0f}" if rate else "-"
    return (f"| {r['dataset']} | {system} | {r['protocol']} | {r['runs']} | "
            f"{format_mean_std(r['accuracy'])} | {format_mean_std(r['macro_f1'])} | "
            f"{format_mean_std(r['train_seconds'], 1.0, seconds_digits)} | {rate} |")


def markdown_table(results: list[dict]) -> str:
    """Format results as a markdown table (accuracy and macro-F1 in percent)."""
    lines = ["| dataset | peer | protocol | runs | accuracy (%) | macro-F1 (%) | train s "
             "| sentences/s |", "|---|---|---|---|---|---|---|---|"]
    lines += [table_row(r, r["peer"]) for r in results]
    return "\n".join(lines)
