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

from pathlib import Path

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from .config import TokenizerConfig
from .errors import ModelFolderError

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
    tok.train_from_iterator(texts, trainer=trainer, length=len(texts))
    assert tok.token_to_id(PAD) == 0 and tok.token_to_id(UNK) == 1
    return tok


def encode(tok: Tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Batch-encode ``texts`` -> ``(ids (n, longest) int32, lengths (n,) int64)``."""
    # encode_batch_fast skips character offsets (encode_with_offsets computes them)
    batch = getattr(tok, "encode_batch_fast", tok.encode_batch)
    return _pack([e.ids for e in batch(texts, add_special_tokens=False)])


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
    encodings = tok.encode_batch(texts, add_special_tokens=False)
    return (*_pack([e.ids for e in encodings]), [e.offsets for e in encodings])


def load_tokenizer(path: str | Path) -> Tokenizer:
    path = Path(path)
    if not path.is_file():
        raise ModelFolderError(f"missing tokenizer file: {path}")
    try:
        return Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise ModelFolderError(f"corrupt tokenizer file {path}: {str(exc)[:200]}") from None
