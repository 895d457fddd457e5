"""TextClassifier: the model folder in, Hugging Face pipeline-shaped predictions out.

A model folder holds ``config.json`` (the resolved config plus ``heads`` and
``textcnn_version``), ``model.safetensors`` and ``tokenizer.json``. Loading needs nothing else:
no training data, no GPU (tensors are always read onto the CPU).

Example
-------
>>> clf = TextClassifier.from_pretrained("runs/sst2")  # doctest: +SKIP
>>> clf.predict(["a gorgeous, witty film"])  # doctest: +SKIP
[{'sentiment': [{'label': 'positive', 'score': 0.97}]}]
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from tokenizers import Tokenizer

from . import __version__
from .config import BACKENDS, Config, from_dict
from .errors import ConfigError, ModelFolderError, TextCNNError
from .fileio import atomic_write, write_json
from .models import build_model
from .tokenizer import encode, load_tokenizer
from .train import Encoded, predict_logits

CONFIG, WEIGHTS, TOKENIZER = "config.json", "model.safetensors", "tokenizer.json"


class InputError(TextCNNError, TypeError):
    """Texts handed to ``predict`` are not a list of strings."""


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class TextClassifier:
    """A trained model with its tokenizer and label names.

    Parameters
    ----------
    model : torch.nn.Module
        Maps ``(ids, lengths)`` to ``{head: logits}``.
    tokenizer : tokenizers.Tokenizer
    config : Config
    heads : dict
        ``{head name: [label names in id order]}``.
    backend : str
        How predictions run (see ``BACKENDS``); ``self.backend`` names the one in use.
        ``self.model`` is always the trained torch model.
    """

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, config: Config,
                 heads: dict[str, list[str]], backend: str = "torch"):
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        self.heads = heads
        self.backend, self._forward = "torch", model
        if backend != "torch":
            self.set_backend(backend)

    def set_backend(self, backend: str) -> str:
        """Switch between "torch", "folded" and "auto" (for "onnx" load with
        ``from_pretrained(path, backend="onnx")``); returns the backend now in use."""
        from .folded import MAX_TABLE_BYTES, FoldedTextCNN, why_not_foldable

        if backend not in ("auto", "folded", "torch"):
            hint = " (load it with from_pretrained(path, backend='onnx'))" \
                if backend == "onnx" else f"; choose one of {', '.join(BACKENDS)}"
            raise InputError(f"cannot switch to backend {backend!r}{hint}")
        forward = self.model
        if backend != "torch":
            reason = why_not_foldable(self.model, MAX_TABLE_BYTES if backend == "auto" else None)
            if reason is None:
                forward, backend = FoldedTextCNN(self.model), "folded"
            elif backend == "folded":
                raise InputError(f"backend 'folded' does not fit this model: {reason}")
            else:
                backend = "torch"
        self.backend, self._forward = backend, forward
        return backend

    # -- folder I/O ----------------------------------------------------------------------------
    def save_pretrained(self, path: str | Path) -> Path:
        """Write config.json, model.safetensors and tokenizer.json (each atomically)."""
        path = Path(path)
        state = {k: v.detach().cpu().contiguous() for k, v in self.model.state_dict().items()}
        atomic_write(path / WEIGHTS, lambda tmp: save_file(state, tmp))
        atomic_write(path / TOKENIZER, lambda tmp: self.tokenizer.save(tmp))
        write_json(path / CONFIG, {**self.config.to_dict(), "heads": self.heads,
                                   "textcnn_version": __version__})
        return path

    @classmethod
    def from_pretrained(cls, path: str | Path, backend: str = "auto",
                        threads: int = 0) -> TextClassifier:
        """Load a model folder onto the CPU; a missing or corrupt file is a ModelFolderError.

        ``backend`` picks how predictions run (``BACKENDS``; "auto" is the fastest that keeps
        the probabilities within 1e-5 of the trained model); ``threads`` is onnxruntime's
        thread count (torch uses ``torch.set_num_threads``).
        """
        if backend == "onnx":
            try:
                from .export import OnnxClassifier
            except ImportError as exc:
                raise TextCNNError(f"backend 'onnx' needs onnxruntime ({exc}); "
                                   "pip install 'textcnn[onnx]'") from None
            return OnnxClassifier.from_pretrained(path, threads=threads)
        if backend not in BACKENDS:
            raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
        path = Path(path)
        if not path.is_dir():
            raise ModelFolderError(f"model folder not found: {path}")
        for name in (CONFIG, WEIGHTS, TOKENIZER):
            if not (path / name).is_file():
                hint = " (an unfinished run? try `textcnn train ... --resume`)" \
                    if (path / "checkpoint.safetensors").is_file() else ""
                raise ModelFolderError(f"model folder {path} is missing {name}{hint}")
        try:
            raw = json.loads((path / CONFIG).read_text(encoding="utf-8"))
            heads = raw["heads"]
            config = from_dict(raw, saved=True)
        except (ValueError, KeyError, TypeError, ConfigError) as exc:
            raise ModelFolderError(f"corrupt {path / CONFIG}: {exc}") from None
        tokenizer = load_tokenizer(path / TOKENIZER)
        try:
            state = load_file(str(path / WEIGHTS), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise ModelFolderError(f"corrupt {path / WEIGHTS}: {exc}") from None
        model = build_model(config.model, tokenizer.get_vocab_size(),
                            {h: len(names) for h, names in heads.items()})
        try:
            model.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0]
            raise ModelFolderError(f"{path / WEIGHTS} does not match {CONFIG}: {first}") from None
        model.eval()
        return cls(model, tokenizer, config, heads, backend)

    # -- prediction ----------------------------------------------------------------------------
    def _check_texts(self, texts) -> list[str]:
        if isinstance(texts, str):
            raise InputError("texts must be a list of strings, got a single string; wrap it in [ ]")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"texts[{i}] must be a string, got {type(t).__name__}")
        return texts

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (n, longest) and lengths (n,); texts past max_length are truncated."""
        return encode(self.tokenizer, self._check_texts(texts))

    def _heads(self, head: str | None) -> list[str]:
        if head is None:
            return list(self.heads)
        if head not in self.heads:
            raise InputError(f"unknown head {head!r}; this model has {', '.join(self.heads)}")
        return [head]

    def predict_proba(self, texts: list[str], head: str | None = None,
                      batch_size: int | None = None) -> dict[str, np.ndarray]:
        """``{head: probabilities (n, classes)}`` in input order."""
        ids, lengths = self.encode(texts)
        heads = self._heads(head)
        if len(lengths) == 0:
            return {h: np.zeros((0, len(self.heads[h])), dtype=np.float32) for h in heads}
        logits = self._logits(ids, lengths, batch_size or self.config.train.eval_batch_size)
        return {h: _softmax(logits[h]) for h in heads}

    def _logits(self, ids: np.ndarray, lengths: np.ndarray, batch_size: int
                ) -> dict[str, np.ndarray]:
        """``{head: logits (n, classes)}`` in input order: the backend hook (export.py's
        onnxruntime predictor overrides it; tokenising, softmax and top-k stay here)."""
        return predict_logits(self._forward, Encoded(ids, lengths), batch_size)

    def predict(self, texts: list[str], top_k: int = 1, head: str | None = None,
                batch_size: int | None = None) -> list[dict[str, list[dict]]]:
        """Top-``k`` labels with scores per head, one dict per text.

        Examples
        --------
        >>> clf.predict(["a gorgeous, witty film"], top_k=2)  # doctest: +SKIP
        [{'sentiment': [{'label': 'positive', 'score': 0.97},
                        {'label': 'negative', 'score': 0.03}]}]
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        probs = self.predict_proba(texts, head, batch_size)
        out: list[dict] = [{} for _ in range(len(next(iter(probs.values()))))]
        for h, p in probs.items():
            names = self.heads[h]
            k = min(top_k, len(names))
            top = np.argsort(-p, axis=1, kind="stable")[:, :k]
            for row, (ranks, scores) in enumerate(zip(top, p)):
                out[row][h] = [{"label": names[j], "score": round(float(scores[j]), 6)}
                               for j in ranks]
        return out
