"""Text and images: the one place where the two kinds of input differ.

A :class:`Modality` supplies what differs between a text model and an image model on the way
from a config to a classifier: how a task's dataset is loaded, how splits become arrays (a
tokenizer trained and applied, or pixels scaled), the model's input size (vocabulary or image
channels), what a checkpoint and a model folder carry besides the weights, and which classifier
answers (:meth:`Modality.classifier`, one per kind of input). Everything else (the conv core,
the trainer, the folder, the reports) is shared. How the data is read is not here: a streamed
training split, for one, is a kind of split (:mod:`textcnn.data.stream`) that the text modality
prepares, not a modality of its own.

Example
-------
>>> from textcnn.config import from_dict
>>> config = from_dict({"tasks": {"digit": {"dataset": "digits"}},
...                     "model": {"name": "imagecnn", "blocks": [8]}})
>>> modality_for(config).name
'image'
>>> digits = IMAGE.load_dataset(config.tasks["digit"])
>>> data = modality_for(config).prepare(config, {"digit": digits})
>>> data.input_size, data.description
(1, 'images 1x8x8')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tokenizers import Tokenizer

from .classifier import Classifier, ImageClassifier, TextClassifier
from .config import Config, TaskConfig
from .data import RawDataset, load_raw, make_splits
from .data.batch import Encoded
from .data.images import ImageSplit, image_format, load_images
from .data.labels import check_trainable
from .data.stream import StreamedDataset, StreamedSplit, load_stream
from .errors import ConfigError, DataError, ModelFolderError
from .tokenizer import count_cut, encode, max_chars, punctuation_ids, train_tokenizer

Log = Callable[[str], None]


@dataclass
class PreparedData:
    """Everything a run needs from its data, built once per run (and per CV fold).

    ``splits`` maps ``task -> split -> arrays`` (``Encoded`` token ids, ``ImageSplit``, or a
    training split streamed from disk, :class:`~textcnn.data.stream.StreamedSplit`);
    :meth:`make_classifier` wraps a trained model with what its inputs need (``reader``: the
    tokenizer, or the image format).
    """

    heads: dict[str, list[str]]  # task -> label names
    splits: dict[str, dict[str, Any]]
    input_size: int  # vocabulary size (text) or image channels (images)
    description: str  # for the run's log, e.g. "vocabulary 16185"
    modality: Modality
    reader: Any  # what turns inputs into arrays: a Tokenizer, or (image shape, pixel scale)
    checkpoint_state: dict = field(default_factory=dict)  # what --resume needs besides weights
    tokenizer: Tokenizer | None = None
    # training callbacks the data brings (training.callbacks.Callback; distillation's loss)
    callbacks: list = field(default_factory=list)

    def make_classifier(self, model: torch.nn.Module, config: Config, heads: dict,
                        backend: str = "torch", threads: int = 0) -> Classifier:
        """The classifier answering with the trained ``model``."""
        return self.modality.classifier(model, config, heads, self.reader, backend, threads)


class Modality:
    """What a kind of input brings to a run; see the module docstring."""

    name = ""
    classifier_class: type[Classifier] = Classifier  # what answers with a trained model

    def load_dataset(self, task: TaskConfig, data_dir=None) -> RawDataset:
        raise NotImplementedError

    def classifier(self, model: torch.nn.Module, config: Config, heads: dict, reader: Any,
                   backend: str = "torch", threads: int = 0) -> Classifier:
        """The classifier of this kind of input answering with ``model``; ``reader`` is what
        :meth:`prepare` gives (a tokenizer, an image format)."""
        return self.classifier_class.from_network(model, config, heads, reader, backend, threads)

    def prepare(self, config: Config, datasets: dict[str, RawDataset], fold: int = 0,
                saved_state: dict | None = None) -> PreparedData:
        """Cut every task's splits (fold ``fold`` is the test set of a CV dataset) and turn them
        into arrays; ``saved_state`` is what an earlier run of the same config kept besides its
        weights (``PreparedData.checkpoint_state``, e.g. in a checkpoint being resumed)."""
        raise NotImplementedError

    def inputs_of(self, split) -> Any:
        """A dataset split's inputs as its classifier's ``predict`` takes them."""
        raise NotImplementedError

    def init_model(self, model: torch.nn.Module, config: Config, data: PreparedData,
                   log: Log) -> None:
        """Fill a freshly built model's weights from outside sources, if the config says so."""


def cut_note(tokenizer: Tokenizer, splits: list[list[str]]) -> str:
    """``"; N text(s) over L characters cut ..."`` for the run's log, or "" when none was cut
    (:func:`textcnn.tokenizer.bounded` cuts them)."""
    cut = sum(count_cut(tokenizer, texts) for texts in splits)
    if not cut:
        return ""
    return f"; {cut} text(s) over {max_chars(tokenizer):,} characters cut to that length before " \
           "tokenizing"


