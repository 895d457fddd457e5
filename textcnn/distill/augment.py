"""Augmented training text for distillation (Tang et al. 2019): copies of each training text
with words masked and cut to random n-grams, for a teacher to label with soft targets.

Tang et al. also swap words for others of the same part of speech; that rule needs a tagger and
is not here. The mask is ``[UNK]``: a special token of textcnn's tokenizers and of BERT's.

Example
-------
>>> new = augment(["a gorgeous , witty film"], copies=3, mask_prob=0.5, ngram_prob=0.0, seed=1)
>>> len(new), all(len(text.split()) == 5 and MASK in text for text in new)
(3, True)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MASK = "[UNK]"
MAX_NGRAM = 5  # Tang et al.: n-grams of 1 to 5 words


def augment(texts: Sequence[str], copies: int, mask_prob: float = 0.1,
            ngram_prob: float = 0.25, seed: int = 0) -> list[str]:
    """Up to ``copies`` new texts per text, none equal to a training text or to each other.

    Each copy masks every word with chance ``mask_prob``, then with chance ``ngram_prob`` keeps
    only a random n-gram of it (n from 1 to 5). Words are split on whitespace.

    Parameters
    ----------
    texts : sequence of str
        The training texts.
    copies : int
        Draws per text (duplicates are dropped, so fewer may come back).
    mask_prob, ngram_prob : float
        The two rules' chances.
    seed : int
        Draws repeat exactly for the same seed.

    Returns
    -------
    list of str
        The new texts, in order of their source text.
    """
    rng = np.random.default_rng(seed)
    seen, out = set(texts), []
    for text in texts:
        words = np.array(text.split(), dtype=object)
        if not len(words):
            continue
        for _ in range(copies):
            copy = np.where(rng.random(len(words)) < mask_prob, MASK, words)
            if rng.random() < ngram_prob:
                n = min(int(rng.integers(1, MAX_NGRAM + 1)), len(copy))
                start = int(rng.integers(0, len(copy) - n + 1))
                copy = copy[start:start + n]
            new = " ".join(copy)
            if new not in seen:
                seen.add(new)
                out.append(new)
    return out


def read_unlabeled(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file (``distill.unlabeled``), stripped.

    Examples
    --------
    >>> _ = (tmp_dir / "more.txt").write_text("one\\n\\n two \\n", encoding="utf-8")
    >>> read_unlabeled(str(tmp_dir / "more.txt"))
    ['one', 'two']
    """
    from ..errors import DataError

    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"distill.unlabeled: cannot read {path}: {exc}") from None
