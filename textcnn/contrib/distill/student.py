"""Students: a textcnn text run whose heads with a teacher (``distill.teachers``) learn from the
labels and the teacher's logits on the training texts plus their augmentations.

:class:`DistillModality` prepares the run's data like text runs do, then appends the augmented
(and ``distill.unlabeled``) texts to each such head's training split with label -1 and packs the
teacher's cached logits beside every row's label, and hands the ordinary trainer the callback
:class:`~.loss.DistillLoss`, which gives those heads the distillation loss. The student's
folder is an ordinary model folder.

Example
-------
>>> from textcnn import load_config, train
>>> config = load_config("configs/kim2014/sst2.yaml", [f"tasks.sentiment.dataset={sst2_slice}",
...     "train.epochs=1", "model.embedding_dim=16", "model.channels=8", "train.threads=1",
...     f"distill.teachers.sentiment={teacher_dir}", "distill.augment=1",
...     f"distill.cache={tmp_dir / 'cache'}"])
>>> clf = train(config, output=tmp_dir / "student", log=lambda line: None)
>>> sorted(clf.heads["sentiment"]), (tmp_dir / "student" / "model.safetensors").is_file()
(['negative', 'positive'], True)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...config import Config
from ...data import make_splits
from ...data.batch import Encoded
from ...errors import ConfigError, DataError
from ...modality import PreparedData, TextModality
from ...tokenizer import encode
from .augment import augment, pretrained_neighbours, read_unlabeled, spans
from .cache import LogitCache
from .loss import DistillLoss
from .teacher import Teacher


def cache_folder(config: Config) -> Path:
    """``distill.cache``, or ``$TEXTCNN_CACHE/distill``."""
    from ...sources import cache_dir

    return Path(config.distill.cache) if config.distill.cache else cache_dir() / "distill"


def soft_targets(config: Config, task: str, texts: list[str], head_labels: list[str]
                 ) -> tuple[np.ndarray, int]:
    """``(logits (n, classes) of task's teacher in head_labels order, texts it scored now)``:
    read from the cache, the teacher running only on texts the cache lacks."""
    folder = config.distill.teachers[task]
    teacher = Teacher(folder, config.train.device, config.teacher.eval_batch_size,
                      config.teacher.max_length)
    if sorted(teacher.labels) != sorted(head_labels):
        raise DataError(f"distill.teachers.{task}: the teacher's labels {teacher.labels} are not "
                        f"the task's {head_labels}")
    logits, scored = LogitCache(cache_folder(config), teacher.identity).logits(
        texts, teacher.logits)
    return logits[:, [teacher.labels.index(name) for name in head_labels]], scored


def extra_texts(config: Config, texts: list[str]) -> list[str]:
    """The augmented copies of ``texts``, spans of ``texts`` and the ``distill.unlabeled``
    file's texts."""
    d = config.distill
    swaps = (pretrained_neighbours(config.model.pretrained,
                                   (word for text in texts for word in text.split()), d.neighbours)
             if d.augment and d.swap_prob else None)
    extra = augment(texts, d.augment, d.mask_prob, d.ngram_prob, d.augment_seed, d.swap_prob,
                    swaps)
    extra += spans(texts, d.spans, d.augment_seed, extra)
    return extra + (read_unlabeled(d.unlabeled) if d.unlabeled else [])


def _stack(first: Encoded, ids: np.ndarray, lengths: np.ndarray, labels: np.ndarray) -> Encoded:
    """``first``'s rows, then the rows ``ids`` / ``lengths``, with ``labels`` for all."""
    width = max(first.ids.shape[1], ids.shape[1])
    pad = [np.pad(a, ((0, 0), (0, width - a.shape[1]))) for a in (first.ids, ids)]
    return Encoded(np.concatenate(pad), np.concatenate([first.lengths, lengths]), labels)


class DistillModality(TextModality):
    """Texts, with each distilled head's training split widened and its labels packed as
    ``(n, 1 + classes)`` float32: the label id (-1: soft targets only), the teacher's logits."""

    def prepare(self, config: Config, datasets: dict, fold: int = 0,
                saved_state: dict | None = None) -> PreparedData:
        if not config.distill.teachers:  # distill.teacher, in a run that fine-tunes none
            raise ConfigError.for_key("distill.teacher", "is fine-tuned by `textcnn train` and "
                                      "TextCNNClassifier.fit only (not per fold of `textcnn "
                                      "cv`); cross-validate with distill.teachers")
        data = super().prepare(config, datasets, fold, saved_state)
        notes = []
        for task in config.distill.teachers:
            train = make_splits(datasets[task], config.train.seed, fold)["train"]
            extra = extra_texts(config, train.texts)
            logits, scored = soft_targets(config, task, train.texts + extra, data.heads[task])
            ids, lengths = encode(data.tokenizer, extra)
            labels = np.concatenate([train.labels, np.full(len(extra), -1)]).astype(np.float32)
            data.splits[task]["train"] = _stack(data.splits[task]["train"], ids, lengths,
                                                np.column_stack([labels, logits]))
            notes.append(f"{task}: +{len(extra)} texts for its teacher, {scored} scored now, "
                         "the rest read from its cache")
        data.description += "; distilled " + ", ".join(notes)
        data.callbacks.append(DistillLoss(config))
        return data

