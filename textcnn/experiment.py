"""Runs: config -> data -> tokenizer -> model -> trainer -> model folder (and CV, evaluation).

Example
-------
>>> from textcnn import load_config, train
>>> clf = train(load_config("configs/sst2.yaml"), output="runs/sst2")  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .config import Config, from_dict
from .data import RawDataset, load_raw, make_splits
from .embeddings import folder_tokenizer, is_model_folder, pretrained_matrix, resolve_source
from .errors import ConfigError, DataError
from .fileio import write_json, write_jsonl
from .images import (
    ImageClassifier,
    evaluate_image_folder,
    image_format,
    is_image_folder,
    load_images,
)
from .metrics import plot_confusion, plot_curves, summarize_folds
from .models import build_model
from .pipeline import TextClassifier
from .tokenizer import encode, train_tokenizer
from .train import (
    CHECKPOINT,
    Encoded,
    Trainer,
    evaluate,
    predict_logits,
    read_checkpoint,
    set_threads,
)

Log = Callable[[str], None]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


@dataclass
class Prepared:
    """Everything a trainer needs, built once per run."""

    tokenizer: object  # None for images
    heads: dict[str, list[str]]  # head -> label names
    data: dict[str, dict[str, Encoded]]  # head -> split -> arrays (images: ImageSplit)
    image: tuple | None = None  # images: ((channels, height, width), pixel scale)

    @property
    def input_size(self) -> int:
        """What the model builder takes: vocabulary size (text) or image channels (images)."""
        return self.image[0][0] if self.image else self.tokenizer.get_vocab_size()

    def describe(self) -> str:
        if self.image:
            return "images " + "x".join(map(str, self.image[0]))
        return f"vocabulary {self.tokenizer.get_vocab_size()}"

    def extra_state(self) -> dict:
        return {} if self.image else {"tokenizer": self.tokenizer.to_str()}

    def classifier(self, model, config: Config):
        if self.image:
            return ImageClassifier(model, config, self.heads, *self.image)
        return TextClassifier(model, self.tokenizer, config, self.heads)


def load_tasks(config: Config, data_dir=None) -> dict[str, RawDataset]:
    """Load every task's dataset; errors name the task's config key."""
    raws = {}
    for name, task in config.tasks.items():
        try:
            load = load_images if config.model.input_kind == "image" else load_raw
            raws[name] = load(task, data_dir)
        except DataError as exc:
            message = str(exc).replace("tasks.<name>.", f"tasks.{name}.")
            raise DataError(f"tasks.{name}.dataset: {message}") from None
    return raws


def prepare(config: Config, raws: dict[str, RawDataset], fold: int = 0,
            tokenizer=None) -> Prepared:
    """Cut splits, train one tokenizer on the union of the training splits, encode everything."""
    splits = {name: make_splits(raw, config.train.seed, fold) for name, raw in raws.items()}
    if config.model.input_kind == "image":  # image splits hand the trainer its batches as they are
        heads = {name: raw.label_names for name, raw in raws.items()}
        return Prepared(None, heads, splits, image_format(raws))
    if tokenizer is None and config.tokenizer.kind == "pretrained":
        folder = resolve_source(config.model.pretrained)
        if not is_model_folder(folder):
            raise ConfigError.for_key("tokenizer.kind", "'pretrained' needs model.pretrained to "
                                      f"be a model folder with tokenizer.json; {folder} is not")
        tokenizer = folder_tokenizer(folder, config.tokenizer)
    elif tokenizer is None:
        train_texts = [t for s in splits.values() for t in s["train"].texts]
        tokenizer = train_tokenizer(train_texts, config.tokenizer)
    data = {}
    for name, parts in splits.items():
        data[name] = {}
        for split, part in parts.items():
            ids, lengths = encode(tokenizer, part.texts)
            data[name][split] = Encoded(ids, lengths, part.labels)
    heads = {name: raw.label_names for name, raw in raws.items()}
    return Prepared(tokenizer, heads, data)


def _check_resume(config: Config, meta: dict) -> None:
    saved = meta.get("config")
    if saved is not None:
        # keys added since the checkpoint was written (schedule, ema, depth...) take their
        # defaults; a config this version cannot read at all simply differs
        with contextlib.suppress(ConfigError):
            saved = from_dict(saved, saved=True).to_dict()
    if saved is not None and saved != config.to_dict():
        raise ConfigError("--resume: the config differs from the one the checkpoint was trained "
                          "with; resume with the same config or train into a new --output")


def fit(config: Config, raws: dict[str, RawDataset], output: str | Path | None = None,
        resume: bool = False, fold: int = 0, log: Log = _stderr,
        write_folder: bool = True) -> tuple[TextClassifier, dict]:
    """Train on prepared raw datasets; returns the classifier and ``{head: {split: metrics}}``."""
    threads = set_threads(config.train.threads)
    output = Path(output) if output else None
    tokenizer, meta = None, None
    if resume:
        if output is None:
            raise ConfigError("--resume needs the --output folder of the run to continue")
        _, meta = read_checkpoint(output / CHECKPOINT, tensors=False)
        _check_resume(config, meta)
        if config.model.input_kind != "image":
            from tokenizers import Tokenizer

            tokenizer = Tokenizer.from_str(meta["tokenizer"])
    prep = prepare(config, raws, fold, tokenizer)
    torch.manual_seed(config.train.seed)
    model = build_model(config.model, prep.input_size,
                        {h: len(n) for h, n in prep.heads.items()})
    sizes = ", ".join(f"{h}: {len(d['train'])} train / {len(d['validation'])} validation"
                      + (f" / {len(d['test'])} test" if "test" in d else "")
                      for h, d in prep.data.items())
    log(f"data {sizes}; {prep.describe()}; {threads} threads")
    if config.model.input_kind != "image" and config.model.pretrained and meta is None:
        load_pretrained(model, config, prep.tokenizer, log)
    trainer = Trainer(config, model, prep.data, checkpoint_dir=output if write_folder else None,
                      log=log, extra_state=prep.extra_state())
    if meta is not None:
        trainer.load_checkpoint(output / CHECKPOINT)
        log(f"resumed after epoch {trainer.epoch}")
    start = time.perf_counter()
    history = trainer.fit()
    bs = config.train.eval_batch_size
    metrics = {h: {s: evaluate(model, prep.data[h][s], h, bs)
                   for s in ("validation", "test") if s in prep.data[h]} for h in prep.heads}
    clf = prep.classifier(model, config)
    summary = "  ".join(f"{h} {s} acc {m['accuracy']:.4f}" for h, ms in metrics.items()
                        for s, m in ms.items())
    log(f"best epoch {trainer.best_epoch} of {trainer.epoch}; "
        f"{time.perf_counter() - start:.1f}s; {summary}")
    if write_folder and output is not None:
        _write_folder(clf, output, metrics, history, prep)
        log(f"model folder: {output}")
    return clf, metrics


def load_pretrained(model, config: Config, tokenizer, log: Log) -> None:
    """Fill ``model``'s embedding table from ``config.model.pretrained`` (embeddings.py)."""
    if not hasattr(model, "load_pretrained"):  # before reading a possibly large vector file
        raise ConfigError.for_key("model.pretrained", f"does not apply: model "
                                  f"{config.model.name!r} takes no pretrained embeddings")
    matrix, report = pretrained_matrix(config.model.pretrained, tokenizer, config.train.seed)
    if matrix.shape[1] != config.model.embedding_dim:
        raise ConfigError.for_key("model.embedding_dim", f"is {config.model.embedding_dim} but "
                                  f"the vectors of model.pretrained are {matrix.shape[1]}-"
                                  f"dimensional; set model.embedding_dim: {matrix.shape[1]}")
    model.load_pretrained(torch.from_numpy(matrix))
    log(f"{report}; embeddings {config.model.embedding_mode}")


