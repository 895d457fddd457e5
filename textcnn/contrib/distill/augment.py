"""Augmented training text for distillation (Tang et al. 2019): copies of each training text
with words masked, swapped for embedding neighbours and cut to random n-grams, and phrase-like
spans of it, for a teacher to label with soft targets.

Tang et al. swap words for others of the same part of speech, which needs a tagger; here a word
is swapped for one of its nearest whole words in the student's pretrained input embeddings
(:func:`neighbour_table`), the embedding-neighbour rule of TinyBERT (Jiao et al. 2020). The mask
is ``[UNK]``: a special token of textcnn's tokenizers and of BERT's.

Example
-------
>>> new = augment(["a gorgeous , witty film"], copies=3, mask_prob=0.5, ngram_prob=0.0, seed=1)
>>> len(new), all(len(text.split()) == 5 and MASK in text for text in new)
(3, True)
>>> swap = {"gorgeous": ["stunning"], "witty": ["clever"]}
>>> augment(["a gorgeous , witty film"], copies=1, mask_prob=0.0, ngram_prob=0.0,
...         swap_prob=1.0, neighbours=swap)
['a stunning , clever film']
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import numpy as np

MASK = "[UNK]"
MAX_NGRAM = 5  # Tang et al.: n-grams of 1 to 5 words


def augment(texts: Sequence[str], copies: int, mask_prob: float = 0.1,
            ngram_prob: float = 0.25, seed: int = 0, swap_prob: float = 0.0,
            neighbours: Mapping[str, Sequence[str]] | None = None) -> list[str]:
    """Up to ``copies`` new texts per text, none equal to a training text or to each other.

    Each copy masks every word with chance ``mask_prob``, else swaps it with chance
    ``swap_prob`` for one of its ``neighbours`` (looked up lower-cased; words without any stay),
    then with chance ``ngram_prob`` keeps only a random n-gram of it (n from 1 to 5). Words are
    split on whitespace. With ``swap_prob`` 0 the draws are those of a run without swaps.

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
    swap_prob : float
        The swap rule's chance (``mask_prob + swap_prob`` at most 1).
    neighbours : mapping of str to sequence of str, optional
        Lower-cased word -> the words it may become (:func:`neighbour_table`).

    Returns
    -------
    list of str
        The new texts, in order of their source text.
    """
    rng = np.random.default_rng(seed)

    def draws() -> Iterator[str]:
        for text in texts:
            words = np.array(text.split(), dtype=object)
            for _ in range(copies if len(words) else 0):
                draw = rng.random(len(words))
                copy = np.where(draw < mask_prob, MASK, words)
                if swap_prob:
                    _swap(copy, (draw >= mask_prob) & (draw < mask_prob + swap_prob),
                          neighbours or {}, rng)
                if rng.random() < ngram_prob:
                    n = min(int(rng.integers(1, MAX_NGRAM + 1)), len(copy))
                    start = int(rng.integers(0, len(copy) - n + 1))
                    copy = copy[start:start + n]
                yield " ".join(copy)

    return _unseen(draws(), set(texts))


def spans(texts: Sequence[str], copies: int, seed: int = 0,
          exclude: Iterable[str] = ()) -> list[str]:
    """Up to ``copies`` phrase-like spans per text: contiguous runs of 2 to n - 1 of its n words
    (texts of 4 or more words), unmasked, none equal to a text, to ``exclude`` or to each other.

    The teacher labels them as a treebank labels phrases: Kim (2014) trained on SST's
    phrase-level labels as well as its sentences, and sentence-level training data has none.

    Examples
    --------
    >>> new = spans(["a gorgeous , witty film"], copies=4, seed=0)
    >>> all(2 <= len(span.split()) <= 4 and span in "a gorgeous , witty film" for span in new)
    True
    >>> spans(["too short"], copies=4)
    []
    """
    rng = np.random.default_rng([seed, 1])  # not augment()'s stream: its copies stay the same

    def draws() -> Iterator[str]:
        for words in (text.split() for text in texts):
            for _ in range(copies if len(words) >= 4 else 0):
                n = int(rng.integers(2, len(words)))
                start = int(rng.integers(0, len(words) - n + 1))
                yield " ".join(words[start:start + n])

    return _unseen(draws(), set(texts) | set(exclude))


def _unseen(draws: Iterable[str], seen: set[str]) -> list[str]:
    """``draws`` in order without those in ``seen`` and without repeats."""
    return list(dict.fromkeys(text for text in draws if text not in seen))


def _swap(copy: np.ndarray, chosen: np.ndarray, neighbours: Mapping[str, Sequence[str]],
          rng: np.random.Generator) -> None:
    """Swap ``copy``'s ``chosen`` words, in place, for a random one of their neighbours."""
    for i in np.flatnonzero(chosen):
        options = neighbours.get(copy[i].lower())
        if options:
            copy[i] = options[int(rng.integers(len(options)))]


