"""Trained classifiers: inputs in, Hugging Face pipeline-shaped predictions out.

:class:`Classifier` holds what every trained model does the same way: run its backend over
prepared inputs, turn logits into probabilities and answers as each head says
(:mod:`textcnn.heads`: softmax and top-k, or a sigmoid per label and every label at or over
its threshold), evaluate, save. :class:`TextClassifier` and
:class:`ImageClassifier` differ only in how their inputs become arrays (:meth:`prepare`).
:func:`load` (``textcnn.load``) opens any model folder as the classifier its ``kind`` names;
``from_pretrained`` on a subclass also checks the folder holds that kind of model.

Example
-------
>>> import textcnn
>>> clf = textcnn.load(model_dir)
>>> clf.predict(["a gorgeous, witty film"])  # doctest: +ELLIPSIS
[{'sentiment': [{'label': '...', 'score': ...}]}]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch
from tokenizers import Tokenizer

from .backends import BackendError, make_backend
from .config import Config
from .data.batch import Encoded
from .data.images import ImageSplit
from .devices import resolve_device
from .errors import InputError, ModelFolderError
from .fileio import atomic_write
from .folder import (
    CONFIG,
    TOKENIZER,
    WEIGHTS,
    check_tokenizer_size,
    fresh_onnx_graph,
    read_config,
    read_network,
    require_files,
    write_folder,
)
from .heads import HEADS, Head, head_for, sigmoid, softmax  # noqa: F401 (re-exported)
from .texts import char_limit, check_text
from .tokenizer import encode, load_tokenizer


def top_k_labels(probabilities: dict[str, np.ndarray], heads: dict[str, list[str]], k: int,
                 kinds: dict[str, Head] | None = None) -> list[dict[str, list[dict]]]:
    """The labels each head answers with their scores, one dict per row (input order): the
    ``k`` best, or what the head's :meth:`~textcnn.heads.Head.ranked` says (a multi-label head
    answers every label at or over its threshold, best first, possibly none; ``k`` does not
    apply to it). A head missing from ``kinds`` answers as a softmax head.

    Examples
    --------
    >>> top_k_labels({"s": np.array([[0.2, 0.8]])}, {"s": ["neg", "pos"]}, 1)
    [{'s': [{'label': 'pos', 'score': 0.8}]}]
    >>> from textcnn.heads import HEADS
    >>> tags = HEADS["multi_label"]()
    >>> tags.thresholds = np.array([0.5, 0.05, 0.95])
    >>> top_k_labels({"t": np.array([[0.7, 0.1, 0.9]])}, {"t": ["a", "b", "c"]}, 1, {"t": tags})
    [{'t': [{'label': 'a', 'score': 0.7}, {'label': 'b', 'score': 0.1}]}]
    """
    kinds = kinds or {}
    rows = len(next(iter(probabilities.values())))
    out: list[dict] = [{} for _ in range(rows)]
    for head, p in probabilities.items():
        names = heads[head]
        ranked = kinds.get(head, _SOFTMAX).ranked(p, k)
        for row, (ranks, scores) in enumerate(zip(ranked, p)):
            out[row][head] = [{"label": names[j], "score": round(float(scores[j]), 6)}
                              for j in ranks]
    return out


_SOFTMAX = HEADS["softmax"]()


class Classifier:
    """A trained model with its config and label names; subclasses say how inputs are prepared.

    Parameters
    ----------
    model : torch.nn.Module
        Maps prepared inputs to ``{head: logits}``; ``self.model`` is always the trained network.
    config : Config
    heads : dict
        ``{head name: [label names in id order]}``.
    backend : str
        How predictions run (:data:`textcnn.backends.BACKENDS`); ``self.backend`` names the one
        in use, ``self.engine`` is it.
    threads : int
        onnxruntime's thread count for the ``onnx`` backend (torch uses
        ``torch.set_num_threads``).
    """

    kind: ClassVar[str] = ""  # what the model folder's config.json says: "text" or "image"

    def __init__(self, model: torch.nn.Module, config: Config, heads: dict[str, list[str]],
                 backend: str = "torch", threads: int = 0):
        self.model = model
        self.config = config
        self.heads = heads
        self.threads = threads
        self.folder: Path | None = None  # the folder it was loaded from (its model.onnx)
        # {head: Head}: what each head's logits mean, with what it fitted on validation
        self.head_objects: dict[str, Head] = {h: head_for(config, h) for h in heads}
        self.timing: dict = {}  # the run that trained it, when it did: runs.run_timing
        self.set_backend(backend)

    @property
    def multi_label(self) -> list[str]:
        """The heads that answer label sets (``tasks.<head>.multi_label``)."""
        return [h for h, kind in self.head_objects.items() if kind.multi_label]

    def threshold(self, head: str) -> np.ndarray:
        """A multi-label head's threshold per label, in label order."""
        return self.head_objects[head].threshold(len(self.heads[head]))

    def probabilities(self, head: str, logits: np.ndarray) -> np.ndarray:
        """A head's logits ``(n, outputs)`` as probabilities ``(n, labels)``, as its
        :class:`~textcnn.heads.Head` says: e.g. the softmax over the labels, or a sigmoid per
        label for a multi-label head (each in [0, 1]; rows need not sum to 1)."""
        return self.head_objects[head].probabilities(logits)

    def set_backend(self, backend: str) -> str:
        """Switch to ``backend`` (``auto``, ``folded``, ``torch`` or ``onnx``); returns the name
        of the backend now in use (``auto`` resolves to ``folded`` or ``torch``)."""
        try:
            self.engine = make_backend(backend, self.model, self.heads, self._onnx_graph(backend),
                                       self.threads)
        except BackendError as exc:
            raise InputError(str(exc)) from None
        self.backend = self.engine.name
        return self.backend

    def _onnx_graph(self, backend: str) -> Path | None:
        """The folder's ``model.onnx`` when it is at least as new as the weights."""
        if backend != "onnx" or self.folder is None:
            return None
        return fresh_onnx_graph(self.folder)

    # -- inputs ----------------------------------------------------------------------------
    def prepare(self, inputs) -> Any:
        """Inputs as a batch source (``len()``, ``lengths``, ``batch(idx, min_len)``)."""
        raise NotImplementedError

    def admit(self, inputs) -> Any:
        """``inputs`` if ``predict`` takes them (a kind may refuse some), else an error."""
        return inputs

    def select_heads(self, head: str | None) -> list[str]:
        """``[head]``, or every head when ``head`` is None; an unknown head fails naming them."""
        if head is None:
            return list(self.heads)
        if head not in self.heads:
            raise InputError(f"unknown head {head!r}; this model has {', '.join(self.heads)}")
        return [head]

    # -- prediction ------------------------------------------------------------------------
    def predict_proba(self, inputs, head: str | None = None,
                      batch_size: int | None = None) -> dict[str, np.ndarray]:
        """``{head: probabilities (n, classes)}`` in input order (see :meth:`probabilities`)."""
        data = self.prepare(self.admit(inputs))
        heads = self.select_heads(head)
        if len(data) == 0:
            return {h: np.zeros((0, len(self.heads[h])), dtype=np.float32) for h in heads}
        logits = self.engine.logits(data, batch_size or self.config.train.eval_batch_size)
        return {h: self.probabilities(h, logits[h]) for h in heads}

    def predict(self, inputs, top_k: int = 1, head: str | None = None,
                batch_size: int | None = None) -> list[dict[str, list[dict]]]:
        """Top-``k`` labels with scores per head (or only ``head``), one dict per input:
        ``[{head: [{"label": name, "score": probability}, ...]}, ...]``, best first. A
        multi-label head lists every label at or over its threshold instead (none, one or
        several; ``top_k`` does not apply)."""
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise InputError(f"top_k must be a positive integer, got {top_k!r}")
        probabilities = self.predict_proba(inputs, head, batch_size)
        return top_k_labels(probabilities, self.heads, top_k, self.head_objects)

    def evaluate(self, inputs, labels, head: str | None = None) -> dict[str, float]:
        """Accuracy, macro-F1 and loss of ``head`` (the only head when None) on ``inputs``.

        ``labels`` are label ids in the order of ``self.heads[head]``; for a multi-label head,
        ``(n, labels)`` multi-hot rows in that order (then the metrics are
        :func:`~textcnn.metrics.multilabel_metrics` at the head's thresholds).
        """
        if head is None and len(self.heads) > 1:
            raise InputError(f"this model has heads {', '.join(self.heads)}: choose one")
        (head,) = self.select_heads(head)
        data = self.prepare(inputs)
        logits = self.engine.logits(data, self.config.train.eval_batch_size)[head]
        return self.head_objects[head].metrics(np.asarray(labels), logits)

    # -- the model folder ------------------------------------------------------------------
    folder_files: ClassVar[tuple[str, ...]] = ()  # files besides config.json and the weights

    @classmethod
    def open_folder(cls, path: Path, saved: dict) -> tuple[int, Any]:
        """``(input size, reader)`` from a model folder and its ``config.json`` data: what
        turns this kind's inputs into arrays (a tokenizer, an image format), as
        :meth:`from_network` takes it."""
        raise NotImplementedError

    @classmethod
    def from_network(cls, model: torch.nn.Module, config: Config, heads: dict[str, list[str]],
                     reader: Any, backend: str = "torch", threads: int = 0) -> Classifier:
        """The classifier of this kind answering with ``model``; ``reader`` is what
        :meth:`open_folder` gives, or what a run's data was prepared with."""
        raise NotImplementedError

    def folder_fields(self) -> dict:
        """What ``config.json`` holds besides the config, ``kind``, ``heads`` and version."""
        return {}

    def save_files(self, path: Path) -> None:
        """Write the files this kind of model needs beside the weights (e.g. the tokenizer)."""

    def save(self, path: str | Path) -> Path:
        """Write the model folder (config.json, model.safetensors, and e.g. tokenizer.json)."""
        return write_folder(self, path)

    @classmethod
    def from_pretrained(cls, path: str | Path, backend: str = "auto", threads: int = 0,
                        device: str = "cpu", verify: bool | None = None) -> Classifier:
        """Load a model folder of this kind onto the CPU or ``device`` (see
        :func:`textcnn.load`)."""
        clf = load(path, backend, threads, device, verify)
        if not isinstance(clf, cls):
            raise ModelFolderError(f"{path} holds a model of kind '{clf.kind}', not "
                                   f"'{cls.kind}'; open it with textcnn.load(path)")
        return clf


