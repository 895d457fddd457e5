"""spaCy's text classifier (``textcat``) as a peer: a bag of bigrams, or its default ensemble.

Both start from a blank English pipeline (spaCy's rule-based tokenizer, no pretrained vectors):

- ``spacy_bow``: ``spacy.TextCatBOW.v3`` over unigrams and bigrams (a linear model);
- ``spacy_ensemble``: spaCy's default ``textcat`` model, ``spacy.TextCatEnsemble.v2`` (a
  CNN token-to-vector layer with attention, averaged with the bag of words).

Training follows spaCy's own loop (``nlp.initialize``, ``nlp.update`` on shuffled minibatches of
compounding size, dropout 0.2) for a fixed number of epochs, one label per text. spaCy comes with
the ``bench`` extra and is imported only here.

Example
-------
>>> pred, train_s, predict_s = fit_predict_spacy(  # doctest: +SKIP
...     "spacy_bow", ["good", "bad"] * 20, [1, 0] * 20, ["good"], threads=1, seed=0)
>>> pred.tolist()  # doctest: +SKIP
[1]
"""

from __future__ import annotations

import random
import time

import numpy as np

from .extras import import_bench_extra

ARCHITECTURES = {
    "spacy_bow": {"model": {"@architectures": "spacy.TextCatBOW.v3", "exclusive_classes": True,
                            "ngram_size": 2, "no_output_layer": False, "length": 262144}},
    "spacy_ensemble": {},  # spaCy's default textcat model (TextCatEnsemble)
}
EPOCHS = 5
DROPOUT = 0.2


def fit_predict_spacy(peer: str, x_train: list[str], y_train: list[int], x_test: list[str],
                      threads: int, seed: int) -> tuple[np.ndarray, float, float]:
    """Train ``peer`` (a key of :data:`ARCHITECTURES`) and predict ``x_test``.

    Returns the predicted label ids, the train seconds and the predict seconds.
    """
    spacy = import_bench_extra("spacy", "spaCy")
    from spacy.training import Example
    from spacy.util import compounding, fix_random_seed, minibatch

    threadpoolctl = import_bench_extra("threadpoolctl", "threadpoolctl")
    with threadpoolctl.threadpool_limits(limits=threads):
        fix_random_seed(seed)
        start = time.perf_counter()
        nlp = spacy.blank("en")
        textcat = nlp.add_pipe("textcat", config=ARCHITECTURES[peer])
        labels = sorted(set(y_train))
        for label in labels:
            textcat.add_label(str(label))
        examples = [Example.from_dict(nlp.make_doc(text), {"cats": {
            str(label): float(label == y) for label in labels}})
            for text, y in zip(x_train, y_train)]
        optimizer = nlp.initialize(lambda: examples)
        order = random.Random(seed)
        for _ in range(EPOCHS):
            order.shuffle(examples)
            for batch in minibatch(examples, size=compounding(4.0, 32.0, 1.001)):
                nlp.update(batch, sgd=optimizer, drop=DROPOUT)
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        pred = [int(max(doc.cats, key=doc.cats.get)) for doc in nlp.pipe(x_test, batch_size=256)]
        return np.array(pred), train_seconds, time.perf_counter() - start
