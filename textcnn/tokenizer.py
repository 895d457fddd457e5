"""Train and load a Hugging Face ``tokenizers.Tokenizer``; encode texts once, in batch.

``[PAD]`` is id 0 and ``[UNK]`` id 1 for every kind. Encoded ids are kept as one int32 matrix
(rows padded with 0) plus a length per text, so batching is slicing, never re-tokenizing.

Example
-------
>>> tok = train_tokenizer(["a good film", "a bad film"], TokenizerConfig())
>>> ids, lengths = encode(tok, ["a good film", ""])
>>> lengths.tolist()
[3, 0]
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .config import TokenizerConfig
from .errors import ModelFolderError
from .texts import char_limit

PAD, UNK = "[PAD]", "[UNK]"
SPECIAL = [PAD, UNK]

# Words, Kim-style clitics ("do" + "n't", "it" + "'s") and single punctuation marks.
# One regex pass, pieces = matches (measured 1.6x faster than whitespace split + regex split).
WORD_PATTERN = r"\w+(?=n't)|n't|'(?:s|re|ve|m|ll|d)\b|\w+|[^\w\s]"


def build_tokenizer(cfg: TokenizerConfig) -> tuple[Tokenizer, object]:
    """An untrained tokenizer of ``cfg.kind`` and the trainer that fits it."""
    kind = cfg.kind
    words = pre_tokenizers.Split(Regex(WORD_PATTERN), "removed", invert=True)
    common = {"special_tokens": SPECIAL, "min_frequency": cfg.min_frequency,
              "vocab_size": cfg.vocab_size, "show_progress": False}
    if kind == "word":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = words
        trainer = trainers.WordLevelTrainer(**common)
    elif kind == "char":
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"."), "isolated")
        trainer = trainers.WordLevelTrainer(**common)
    elif kind == "wordpiece":
        tok = Tokenizer(models.WordPiece(unk_token=UNK))
        tok.pre_tokenizer = words
        tok.decoder = decoders.WordPiece()
        trainer = trainers.WordPieceTrainer(**common)
    elif kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = words
        trainer = trainers.BpeTrainer(**common)
    else:  # config validation rejects this first
        raise ValueError(f"unknown tokenizer kind {kind!r}")
    if cfg.lowercase:
        tok.normalizer = normalizers.Lowercase()
    tok.enable_truncation(cfg.max_length)
    return tok, trainer


def train_tokenizer(texts: list[str], cfg: TokenizerConfig) -> Tokenizer:
    """Fit a tokenizer on ``texts`` (the training split only)."""
    tok, trainer = build_tokenizer(cfg)
    tok.train_from_iterator(bounded(tok, texts), trainer=trainer, length=len(texts))
    assert tok.token_to_id(PAD) == 0 and tok.token_to_id(UNK) == 1
    return tok


def max_chars(tok: Tokenizer) -> int:
    """The most characters of a text ``tok`` is handed (:func:`textcnn.texts.char_limit` of its
    truncation length): what lies past them can never be among its first ``max_length``
    tokens."""
    return char_limit((tok.truncation or {}).get("max_length"))


def bounded(tok: Tokenizer, texts: list[str]) -> list[str]:
    """``texts``, each cut to :func:`max_chars` characters (bounded work per text)."""
    limit = max_chars(tok)
    return [t[:limit] if len(t) > limit else t for t in texts]


def count_cut(tok: Tokenizer, texts: list[str]) -> int:
    """How many of ``texts`` :func:`bounded` cuts."""
    limit = max_chars(tok)
    return sum(len(t) > limit for t in texts)


QUIET_PANICS = False  # the CLI sets it: a panic's own report on stderr is replaced by one line


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null (where the tokenizer library reports a panic)."""
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def guarded(call, *args, **kwargs):
    """``call(*args, **kwargs)`` (a tokenizer method), with the ``PanicException`` that a
    tokenizer raises when its pattern fails on a text (a ``BaseException``) as a
    :class:`~textcnn.errors.ModelFolderError`; with :data:`QUIET_PANICS`, the library's own
    report of it is not printed."""
    try:
        with _stderr_silenced() if QUIET_PANICS else contextlib.nullcontext():
            return call(*args, **kwargs)
    except BaseException as exc:
        if type(exc).__name__ != "PanicException":
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise ModelFolderError(f"the tokenizer failed on a text ({first}): its tokenizer.json "
                               "holds a pattern that cannot match such texts") from None


def encode(tok: Tokenizer, texts: list[str], flags: bool = False):
    """Batch-encode ``texts`` -> ``(ids (n, longest) int32, lengths (n,) int64)``, plus, with
    ``flags``, ``truncated (n,) bool``: which texts had more than ``max_length`` tokens (or
    more than :func:`max_chars` characters)."""
    # encode_batch_fast skips character offsets (encode_with_offsets computes them)
    batch = getattr(tok, "encode_batch_fast", tok.encode_batch)
    encodings = guarded(batch, bounded(tok, texts), add_special_tokens=False)
    ids, lengths = _pack([e.ids for e in encodings])
    if not flags:
        return ids, lengths
    limit = max_chars(tok)
    cut = np.fromiter((bool(e.overflowing) or len(t) > limit for e, t in zip(encodings, texts)),
                      dtype=bool, count=len(texts))
    return ids, lengths, cut


def _pack(id_lists: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists as ``(ids (n, longest) int32, lengths (n,) int64)``."""
    lengths = np.fromiter(map(len, id_lists), dtype=np.int64, count=len(id_lists))
    ids = np.zeros((len(id_lists), int(lengths.max(initial=0))), dtype=np.int32)
    for row, found in zip(ids, id_lists):
        row[: len(found)] = found
    return ids, lengths


def encode_with_offsets(tok: Tokenizer, texts: list[str]
                        ) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, int]]]]:
    """As :func:`encode`, plus each kept token's ``(start, end)`` character offsets into its
    text (slower: the offsets are computed).

    Examples
    --------
    >>> tok = train_tokenizer(["a good film"], TokenizerConfig())
    >>> encode_with_offsets(tok, ["A good  film"])[2]
    [[(0, 1), (2, 6), (8, 12)]]
    """
    encodings = guarded(tok.encode_batch, bounded(tok, texts), add_special_tokens=False)
    return (*_pack([e.ids for e in encodings]), [e.offsets for e in encodings])


# a word piece's marks that are not part of its text: WordPiece's "##", byte-level BPE's "Ġ"
# (a space before), SentencePiece's "▁"
_PIECE_MARKS = re.compile(r"^(##|\u0120|\u2581)")
_WORD_CHARACTER = re.compile(r"[^\W_]")  # a letter or a digit


def punctuation_ids(tok: Tokenizer) -> list[int]:
    """The ids of the vocabulary's tokens with no letter or digit (punctuation, symbols),
    sorted, and of its special tokens (``[PAD]``, ``[UNK]``, ``[CLS]``...).

    Examples
    --------
    >>> tok = train_tokenizer(["a good film!", "a bad film, sadly."], TokenizerConfig())
    >>> sorted(tok.id_to_token(i) for i in punctuation_ids(tok))
    ['!', ',', '.', '[PAD]', '[UNK]']
    """
    special = {t.content for t in tok.get_added_tokens_decoder().values() if t.special}
    return sorted(i for t, i in tok.get_vocab().items()
                  if t in special or not _WORD_CHARACTER.search(_PIECE_MARKS.sub("", t)))


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise ModelFolderError(f"missing tokenizer file: {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ModelFolderError(f"corrupt tokenizer file {path}: {str(exc)[:200]}") from None