class TextClassifier(Classifier):
    """A trained text model with its tokenizer: texts in, labels out.

    Parameters
    ----------
    model, config, heads, backend, threads
        As :class:`Classifier`.
    tokenizer : tokenizers.Tokenizer

    Examples
    --------
    >>> clf = TextClassifier.from_pretrained(model_dir, backend="torch")
    >>> clf.backend, list(clf.heads)
    ('torch', ['sentiment'])
    >>> probabilities = clf.predict_proba(["a gorgeous, witty film", ""])["sentiment"]
    >>> probabilities.shape, bool(np.allclose(probabilities.sum(axis=1), 1))
    ((2, 2), True)
    """

    kind = "text"
    folder_files = (TOKENIZER,)

    def __init__(self, model: torch.nn.Module, tokenizer: Tokenizer, config: Config,
                 heads: dict[str, list[str]], backend: str = "torch", threads: int = 0):
        self.tokenizer = tokenizer
        super().__init__(model, config, heads, backend, threads)

    @property
    def max_chars(self) -> int:
        """The most characters of a text the model reads (:func:`textcnn.texts.char_limit`);
        the server refuses longer texts."""
        return char_limit(self.config.tokenizer.max_length)

    def _check_texts(self, texts) -> list[str]:
        """``texts`` as a list, each one a string the rules of :mod:`textcnn.texts` accept (else
        :class:`InputError` naming it)."""
        texts = [texts] if isinstance(texts, str) else list(texts)  # one text: a list of one
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InputError(f"texts[{i}] must be a string, got {type(t).__name__}")
            check_text(t, f"texts[{i}]", InputError)
        return texts

    def admit(self, texts):
        """As :meth:`_check_texts`: what ``predict`` and ``explain`` take. A text over
        :attr:`max_chars` characters is read to that length, as any text is read to its first
        ``max_length`` tokens (:meth:`prepare` flags both as ``truncated``). An ``Encoded`` is
        passed through."""
        if isinstance(texts, Encoded):
            return texts
        return self._check_texts(texts)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids (n, longest) and lengths (n,); texts past max_length are truncated."""
        return encode(self.tokenizer, self._check_texts(texts))

    def prepare(self, texts: list[str] | Encoded) -> Encoded:
        """Texts as token ids, with ``truncated``: which had more than ``max_length`` tokens (an
        ``Encoded`` is passed through)."""
        if isinstance(texts, Encoded):
            return texts
        ids, lengths, truncated = encode(self.tokenizer, self._check_texts(texts), flags=True)
        return Encoded(ids, lengths, None, truncated)

    def explain(self, texts: list[str], head: str | None = None, top_k: int | None = 5
                ) -> list[dict]:
        """Per text and head: the predicted label, the token windows that drove its logit with
        their contributions, and a per-token attribution; exact for Kim's TextCNN
        (contributions + bias = logit), else integrated gradients marked ``"exact": false``.
        See :func:`textcnn.explain.explain` for the shape.

        Examples
        --------
        >>> clf = TextClassifier.from_pretrained(model_dir)
        >>> answer = clf.explain(["a gorgeous, witty film"])[0]["heads"]["sentiment"]
        >>> answer["exact"], answer["label"] == clf.predict(["a gorgeous, witty film"])[0][
        ...     "sentiment"][0]["label"]
        (True, True)
        """
        from .explain import explain

        return explain(self, texts, head, top_k)

    @classmethod
    def open_folder(cls, path: Path, saved: dict) -> tuple[int, Tokenizer]:
        check_tokenizer_size(path / TOKENIZER, path / WEIGHTS)  # before reading it
        tokenizer = load_tokenizer(path / TOKENIZER)
        return tokenizer.get_vocab_size(), tokenizer

    @classmethod
    def from_network(cls, model, config, heads, reader, backend="torch", threads=0):
        return cls(model, reader, config, heads, backend, threads)

    def save_files(self, path: Path) -> None:
        atomic_write(path / TOKENIZER, lambda tmp: self.tokenizer.save(tmp))


class ImageClassifier(Classifier):
    """A trained image model with its label names, image shape and pixel scale.

    ``predict_proba`` / ``predict`` take raw pixels as in the dataset files ((n, H, W) or
    (n, C, H, W); digits 0-16, MNIST 0-255) and answer in the shape of ``TextClassifier``.

    Parameters
    ----------
    model, config, heads, backend, threads
        As :class:`Classifier` (images run on the ``torch`` backend; ``auto`` picks it).
    shape : tuple
        ``(channels, height, width)`` the model takes.
    scale : float
        What raw pixels are divided by (digits 16, 8-bit images 255).

    Examples
    --------
    >>> from textcnn.config import from_dict
    >>> from textcnn.models import ImageCNN
    >>> config = from_dict({"tasks": {"digit": {"dataset": "digits"}},
    ...                     "model": {"name": "imagecnn", "blocks": [4]}})
    >>> model = ImageCNN(1, {"digit": 10}, blocks=[4]).eval()
    >>> clf = ImageClassifier(model, config, {"digit": list("0123456789")}, (1, 8, 8), 16.0)
    >>> len(clf.predict(np.zeros((3, 8, 8)), top_k=2)[0]["digit"])
    2
    """

    kind = "image"

    def __init__(self, model: torch.nn.Module, config: Config, heads: dict[str, list[str]],
                 shape: tuple[int, int, int], scale: float = 255.0, backend: str = "torch",
                 threads: int = 0):
        self.shape = tuple(int(v) for v in shape)
        self.scale = float(scale)
        super().__init__(model, config, heads, backend, threads)

    def prepare(self, images) -> ImageSplit:
        """Raw pixels (or an already scaled ``ImageSplit``) as a batch source."""
        if isinstance(images, ImageSplit):
            if images.shape != self.shape:
                raise InputError(f"images of shape {images.shape}; this model takes {self.shape}")
            return images
        images = np.asarray(images, dtype=np.float32)
        if images.ndim == 3:
            images = images[:, None]
        if images.ndim != 4 or images.shape[1:] != self.shape:
            raise InputError(f"images of shape {images.shape[1:]}; this model takes "
                             f"{self.shape} (or {self.shape[1:]} for one channel)")
        return ImageSplit(np.ascontiguousarray(images / self.scale), scale=self.scale)

    @classmethod
    def open_folder(cls, path: Path, saved: dict) -> tuple[int, tuple]:
        try:
            shape = tuple(int(v) for v in saved["image"]["shape"])
            scale = float(saved["image"]["scale"])
            if len(shape) != 3 or min(shape) < 1 or not scale > 0:
                raise ValueError(f"shape {list(shape)} / scale {scale}")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFolderError(f"corrupt {path / CONFIG}: 'image' must hold the image shape "
                                   f"[channels, height, width] and pixel scale ({exc})") from None
        return shape[0], (shape, scale)

    @classmethod
    def from_network(cls, model, config, heads, reader, backend="torch", threads=0):
        shape, scale = reader
        return cls(model, config, heads, shape, scale, backend, threads)

    def folder_fields(self) -> dict:
        return {"image": {"shape": list(self.shape), "scale": self.scale}}


# a model folder's ``kind`` -> the classifier that opens it
KINDS: dict[str, type[Classifier]] = {c.kind: c for c in (TextClassifier, ImageClassifier)}


def load(path: str | Path, backend: str = "auto", threads: int = 0, device: str = "cpu",
         verify: bool | None = None) -> Classifier:
    """Open any model folder onto the CPU (or ``device``): a :class:`TextClassifier` or an
    :class:`ImageClassifier`, as its ``config.json`` says (:mod:`textcnn.folder` has the
    folder's files and the checks made on them).

    Parameters
    ----------
    path : path
        The model folder (what ``textcnn train`` wrote).
    backend : str
        How predictions run: ``auto`` (the fastest that keeps the probabilities within 1e-5 of
        the trained model's), ``folded``, ``torch`` or ``onnx`` (uses the folder's ``model.onnx``
        when it is newer than the weights, else exports in memory).
    threads : int
        onnxruntime's thread count (torch uses ``torch.set_num_threads``).
    device : str
        Where the forward pass runs: ``cpu`` (default), ``auto``, ``cuda``, ``cuda:N`` or
        ``mps``; off the CPU the backend is ``torch``. The weights are read onto the CPU first,
        whatever device trained them.
    verify : bool, optional
        Check the weights file against ``config.json``'s ``weights_sha256`` (default: yes,
        unless the environment variable ``TEXTCNN_VERIFY_WEIGHTS`` is ``0``). ``False`` is for
        weights you changed on purpose; ``clf.save(path)`` records the new hash.

    Raises
    ------
    ModelFolderError
        The folder or one of its files is missing, corrupt, or does not match the others (the
        weights' SHA-256 included).

    Examples
    --------
    >>> clf = load(model_dir, backend="torch")
    >>> type(clf).__name__, clf.backend, clf.heads["sentiment"]
    ('TextClassifier', 'torch', ['negative', 'positive'])
    """
    path = Path(path)
    raw, config = read_config(path)
    if raw["kind"] not in KINDS:
        raise ModelFolderError(f"unknown model kind {raw['kind']!r} (known: {', '.join(KINDS)})")
    kind = KINDS[raw["kind"]]
    require_files(path, (WEIGHTS, *kind.folder_files))
    input_size, reader = kind.open_folder(path, raw)
    model = read_network(path, raw, config, input_size, verify)
    model.to(resolve_device(device)).eval()
    clf = kind.from_network(model, config, raw["heads"], reader, "torch", threads)
    clf.folder, clf.trained_at = path, raw.get("trained_at")  # a re-saved copy keeps the date
    for h, head in clf.head_objects.items():
        head.load_state({k: raw[k][h] for k in head.folder_keys if h in raw.get(k, {})},
                        raw["heads"][h])
    clf.set_backend(backend)
    return clf