def _write_folder(clf: TextClassifier, output: Path, metrics: dict, history: list, prep) -> None:
    clf.save_pretrained(output)
    write_json(output / "metrics.json", metrics)
    write_jsonl(output / "history.jsonl", history)
    plot_curves(history, output / "curves.png")
    multi = len(prep.heads) > 1
    for head, names in prep.heads.items():
        test = prep.data[head].get("test")
        if test is None:
            continue
        logits = predict_logits(clf.model, test)[head]
        name = f"confusion_{head}.png" if multi else "confusion.png"
        plot_confusion(test.labels, logits.argmax(1), names, output / name,
                       title=f"{head}: test confusion matrix")
    ckpt = output / CHECKPOINT
    if ckpt.exists():
        os.unlink(ckpt)


def train(config: Config, data_dir=None, output=None, resume: bool = False,
          log: Log = _stderr) -> TextClassifier:
    """Train a model as configured and write its model folder to ``output``.

    Parameters
    ----------
    config : Config
        From :func:`textcnn.load_config`.
    data_dir : path, optional
        Local data directory (default: ``$TEXTCNN_DATA_DIR``).
    output : path, optional
        Model folder to write (nothing is written when None).
    resume : bool
        Continue from ``output/checkpoint.safetensors``.
    """
    if resume:  # fail before the (slow) data loading
        if output is None:
            raise ConfigError("--resume needs the --output folder of the run to continue")
        _check_resume(config, read_checkpoint(Path(output) / CHECKPOINT, tensors=False)[1])
    raws = load_tasks(config, data_dir)
    clf, _ = fit(config, raws, output, resume, log=log, write_folder=output is not None)
    return clf