def neighbour_table(words: Iterable[str], vocab: Mapping[str, int], matrix: np.ndarray,
                    k: int = 8) -> dict[str, list[str]]:
    """Each of ``words`` (lower-cased) that is a whole word of ``vocab`` -> its ``k`` nearest
    whole words by cosine similarity of their rows of ``matrix``, nearest first.

    Whole words are the alphabetic entries (not ``##`` word pieces, special tokens or
    punctuation); a word is never its own neighbour.

    Examples
    --------
    >>> vocab = {"good": 0, "great": 1, "bad": 2, "##s": 3}
    >>> matrix = np.array([[1.0, 0.1], [0.9, 0.2], [-1.0, 0.0], [1.0, 0.1]])
    >>> neighbour_table(["Good", "film"], vocab, matrix, k=1)
    {'good': ['great']}
    """
    pool = sorted((i, w) for w, i in vocab.items() if w.isalpha())
    names = [w for _, w in pool]
    unit = matrix[[i for i, _ in pool]].astype(np.float32)
    unit /= np.linalg.norm(unit, axis=1, keepdims=True).clip(1e-12)
    place = {w: j for j, w in enumerate(names)}
    wanted = [w for w in dict.fromkeys(word.lower() for word in words) if w in place]
    k = min(k, len(names) - 1)
    table = {}
    for start in range(0, len(wanted), 1024):  # (1024, vocabulary) similarities at a time
        rows = [place[w] for w in wanted[start:start + 1024]]
        sims = unit[rows] @ unit.T
        sims[np.arange(len(rows)), rows] = -np.inf
        top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        top = np.take_along_axis(top, np.argsort(-np.take_along_axis(sims, top, 1), 1), 1)
        table.update((names[r], [names[j] for j in row]) for r, row in zip(rows, top))
    return table


def pretrained_neighbours(source: str, words: Iterable[str], k: int = 8) -> dict[str, list[str]]:
    """:func:`neighbour_table` of ``words`` over the vectors of ``source`` (``model.pretrained``):
    a Hugging Face model folder's whole vocabulary and input embeddings, or a vector file's
    entries for ``words`` (so its neighbours are among them)."""
    from tokenizers import Tokenizer

    from ...embeddings import read_vectors
    from ...sources import folder_embeddings, is_model_folder, resolve_source

    path = resolve_source(source)
    words = {word.lower() for word in words}
    if is_model_folder(path):
        tokenizer = Tokenizer.from_file(str(path / "tokenizer.json"))
        matrix = folder_embeddings(path, tokenizer.get_vocab_size())
        return neighbour_table(words, tokenizer.get_vocab(), matrix, k)
    vectors, _ = read_vectors(path, words)
    names = sorted(w for w in vectors if w in words)
    if len(names) < 2:
        return {}
    return neighbour_table(words, {w: i for i, w in enumerate(names)},
                           np.stack([vectors[w] for w in names]), k)


def read_unlabeled(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file (``distill.unlabeled``), stripped.

    Examples
    --------
    >>> _ = (tmp_dir / "more.txt").write_text("one\\n\\n two \\n", encoding="utf-8")
    >>> read_unlabeled(str(tmp_dir / "more.txt"))
    ['one', 'two']
    """
    from ...errors import DataError

    try:
        with open(path, encoding="utf-8") as fh:
            return [line.strip() for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"distill.unlabeled: cannot read {path}: {exc}") from None
