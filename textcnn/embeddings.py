"""Pretrained embeddings: word-vector files and Hugging Face model folders.

``model.pretrained`` names a source; :mod:`textcnn.sources` finds it (a path, an installed
package shipping a model folder, or a model folder zipped across installed packages). This
module reads what it holds:

- a word2vec binary file (``*.bin``: a ``"count dim"`` header line, then per word its bytes, a
  space and ``dim`` little-endian float32s);
- a text vector file: word2vec text, fastText ``.vec`` (both with a ``"count dim"`` header) or
  GloVe (no header), one ``word v1 ... vdim`` per line, optionally gzip-compressed (``*.gz``);
- a Hugging Face model folder (``tokenizer.json`` + ``*.safetensors``): its input embedding
  matrix (:func:`textcnn.sources.folder_embeddings` reads it), and, with ``tokenizer.kind:
  pretrained``, its tokenizer.

Matching a file to the trained vocabulary (:func:`match_vocabulary`): a token takes the vector of
the same word, else of the first word in the file that lower-cases to it. The rest (Kim 2014's
rule) are drawn from U[-a, a] with ``a = sqrt(3 * var)``, ``var`` the variance of the matched
vectors' values, so both kinds of row have the same variance. Row 0 ([PAD]) is zero. The log
names how many vocabulary entries were found.

Example
-------
>>> from textcnn.config import TokenizerConfig
>>> from textcnn.tokenizer import train_tokenizer
>>> tok = train_tokenizer(["a good film", "a bad film"], TokenizerConfig())
>>> _ = (tmp_dir / "vectors.txt").write_text("good 1.0 0.0\\nfilm 0.0 1.0\\n")  # word2vec text
>>> matrix, report = pretrained_matrix(str(tmp_dir / "vectors.txt"), tok)
>>> matrix.shape  # (vocabulary, vector size)
(6, 2)
>>> report.split(": ")[1]
'2 of 5 vocabulary entries found (40.0%); 3 drawn from U[-0.866, 0.866]'
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .config import TokenizerConfig
from .errors import ConfigError, DataError
from .sources import folder_embeddings, is_model_folder, resolve_source


# -- readers -----------------------------------------------------------------------------------
def _entry_filled_by(word: str, wanted: set[str] | None, found: dict) -> str | None:
    """The vocabulary entry ``word`` fills, if any (exact match wins over lower-cased)."""
    if wanted is None or word in wanted:
        return word
    lower = word.lower()
    if lower in wanted and lower not in found:
        return lower
    return None


def read_word2vec_binary(path: str | Path, wanted: set[str] | None = None
                         ) -> tuple[dict[str, np.ndarray], int]:
    """``({word: vector}, dim)`` from a word2vec ``.bin`` file, keeping only ``wanted`` words."""
    path = Path(path)
    found: dict[str, np.ndarray] = {}
    exact: set[str] = set()
    with open(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise DataError(f"{path}:1: a word2vec binary file starts with 'count dim', "
                            f"got {b' '.join(header)[:60]!r}")
        count, dim = map(int, header)
        width = 4 * dim
        for i in range(count):
            word = bytearray()
            while True:
                ch = fh.read(1)
                if not ch:
                    raise DataError(f"{path}: truncated at word {i + 1} of {count}")
                if ch == b" ":
                    break
                if ch != b"\n":  # some writers end each vector with a newline
                    word += ch
            raw = fh.read(width)
            if len(raw) != width:
                raise DataError(f"{path}: truncated in the vector of word {i + 1} of {count}")
            text = word.decode("utf-8", errors="replace")
            key = _entry_filled_by(text, wanted, found)
            if key is not None and key not in exact:
                found[key] = np.frombuffer(raw, dtype="<f4").astype(np.float32)
                if key == text:
                    exact.add(key)
    return found, dim


def read_text_vectors(path: str | Path, wanted: set[str] | None = None
                      ) -> tuple[dict[str, np.ndarray], int]:
    """``({word: vector}, dim)`` from a word2vec-text / fastText ``.vec`` / GloVe file."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    found: dict[str, np.ndarray] = {}
    exact: set[str] = set()
    dim = None
    with opener(path, "rt", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            parts = line.rstrip("\n\r ").split(" ")
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec text / fastText header: "count dim"
                continue
            if len(parts) < 2:
                if not line.strip():
                    continue
                raise DataError(f"{path}:{lineno}: expected 'word v1 ... vN', got {line[:60]!r}")
            if dim is None:
                dim = len(parts) - 1
            if len(parts) - 1 != dim:
                raise DataError(f"{path}:{lineno}: {len(parts) - 1} values, expected {dim} "
                                f"(word {parts[0][:40]!r})")
            key = _entry_filled_by(parts[0], wanted, found)
            if key is None or key in exact:
                continue
            try:
                found[key] = np.asarray(parts[1:], dtype=np.float32)
            except ValueError:
                raise DataError(f"{path}:{lineno}: a value of word {parts[0][:40]!r} is not a "
                                "number") from None
            if key == parts[0]:
                exact.add(key)
    if dim is None:
        raise DataError(f"{path}: no vectors in the file")
    return found, dim


def read_vectors(path: str | Path, wanted: set[str] | None = None
                 ) -> tuple[dict[str, np.ndarray], int]:
    """Dispatch on the file name: ``*.bin`` is word2vec binary, anything else text."""
    path = Path(path)
    if path.suffix == ".bin":
        return read_word2vec_binary(path, wanted)
    return read_text_vectors(path, wanted)


def folder_tokenizer(folder: str | Path, cfg: TokenizerConfig) -> Tokenizer:
    """The folder's own tokenizer, with our truncation (``cfg.max_length``) and no padding."""
    folder = Path(folder)
    try:
        tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
        raise DataError(f"cannot read {folder / 'tokenizer.json'}: {str(exc)[:200]}") from None
    tok.no_padding()
    tok.enable_truncation(cfg.max_length)
    return tok


# -- matching ----------------------------------------------------------------------------------
def match_vocabulary(vocab: dict[str, int], vectors: dict[str, np.ndarray], dim: int,
                     seed: int = 0) -> tuple[np.ndarray, int, float]:
    """``(matrix (len(vocab), dim), hits, a)``: found rows copied, the rest U[-a, a], row 0 zero.

    ``a = sqrt(3 * var)`` with ``var`` the variance of the found vectors' values (Kim's rule);
    0.25 when nothing is found.
    """
    rows = len(vocab)
    hits = [(i, vectors[w]) for w, i in vocab.items() if w in vectors and i != 0]
    if hits:
        values = np.stack([v for _, v in hits])
        a = float(np.sqrt(3.0 * values.var()))
    else:
        a = 0.25
    rng = np.random.default_rng(seed)
    matrix = rng.uniform(-a, a, size=(rows, dim)).astype(np.float32)
    for i, vector in hits:
        matrix[i] = vector
    matrix[0] = 0.0
    return matrix, len(hits), a


def pretrained_matrix(source: str, tokenizer: Tokenizer, seed: int = 0
                      ) -> tuple[np.ndarray, str]:
    """The embedding matrix for ``tokenizer``'s vocabulary from ``source``, and a log line."""
    path = resolve_source(source)
    vocab = tokenizer.get_vocab()
    size = tokenizer.get_vocab_size()
    if is_model_folder(path):
        folder_vocab = Tokenizer.from_file(str(path / "tokenizer.json")).get_vocab()
        if folder_vocab != vocab:
            raise ConfigError.for_key("model.pretrained", f"'{path}' holds embeddings that "
                                      "belong to its own tokenizer; set tokenizer.kind: pretrained")
        matrix = folder_embeddings(path, size)
        matrix[0] = 0.0  # [PAD]: padded and unpadded texts must see the same zeros
        return matrix, (f"pretrained {path}: the folder's {size:,} x {matrix.shape[1]} input "
                        "embeddings (its tokenizer)")
    if path.is_dir():
        raise ConfigError.for_key("model.pretrained", f"'{path}' is a folder without "
                                  "tokenizer.json (expected a vector file or a model folder)")
    vectors, dim = read_vectors(path, set(vocab))
    matrix, hits, a = match_vocabulary(vocab, vectors, dim, seed)
    rest = size - 1 - hits
    return matrix, (f"pretrained {path}: {hits:,} of {size - 1:,} vocabulary entries found "
                    f"({100 * hits / max(size - 1, 1):.1f}%); {rest:,} drawn from "
                    f"U[-{a:.3f}, {a:.3f}]")


def pca_reduce(matrix: np.ndarray, dim: int) -> tuple[np.ndarray, str]:
    """``matrix`` (vocab, d) projected on its ``dim`` principal components (an orthonormal basis
    of the centred rows: distances and scale are kept; row 0, padding, stays zero), and a log
    line; what ``model.embedding_reduce: pca`` gives the convolutions: ``dim`` input channels
    instead of ``d``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> table = rng.normal(size=(50, 8)).astype(np.float32) * np.arange(1, 9, dtype=np.float32)
    >>> reduced, line = pca_reduce(table, 3)
    >>> reduced.shape, [round(float(s), 1) for s in reduced[1:].std(axis=0)]  # the widest axes
    ((50, 3), [9.7, 7.0, 5.6])
    >>> line
    'reduced to its 3 principal components (77.1% of the variance)'
    """
    if not 0 < dim < matrix.shape[1]:
        raise ConfigError.for_key(
            "model.embedding_dim", f"is {dim}; model.embedding_reduce: pca needs 0 < "
            f"embedding_dim < {matrix.shape[1]} (the pretrained vectors' size)")
    rows = matrix[1:].astype(np.float64)
    centered = rows - rows.mean(axis=0)
    variances, vectors = np.linalg.eigh(centered.T @ centered / len(centered))
    top = np.argsort(variances)[::-1][:dim]
    reduced = np.zeros((len(matrix), dim), dtype=np.float32)
    reduced[1:] = centered @ vectors[:, top]
    kept = 100 * variances[top].sum() / variances.sum()
    return reduced, f"reduced to its {dim} principal components ({kept:.1f}% of the variance)"
