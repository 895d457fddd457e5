"""The teachers' logit cache: one safetensors file per teacher, its logits keyed by a hash of
each text, so a text is scored by a teacher once and a student run reuses every score.

Example
-------
>>> cache = LogitCache(tmp_dir / "logits", "teacher-a")
>>> score = lambda texts: np.array([[len(t), 0.0] for t in texts], dtype=np.float32)
>>> logits, scored = cache.logits(["ab", "abc", "ab"], score)
>>> logits[:, 0].tolist(), scored
([2.0, 3.0, 2.0], 2)
>>> cache.logits(["abc"], lambda texts: 1 / 0)[1]  # cached: the teacher is not called
0
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ...fileio import atomic_write

Score = Callable[[list[str]], np.ndarray]  # texts -> (n, classes) float32 logits


def text_keys(texts: Sequence[str]) -> np.ndarray:
    """``(n,)`` int64: the first 8 bytes of each text's BLAKE2b hash (UTF-8)."""
    return np.array([int.from_bytes(hashlib.blake2b(t.encode("utf-8"), digest_size=8).digest(),
                                    "little", signed=True) for t in texts], dtype=np.int64)


class LogitCache:
    """The logits of the teacher ``identity`` (see :func:`.teacher.identity`), kept in
    ``folder/<identity>.safetensors`` as ``keys (n,)`` and ``logits (n, classes)``."""

    def __init__(self, folder: str | Path, identity: str):
        self.path = Path(folder) / f"{identity}.safetensors"

    def read(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The stored keys and logits (none yet: no keys, None)."""
        if not self.path.is_file():
            return np.zeros(0, dtype=np.int64), None
        from safetensors.numpy import load_file

        stored = load_file(str(self.path))
        return stored["keys"], stored["logits"]

    def logits(self, texts: Sequence[str], score: Score) -> tuple[np.ndarray, int]:
        """``(logits (n, classes) of texts in order, how many texts score was called on)``:
        only the texts not in the cache are scored, and added to it."""
        keys = text_keys(texts)
        stored_keys, stored = self.read()
        row = {int(k): i for i, k in enumerate(stored_keys)}
        missing = {}
        for text, key in zip(texts, keys.tolist()):
            if key not in row and key not in missing:
                missing[key] = text
        if missing:
            new = np.asarray(score(list(missing.values())), dtype=np.float32)
            if new.ndim != 2 or len(new) != len(missing):
                raise ValueError(f"the teacher gave logits {new.shape} for {len(missing)} texts")
            base = len(stored_keys)
            row.update({key: base + i for i, key in enumerate(missing)})
            stored_keys = np.concatenate([stored_keys, np.fromiter(missing, dtype=np.int64)])
            stored = new if stored is None else np.concatenate([stored, new])
            self._write(stored_keys, stored)
        return stored[[row[k] for k in keys.tolist()]], len(missing)

    def _write(self, keys: np.ndarray, logits: np.ndarray) -> None:
        from safetensors.numpy import save_file

        atomic_write(self.path, lambda tmp: save_file({"keys": keys, "logits": logits}, tmp))
