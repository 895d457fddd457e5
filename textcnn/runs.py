"""Runs: config -> data -> model -> trainer -> model folder; cross-validation; scoring a folder.

:func:`train` is what ``textcnn train`` does, :func:`cross_validate` what ``textcnn cv`` does,
:func:`evaluate_folder` what ``textcnn evaluate`` does. :func:`train_and_evaluate` is the step
they share: train on one cut of already loaded datasets and score the validation and test splits.

Example
-------
>>> from textcnn import load_config, train
>>> config = load_config("configs/kim2014/sst2.yaml", [f"tasks.sentiment.dataset={sst2_slice}",
...                      "train.epochs=1", "model.embedding_dim=16", "model.channels=8"])
>>> clf = train(config, output=tmp_dir / "run", log=lambda line: None)
>>> sorted(clf.heads["sentiment"])
['negative', 'positive']
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ._version import __version__
from .card import CV_CONFIG, write_card
from .classifier import Classifier
from .config import Config, TaskConfig, from_dict
from .data import N_FOLDS, RawDataset, cv_folds, fold_protocol, select_split
from .data.labels import LabelMap
from .errors import ConfigError, DataError
from .fileio import write_json, write_jsonl
from .heads import Head, head_for, head_outputs
from .inference import evaluate, predict_logits
from .metrics import plot_confusion, plot_curves, summarize_folds
from .modality import PreparedData, load_datasets, modality_for, modality_named
from .models import build_model
from .outputs import check_room, claim
from .threads import set_threads
from .training import CHECKPOINT, Trainer, current_world, read_checkpoint, reported, session

Log = Callable[[str], None]
# context managers around a run's training, entered in order: each is called as
# context(config, datasets, output, log, resume) and yields the config to train with (a part
# outside the core prepares there what the run needs: distillation fine-tunes its teacher)
RUN_CONTEXTS: list[Callable[..., contextlib.AbstractContextManager[Config]]] = []


def register_run_context(context: Callable[..., contextlib.AbstractContextManager[Config]]
                         ) -> None:
    """Add ``context`` to :data:`RUN_CONTEXTS` (once)."""
    if context not in RUN_CONTEXTS:
        RUN_CONTEXTS.append(context)


def train_in_contexts(train_step: Callable, config: Config, datasets: dict[str, RawDataset],
                      output: str | Path | None = None, resume: bool = False, *, log: Log,
                      **kwargs) -> tuple[Classifier, dict]:
    """``train_step(config, datasets, output, resume, log=log, **kwargs)`` (what
    :func:`train_and_evaluate` takes) inside every :data:`RUN_CONTEXTS` entry, with the config
    the last one yields: how ``textcnn train`` and :class:`~textcnn.TextCNNClassifier` both
    train."""
    with contextlib.ExitStack() as stack:
        for context in RUN_CONTEXTS:
            config = stack.enter_context(context(config, datasets, output, log, resume))
        return train_step(config, datasets, output, resume, log=log, **kwargs)


# where and how a run computes, or for how long, not what: a run may resume with other values
RESUMABLE_ACROSS = ("device", "compile", "time_budget")


def log_to_stderr(line: str) -> None:
    """The default log: one line on stderr, flushed."""
    print(line, file=sys.stderr, flush=True)


def check_resume(config: Config, output: str | Path | None) -> dict:
    """The metadata of ``output``'s checkpoint, after checking it was trained with ``config``
    (fails before any slow data loading)."""
    if output is None:
        raise ConfigError("--resume needs the --output folder of the run to continue")
    _, meta = read_checkpoint(Path(output) / CHECKPOINT, tensors=False)
    check_saved_config(config, meta.get("config"))
    return meta


def check_saved_config(config: Config, saved: dict | None) -> None:
    """Fail unless ``saved`` (a checkpoint's config data) is ``config``."""
    if saved is not None:
        # read back as a config (keys left at their defaults compare equal); one that cannot be
        # read at all simply differs
        with contextlib.suppress(ConfigError):
            saved = from_dict(saved).to_dict()
    if saved is not None and _what(saved) != _what(config.to_dict()):
        raise ConfigError("--resume: the config differs from the one the checkpoint was trained "
                          "with; resume with the same config or train into a new --output")


def _what(data: dict) -> dict:
    """Config data without the keys of :data:`RESUMABLE_ACROSS`."""
    train = {k: v for k, v in data.get("train", {}).items() if k not in RESUMABLE_ACROSS}
    return {**data, "train": train}


def train_and_evaluate(config: Config, datasets: dict[str, RawDataset],
                       output: str | Path | None = None, resume: bool = False, fold: int = 0,
                       log: Log = log_to_stderr, write_folder: bool = True,
                       command: str | None = None, started: float | None = None
                       ) -> tuple[Classifier, dict]:
    """Train on loaded datasets (fold ``fold`` held out as test for CV sets) and score them.

    Returns the classifier (its ``timing``: :func:`run_timing` from ``started``, a
    ``time.perf_counter()`` value, else now) and ``{head: {split: metrics}}`` for the
    validation and test splits.
    With ``write_folder``, checkpoints go to ``output`` after every epoch and the model folder
    is written there at the end (with its model card, naming ``command``); ``resume`` continues
    from ``output``'s checkpoint. Under torchrun every process calls it; rank 0 alone logs,
    scores and writes (the others return their classifier and no metrics).
    """
    started = time.perf_counter() if started is None else started
    world = current_world(config.train.device)
    if not world.is_main:
        log = _silent
    threads = set_threads(config.train.threads)  # its reason goes in the log
    meta = check_resume(config, output) if resume else None
    modality = modality_for(config)
    data = modality.prepare(config, datasets, fold, saved_state=meta)
    torch.manual_seed(config.train.seed)  # the model's initial weights
    model = build_model(config.model, data.input_size, head_outputs(config, data.heads))
    world.check_same_data(data.splits)
    log(f"data {_sizes(data)}; {data.description}; {threads}; {world.device}"
        + (f" x {world.size} processes" if world.size > 1 else ""))
    if meta is None:
        modality.init_model(model, config, data, log)
    checkpoint_dir = Path(output) if write_folder and output is not None else None
    if checkpoint_dir is not None:
        check_room(checkpoint_dir, model, ema=config.train.ema > 0)  # before the first epoch
    trainer = Trainer(config, model, data.splits, log=log, checkpoint_dir=checkpoint_dir,
                      extra_state=data.checkpoint_state, world=world, callbacks=data.callbacks)
    if meta is not None:
        trainer.load_checkpoint(Path(output) / CHECKPOINT)
        log(f"resumed after epoch {trainer.epoch}, batch {trainer.batch_in_epoch} "
            f"(step {trainer.step})")
    # a resumed run's clock goes on from its last finished epoch's elapsed seconds
    trainer.started = started - (trainer.history or [{}])[-1].get("elapsed_seconds", 0)
    history = trainer.fit()
    if not world.is_main:
        return data.make_classifier(model, config, data.heads), {}
    batch_size = config.train.eval_batch_size
    heads = fit_on_validation(model, config, data, batch_size, log)
    metrics = {h: {s: evaluate(model, data.splits[h][s], h, heads[h], batch_size)
                   for s in ("validation", "test") if s in data.splits[h]} for h in data.heads}
    clf = data.make_classifier(model, config, data.heads)
    clf.head_objects, clf.timing = heads, run_timing(trainer, trainer.started)
    summary = "  ".join(f"{h} {s} {reported(m, config.train.select_metric)}"
                        for h, ms in metrics.items() for s, m in ms.items())
    log(f"best epoch {trainer.best_epoch} of {trainer.epoch}, "
        f"{clf.timing['seconds_to_best']:.1f}s to best of {clf.timing['seconds']:.1f}s; {summary}")
    if checkpoint_dir is not None:
        _write_run_folder(clf, checkpoint_dir, {**metrics, **clf.timing}, history, data, command)
        log(f"model folder: {checkpoint_dir}")
    return clf, metrics


def run_timing(trainer: Trainer, started: float) -> dict:
    """Time to accuracy: ``best_epoch``, ``epochs`` run, and the wall seconds from ``started``
    (before the data was loaded, for :func:`train`) to the end of the best epoch's validation
    (``seconds_to_best``, its history row's ``elapsed_seconds``) and to now (``seconds``, after
    the test evaluation); ``select_metric`` chose the best epoch, ``stopped`` says what ended it.

    >>> from types import SimpleNamespace
    >>> rows = [{"epoch": 1, "elapsed_seconds": 4.5}, {"epoch": 2, "elapsed_seconds": 8.2}]
    >>> cfg = SimpleNamespace(train=SimpleNamespace(select_metric="macro_f1"))
    >>> trainer = SimpleNamespace(best_epoch=1, epoch=2, history=rows, config=cfg, stopped="epochs")
    >>> timing = run_timing(trainer, time.perf_counter() - 9.0)
    >>> timing["best_epoch"], timing["epochs"], timing["seconds_to_best"], timing["seconds"] >= 9
    (1, 2, 4.5, True)
    """
    best = next((row for row in trainer.history if row["epoch"] == trainer.best_epoch), {})
    return {"best_epoch": trainer.best_epoch, "epochs": trainer.epoch,
            "seconds_to_best": best.get("elapsed_seconds", 0.0),
            "seconds": round(time.perf_counter() - started, 3),
            "select_metric": trainer.config.train.select_metric, "stopped": trainer.stopped}


def fit_on_validation(model: torch.nn.Module, config: Config, data: PreparedData,
                      batch_size: int, log: Callable[[str], None]) -> dict[str, Head]:
    """``{head: Head}`` of a trained model, each after fitting what it fits on its validation
    split (:meth:`textcnn.heads.Head.fit`: a squared-hinge head's temperature, folded into the
    weights; a multi-label head's thresholds, so its validation metrics are optimistic and
    test's are not); their notes go to ``log``, one line per kind of note."""
    heads = {h: head_for(config, h) for h in data.heads}
    notes: dict[str, list[str]] = {}
    for h, head in heads.items():
        if head.fits:
            validation = data.splits[h]["validation"]
            logits = predict_logits(model, validation, batch_size)[h]
            note = head.fit(model, h, logits, validation.labels)
            if note is not None:
                notes.setdefault(note[0], []).append(note[1])
    for what, parts in notes.items():
        log(f"{what} {', '.join(parts)} (validation)")
    return heads


def _silent(line: str) -> None:
    """The log of ranks other than 0."""


def _sizes(data: PreparedData) -> str:
    return ", ".join(f"{h}: {len(d['train'])} train / {len(d['validation'])} validation"
                     + (f" / {len(d['test'])} test" if "test" in d else "")
                     for h, d in data.splits.items())


def _write_run_folder(clf: Classifier, output: Path, metrics: dict, history: list,
                      data: PreparedData, command: str | None = None) -> None:
    """The model folder plus the run's metrics, history, plots and model card (README.md); the
    checkpoint goes."""
    clf.save(output)
    write_json(output / "metrics.json", metrics)
    write_jsonl(output / "history.jsonl", history)
    plot_curves(history, output / "curves.png")
    multi = len(data.heads) > 1
    for head, names in data.heads.items():
        test, kind = data.splits[head].get("test"), clf.head_objects[head]
        if test is None or kind.multi_label:  # no confusion matrix for label sets
            continue
        logits = predict_logits(clf.model, test)[head]
        name = f"confusion_{head}.png" if multi else "confusion.png"
        plot_confusion(test.labels, kind.decode(logits), names, output / name,
                       title=f"{head}: test confusion matrix")
    write_card(output, command)
    checkpoint = output / CHECKPOINT
    if checkpoint.exists():
        os.unlink(checkpoint)


def train(config: Config, data_dir=None, output=None, resume: bool = False,
          log: Log = log_to_stderr, command: str | None = None,
          train_step: Callable | None = None) -> Classifier:
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
    log : callable
        Receives one line per event (data, each epoch, the result).
    command : str, optional
        The command line, for the model card (``README.md``) written beside the weights.
    train_step : callable, optional
        What trains on the loaded datasets, with :func:`train_and_evaluate`'s arguments and
        result (default: it; the default recipe passes its
        :class:`~textcnn.recipes.portfolio.Portfolio`, which compares candidate recipes).

    Raises
    ------
    OutputError
        ``output`` cannot be written, lacks room, or another run holds it (it is taken before
        the data is loaded, see :func:`textcnn.outputs.claim`).

    Returns
    -------
    Classifier
        A :class:`~textcnn.TextClassifier` or :class:`~textcnn.ImageClassifier`.

    Examples
    --------
    >>> from textcnn.config import from_dict
    >>> config = from_dict({"tasks": {"digit": {"dataset": "digits"}},
    ...                     "model": {"name": "imagecnn", "blocks": [8]},
    ...                     "train": {"epochs": 1, "threads": 1}})
    >>> clf = train(config, output=tmp_dir / "digits", log=lambda line: None)
    >>> type(clf).__name__, sorted(p.name for p in (tmp_dir / "digits").glob("*.json"))
    ('ImageClassifier', ['config.json', 'metrics.json'])
    """
    if resume:
        check_resume(config, output)  # before the (slow) data loading
    with session(config.train.device):  # torchrun's process group, when launched by it
        owner = output is not None and current_world(config.train.device).is_main
        with claim(output) if owner else contextlib.nullcontext():  # rank 0 holds the folder
            started = time.perf_counter()  # time to accuracy counts the data loading in
            datasets = load_datasets(config, data_dir)
            clf, _ = train_in_contexts(train_step or train_and_evaluate, config, datasets,
                                       output, resume, log=log,
                                       write_folder=output is not None, command=command,
                                       started=started)
    return clf


def cross_validate(config: Config, folds: int = 10, data_dir=None, output=None,
                   log: Log = log_to_stderr,
                   datasets: dict[str, RawDataset] | None = None,
                   command: str | None = None) -> dict:
    """K-fold cross-validation (K = ``folds``, 2 to 10): train and test once per fold, every row
    tested once. K = 10 uses the dataset's 10 folds, K = 2 or 5 groups them, another K draws a
    stratified K-fold split (``splits.cv_folds``). Writes ``cv_metrics.json``, ``cv_config.json``
    and a card with the fold table (``README.md``, naming ``command``) to ``output``.

    Returns ``{head: {"folds": [...], "mean": {...}, "std": {...}, "seconds": [...],
    "stopped": [...], "protocol": "..."}}`` (``stopped``: what ended each fold's training).

    Examples
    --------
    >>> from textcnn import load_config
    >>> config = load_config("configs/images/digits.yaml", ["train.epochs=1", "model.blocks=[8]"])
    >>> result = cross_validate(config, folds=2, log=lambda line: None)["digit"]
    >>> len(result["folds"]), sorted(result["mean"])
    (2, ['accuracy', 'macro_f1'])
    """
    if not 2 <= folds <= N_FOLDS:  # before taking the output folder
        raise ConfigError(f"--folds must be between 2 and {N_FOLDS}, got {folds}")
    with claim(output) if output is not None else contextlib.nullcontext():
        return _cross_validate(config, folds, data_dir, output, log, datasets, command)


def _cross_validate(config: Config, folds: int, data_dir, output, log: Log,
                    datasets: dict[str, RawDataset] | None, command: str | None) -> dict:
    datasets = datasets or load_datasets(config, data_dir)
    for name, dataset in datasets.items():
        if not dataset.is_cv:
            raise DataError(f"tasks.{name}: dataset {dataset.source} has fixed splits, not an "
                            "'all' split with CV folds; use `textcnn train` for it")
    if not 2 <= folds <= N_FOLDS:
        raise ConfigError(f"--folds must be between 2 and {N_FOLDS}, got {folds}")
    datasets = {name: replace(ds, folds=cv_folds(ds, folds)) for name, ds in datasets.items()}
    log(f"{folds}-fold CV on {fold_protocol(folds)}")
    per_head: dict[str, list] = {h: [] for h in datasets}
    seconds, stopped = [], []
    for k in range(folds):
        log(f"fold {k + 1}/{folds}")
        start = time.perf_counter()
        clf, metrics = train_and_evaluate(config, datasets, fold=k, log=log, write_folder=False)
        seconds.append(round(time.perf_counter() - start, 3))
        stopped.append(clf.timing["stopped"])
        for h in per_head:
            per_head[h].append(metrics[h]["test"])
    # per fold: the metrics, the fold's wall-clock seconds (train + test) and what stopped it
    result = {h: {**summarize_folds(rows), "seconds": seconds, "stopped": stopped,
                  "protocol": fold_protocol(folds)} for h, rows in per_head.items()}
    if output is not None:
        write_json(Path(output) / "cv_metrics.json", result)
        write_json(Path(output) / CV_CONFIG, {**config.to_dict(), "textcnn_version": __version__})
        write_card(output, command)
    for h, r in result.items():
        log(f"{h}: {folds}-fold accuracy {r['mean']['accuracy']:.4f} "
            f"± {r['std']['accuracy']:.4f}")
    return result


def evaluate_folder(model_dir, dataset: str | None = None, split: str = "test", data_dir=None,
                    head: str | None = None, device: str = "cpu", log: Log = log_to_stderr) -> dict:
    """Metrics of a saved model on ``split`` of ``dataset`` (labels matched by name; columns,
    label sets and separator read as the head's task was in training), computed on ``device``;
    without ``dataset``, the one the head was trained on (``config.json``'s ``tasks.<head>``).

    A dataset with only an ``all`` split is cut as ``textcnn train`` cuts it: ``test`` is CV
    fold 0, and ``log`` is told so; ``split="all"`` scores every row.

    Returns ``{head: {split: {"accuracy": .., "macro_f1": .., "loss": ..}}}`` (a multi-label
    head adds ``subset_accuracy`` and ``micro_f1``).

    Examples
    --------
    >>> scores = evaluate_folder(model_dir, str(sst2_slice), split="test")
    >>> sorted(scores["sentiment"]["test"])
    ['accuracy', 'loss', 'macro_f1']
    """
    from .chunked import evaluate_stream
    from .classifier import load

    clf = load(model_dir, backend="torch", device=device)
    if head is None:
        if len(clf.heads) > 1:
            raise ConfigError(
                f"this model has heads {', '.join(clf.heads)}: choose one with --head")
        head = next(iter(clf.heads))
    elif head not in clf.heads:
        raise ConfigError(f"--head {head!r}: this model has {', '.join(clf.heads)}")
    # read as in training: the same columns, label sets (multi_label) and separator
    task = clf.config.tasks[head] if not dataset else \
        dataclasses.replace(clf.config.tasks.get(head, TaskConfig()), dataset=dataset)
    task = dataclasses.replace(task, stream=False)  # a streamed task's split is scored whole
    if clf.head_objects[head].running(len(clf.heads[head])) is not None:  # read in chunks
        streamed = evaluate_stream(clf, task.dataset, split, head, data_dir)
        if streamed is not None:
            return {head: {split: streamed}}
    raw = modality_named(clf.kind).load_dataset(task, data_dir)
    part = select_split(raw, split, clf.config.train.seed)
    if raw.is_cv and split != "all":
        cut = ("CV fold 0, the rows `textcnn train` holds out as its test set" if split == "test"
               else "cut from CV folds 1-9 as `textcnn train` cuts it")
        log(f"note: {raw.source} has no fixed splits: '{split}' is {cut}; --split all scores "
            "every row")
    names = clf.heads[head]
    if not set(raw.label_names) <= set(names):
        raise DataError(f"{raw.source}: labels {raw.label_names} do not match head "
                        f"'{head}' labels {names}")
    if len(part) == 0:
        raise DataError(f"{raw.source}: split '{split}' is empty")
    if clf.head_objects[head].multi_label:  # multi-hot rows: columns in the head's label order
        labels = np.zeros((len(part), len(names)), dtype=np.float32)
        labels[:, [names.index(n) for n in raw.label_names]] = part.labels
    else:  # the dataset's class ids as the head numbers its classes
        labels = LabelMap.declared(raw.label_names).onto(names).column(
            part.labels.tolist(), lambda i: f"{raw.source} ({split} row {i + 1})")
    inputs = modality_named(clf.kind).inputs_of(part)
    return {head: {split: clf.evaluate(inputs, labels, head)}}
