"""The settings of the default recipe that the training data decides: how long its texts are.

The recipe is tuned for sentences and short reviews (``tokenizer.max_length: 256``, the CNN reading
every token). A set of long documents (news posts, mails, articles) loses most of each text at
256 tokens, while reading all of it with the CNN costs time in proportion. :func:`shaped_settings`
therefore reads the 90th percentile of the training texts' token counts (:func:`measure`, on
the recipe's own tokenizer) and, when it is over the recipe's ``max_length``, raises
``tokenizer.max_length`` to the next power of two that holds it (at most
:data:`LONGEST`) and keeps the CNN on the first :data:`CONV_TOKENS` tokens
(``model.conv_tokens``): the wide branch, whose cost is small per token, reads the whole
text. Long documents are also where the wide branch carries the model, and it is trained as
LinearSVC is: on the one-vs-rest squared hinge (``train.loss``) with an L2 penalty of
``1 / rows`` on its weights (``model.ngram_l2``; not with a teacher, whose soft targets need
cross-entropy), over words: it passes over punctuation and symbols
(``model.ngram_punctuation: false``), as scikit-learn's word tokens do.

On 1,000 rows of 20 Newsgroups, scored on 2,000 rows held out of its training pool (two
draws), the recipe as it is reaches 66.9, the longer reading 71.7 and the hinge with its
penalty 78.9, where TF-IDF + LR reaches 77.7; on four sets of short texts the same loss moves
held-out accuracy by -0.5 to +0.9, so short texts keep cross-entropy. Passing over punctuation
lifts the wide branch alone on 250 rows of 20 Newsgroups (held out, three draws) from 57.0 to
59.2; scikit-learn's LinearSVC over the same word pieces gains 4.1 points there and 1.5 at 1,000
rows, but moves by -1.3 to +0.6 on the five sets of short texts at 1,000 rows, so short texts
keep punctuation (BENCHMARKS.md, "How the recipe was chosen").

What the recipe reads from the data is applied before the user's ``--set`` overrides, which
therefore always win, and the training log says what was read and set.

Example
-------
>>> shape = DataShape(rows=1000, classes=20, p90_tokens=812)
>>> shaped_settings(shape, max_length=256)  # doctest: +NORMALIZE_WHITESPACE
{'tokenizer.max_length': 1024, 'model.conv_tokens': 128, 'model.ngram_punctuation': False,
 'train.loss': 'squared_hinge', 'model.ngram_l2': 0.001}
>>> shaped_settings(DataShape(rows=1000, classes=2, p90_tokens=40), max_length=256)
{}
>>> describe(shape, {'tokenizer.max_length': 1024})
'default recipe: 1000 training rows, 20 classes, 90% of texts within 812 tokens: \
tokenizer.max_length=1024'
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

LONGEST = 1024  # the most tokens the recipe reads of a long text
CONV_TOKENS = 128  # the tokens of a long text that the CNN reads (the wide branch reads all)
SAMPLE = 2000  # texts measured (an even spread over the training split)


@dataclass(frozen=True)
class DataShape:
    """What the recipe reads from a training split."""

    rows: int
    classes: int
    p90_tokens: int  # 90th percentile of the texts' token counts (untruncated)


def measure(texts: Sequence[str], labels, tokenizer) -> DataShape:
    """The :class:`DataShape` of training ``texts`` and their labels (ids, or multi-hot rows),
    their token counts taken with ``tokenizer`` (a ``tokenizers.Tokenizer``; its truncation is
    ignored) on at most :data:`SAMPLE` texts spread evenly over the split."""
    from ..texts import char_limit
    from ..tokenizer import guarded

    step = max(1, len(texts) // SAMPLE)
    sample = [t[:char_limit(LONGEST)] for t in texts[::step]]
    tok = tokenizer.__class__.from_str(tokenizer.to_str())  # a copy: truncation off
    tok.no_truncation()
    counts = [len(e.ids) for e in guarded(tok.encode_batch, sample)] or [0]
    labels = np.asarray(labels)
    classes = len(np.unique(labels)) if labels.ndim == 1 else labels.shape[1]  # multi-hot: (n, k)
    return DataShape(len(texts), int(classes), int(np.percentile(counts, 90)))


def shaped_settings(shape: DataShape, max_length: int, teacher: bool = False
                    ) -> dict[str, object]:
    """``{dotted key: value}`` the data decides, for a recipe reading ``max_length`` tokens
    (``teacher``: a run distilling a teacher, which keeps cross-entropy)."""
    if shape.p90_tokens <= max_length:
        return {}
    longer = min(LONGEST, 1 << (shape.p90_tokens - 1).bit_length())
    settings = {"tokenizer.max_length": longer, "model.conv_tokens": min(CONV_TOKENS, max_length),
                "model.ngram_punctuation": False}
    if not teacher:
        settings.update({"train.loss": "squared_hinge",
                         "model.ngram_l2": float(f"{1 / max(shape.rows, 1):.3g}")})
    return settings


def describe(shape: DataShape, settings: dict[str, object]) -> str:
    """The log line: what was read from the data and what it set."""
    chosen = " ".join(f"{k}={v}" for k, v in settings.items()) or "the recipe as it is"
    return (f"default recipe: {shape.rows} training rows, {shape.classes} classes, 90% of texts "
            f"within {shape.p90_tokens} tokens: {chosen}")