def _heads(datasets: dict[str, RawDataset]) -> dict[str, list[str]]:
    return {name: dataset.label_names for name, dataset in datasets.items()}


class TextModality(Modality):
    """Texts: a ``tokenizers`` tokenizer (trained on the training splits, or a pretrained
    model's own) turns each split into token ids once.

    A task with ``stream: true`` keeps its training split on disk
    (:mod:`textcnn.data.stream`): ``tokenizer_sample`` (``tokenizer.sample``) rows from the
    head of its shards train the tokenizer and, with validation and test, name the labels when
    nothing else does.
    """

    name = "text"
    classifier_class = TextClassifier

    def __init__(self, tokenizer_sample: int = 100_000):
        self.tokenizer_sample = tokenizer_sample

    def load_dataset(self, task: TaskConfig, data_dir=None) -> RawDataset:
        if task.stream:
            return load_stream(task, data_dir, self.tokenizer_sample)
        return load_raw(task, data_dir)

    def inputs_of(self, split) -> list[str]:
        return split.texts

    def prepare(self, config: Config, datasets: dict[str, RawDataset], fold: int = 0,
                saved_state: dict | None = None) -> PreparedData:
        streamed = {name for name, dataset in datasets.items()
                    if isinstance(dataset, StreamedDataset)}
        if streamed and len(datasets) > 1:
            raise ConfigError.for_key(f"tasks.{min(streamed)}.stream", "a streamed task trains "
                                      "alone: give it a config of its own")
        splits = {name: dict(dataset.splits) for name, dataset in datasets.items()
                  if name in streamed} | cut({name: dataset for name, dataset in datasets.items()
                                              if name not in streamed}, config.train.seed, fold)
        if saved_state is not None:
            tokenizer = Tokenizer.from_str(saved_state["tokenizer"])
        elif config.tokenizer.kind == "pretrained":
            tokenizer = self.pretrained_tokenizer(config)
        else:
            tokenizer = train_tokenizer([t for name, s in splits.items() for t in (
                datasets[name].sample if name in streamed else s["train"].texts)],
                config.tokenizer)
        encoded = {name: {split: Encoded(*encode(tokenizer, part.texts), part.labels)
                          for split, part in parts.items()}
                   for name, parts in splits.items()}
        for name in streamed:
            encoded[name]["train"] = StreamedSplit(datasets[name].train, tokenizer.to_str(),
                                                   datasets[name].labels)
        data = self.prepared(datasets, encoded, tokenizer)
        data.description += cut_note(tokenizer, [datasets[name].sample for name in streamed] + [
            part.texts for parts in splits.values() for part in parts.values()])
        return data

    def prepared(self, datasets: dict[str, RawDataset], splits: dict, tokenizer: Tokenizer
                 ) -> PreparedData:
        """The run's data from its encoded ``splits`` and the ``tokenizer`` that made them."""
        vocab = tokenizer.get_vocab_size()
        return PreparedData(_heads(datasets), splits, vocab, f"vocabulary {vocab}", self,
                            tokenizer, {"tokenizer": tokenizer.to_str()}, tokenizer)

    @staticmethod
    def pretrained_tokenizer(config: Config) -> Tokenizer:
        from .embeddings import folder_tokenizer
        from .sources import is_model_folder, resolve_source

        folder = resolve_source(config.model.pretrained)
        if not is_model_folder(folder):
            raise ConfigError.for_key(
                "tokenizer.kind", "'pretrained' needs model.pretrained to be a model folder "
                f"with tokenizer.json; {folder} is not")
        return folder_tokenizer(folder, config.tokenizer)

    def init_model(self, model: torch.nn.Module, config: Config, data: PreparedData,
                   log: Log) -> None:
        """Fit the wide branch's idf on the training splits, and copy ``model.pretrained``'s
        vectors into the embedding table (Kim's OOV rule)."""
        from .embeddings import pca_reduce, pretrained_matrix

        _fit_wide(model, data, log)
        if not config.model.pretrained:
            return
        if not hasattr(model, "load_pretrained"):  # before reading a possibly large vector file
            raise ConfigError.for_key("model.pretrained", f"model {config.model.name!r} does not "
                                      "take pretrained embeddings")
        matrix, report = pretrained_matrix(config.model.pretrained, data.tokenizer,
                                           config.train.seed)
        if config.model.embedding_reduce == "pca":
            matrix, line = pca_reduce(matrix, config.model.embedding_dim)
            report = f"{report}; {line}"
        if matrix.shape[1] != config.model.embedding_dim:
            raise ConfigError.for_key(
                "model.embedding_dim", f"is {config.model.embedding_dim} but the vectors of "
                f"model.pretrained are {matrix.shape[1]}-dimensional; set "
                f"model.embedding_dim: {matrix.shape[1]}")
        model.load_pretrained(torch.from_numpy(matrix))
        log(f"{report}; embeddings {config.model.embedding_mode}")