def cross_validate(config: Config, folds: int = 10, data_dir=None, output=None,
                   log: Log = _stderr, raws: dict[str, RawDataset] | None = None) -> dict:
    """Train and test once per CV fold; writes ``cv_metrics.json`` to ``output``."""
    raws = raws or load_tasks(config, data_dir)
    for name, raw in raws.items():
        if not raw.is_cv:
            raise DataError(f"tasks.{name}: dataset {raw.source} has fixed splits, not an 'all' "
                            "split with CV folds; use `textcnn train` for it")
    if not 1 <= folds <= 10:
        raise ConfigError(f"--folds must be between 1 and 10, got {folds}")
    per_head: dict[str, list] = {h: [] for h in raws}
    seconds = []
    for k in range(folds):
        log(f"fold {k + 1}/{folds}")
        start = time.perf_counter()
        _, metrics = fit(config, raws, fold=k, log=log, write_folder=False)
        seconds.append(round(time.perf_counter() - start, 1))
        for h in per_head:
            per_head[h].append(metrics[h]["test"])
    # per fold: the metrics (DESIGN.md) and the fold's wall-clock seconds (train + test)
    result = {h: {**summarize_folds(rows), "seconds": seconds} for h, rows in per_head.items()}
    if output is not None:
        write_json(Path(output) / "cv_metrics.json", result)
    for h, r in result.items():
        log(f"{h}: {folds}-fold accuracy {r['mean']['accuracy']:.4f} "
            f"± {r['std']['accuracy']:.4f}")
    return result


def evaluate_folder(model_dir, dataset: str, split: str = "test", data_dir=None,
                    head: str | None = None) -> dict:
    """Metrics of a saved model on ``split`` of ``dataset`` (labels matched by name)."""
    from .config import TaskConfig

    if is_image_folder(model_dir):
        return evaluate_image_folder(model_dir, dataset, split, data_dir, head)
    clf = TextClassifier.from_pretrained(model_dir)
    if head is None:
        if len(clf.heads) > 1:
            raise ConfigError(
                f"this model has heads {', '.join(clf.heads)}: choose one with --head")
        head = next(iter(clf.heads))
    elif head not in clf.heads:
        raise ConfigError(f"--head {head!r}: this model has {', '.join(clf.heads)}")
    raw = load_raw(TaskConfig(dataset=dataset), data_dir)
    seed = clf.config.train.seed
    parts = make_splits(raw, seed) if split in ("train", "validation") or raw.is_cv \
        else raw.splits
    if split not in parts:
        raise DataError(f"{raw.source} has no split '{split}' (has: {', '.join(parts)})")
    names = clf.heads[head]
    if not set(raw.label_names) <= set(names):
        raise DataError(f"{raw.source}: labels {raw.label_names} do not match head "
                        f"'{head}' labels {names}")
    remap = np.array([names.index(n) for n in raw.label_names])
    part = parts[split]
    ids, lengths = clf.encode(part.texts)
    data = Encoded(ids, lengths, remap[part.labels])
    if len(data) == 0:
        raise DataError(f"{raw.source}: split '{split}' is empty")
    return {head: {split: evaluate(clf.model, data, head)}}