def _fit_wide(model: torch.nn.Module, data: PreparedData, log: Log) -> None:
    """The wide branch's idf from every head's training texts (a streamed training split is
    not in memory: its validation split stands in)."""
    wide = getattr(model, "wide", None)
    if wide is None:
        return
    texts = [parts["train"] if hasattr(parts["train"], "ids") else parts["validation"]
             for parts in data.splits.values()]
    skipped = ""
    if wide.skip is not None:  # model.ngram_punctuation: false
        skipped = f", {wide.skip_ids(punctuation_ids(data.tokenizer))} punctuation ids skipped"
    n = wide.fit_idf((torch.from_numpy(part.ids), torch.from_numpy(part.lengths))
                     for part in texts)
    log(f"wide branch: {wide.buckets} buckets, n-grams of {list(wide.orders)} tokens, idf of "
        f"{n} texts{skipped}")


class ImageModality(Modality):
    """Images: pixels scaled to [0, 1] are the arrays; every task shares one image format."""

    name = "image"
    classifier_class = ImageClassifier

    def load_dataset(self, task: TaskConfig, data_dir=None) -> RawDataset:
        if task.multi_label:
            raise DataError("tasks.<name>.multi_label: image datasets have one label per image")
        return load_images(task, data_dir)

    def inputs_of(self, split) -> ImageSplit:
        return split  # already scaled: ImageClassifier.prepare takes it as it is

    def prepare(self, config: Config, datasets: dict[str, RawDataset], fold: int = 0,
                saved_state: dict | None = None) -> PreparedData:
        splits = cut(datasets, config.train.seed, fold)
        shape, scale = image_format(datasets)
        return PreparedData(_heads(datasets), splits, shape[0],
                            "images " + "x".join(map(str, shape)), self, (shape, scale))


TEXT, IMAGE = TextModality(), ImageModality()
MODALITIES = {TEXT.name: TEXT, IMAGE.name: IMAGE}


def modality_named(kind: str) -> Modality:
    """The modality called ``kind`` ("text" or "image"), e.g. a model folder's ``kind``."""
    if kind not in MODALITIES:
        raise ModelFolderError(f"unknown model kind {kind!r} (known: {', '.join(MODALITIES)})")
    return MODALITIES[kind]


# functions of a config giving the modality it needs, or None; asked in order before the
# core's choice (a part outside the core registers one: distillation's student data)
MODALITY_CHOOSERS: list[Callable[[Config], Modality | None]] = []


def register_modality_chooser(choose: Callable[[Config], Modality | None]) -> None:
    """Add ``choose`` to :data:`MODALITY_CHOOSERS` (once)."""
    if choose not in MODALITY_CHOOSERS:
        MODALITY_CHOOSERS.append(choose)


def modality_for(config: Config) -> Modality:
    """The modality of ``config``'s model (each model config says which input it reads; text
    reads a streamed task's sample of ``tokenizer.sample`` rows); the first a registered chooser
    gives (:data:`MODALITY_CHOOSERS`) comes before it."""
    for choose in MODALITY_CHOOSERS:
        chosen = choose(config)
        if chosen is not None:
            return chosen
    if config.model.input_kind == TEXT.name:
        return TextModality(config.tokenizer.sample)
    return MODALITIES[config.model.input_kind]


def cut(datasets: dict[str, RawDataset], seed: int, fold: int = 0) -> dict[str, dict]:
    """Every task's dataset cut into the splits a run trains on (``splits.make_splits``, which
    checks the cut's classes); errors name the task's key."""
    splits = {}
    for name, dataset in datasets.items():
        try:
            splits[name] = make_splits(dataset, seed, fold)
        except DataError as exc:
            raise DataError(f"tasks.{name}.dataset: {exc}") from None
    return splits


def load_datasets(config: Config, data_dir=None) -> dict[str, RawDataset]:
    """Load every task's dataset with the config's modality, checked fit to train on (two
    classes or more, none only in validation or test); errors name the task's key."""
    modality = modality_for(config)
    datasets = {}
    for name, task in config.tasks.items():
        try:
            datasets[name] = check_trainable(modality.load_dataset(task, data_dir))
        except DataError as exc:
            message = str(exc).replace("tasks.<name>.", f"tasks.{name}.")
            raise DataError(f"tasks.{name}.dataset: {message}") from None
    return datasets
