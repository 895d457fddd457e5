"""Run configuration: dataclasses whose fields carry their default, constraint and one-line why.

A config is read from YAML (``load_config``), checked strictly (unknown keys, keys of another
model, wrong types and values fail naming the dotted key), and written back as JSON into the
model folder. ``model.name`` chooses the model's own settings class (:data:`MODEL_CONFIGS`, read
from ``textcnn.models.REGISTRY``; each sits beside its architecture in ``textcnn.networks``).
Each field is declared with ``fields.param`` (default, constraint, why); ``fields.check_fields``
applies every field's constraint, and :data:`CROSS_FIELD_RULES` holds the few rules that span
fields.

The core's sections are ``tasks``, ``tokenizer``, ``model`` and ``train``. A part outside the
core (distillation's ``teacher`` and ``distill``) adds its own with :func:`register_section`:
its settings class and its rules across sections. Such a section is read, checked and reported
like the core's (``config.distill.loss``, errors naming ``distill.loss``), and written to
``config.json`` when it differs from its defaults; the core itself never names it. This keeps
the dependency one-way: the core offers the hook, the part registers itself when the package
is imported (see :mod:`textcnn.contrib`).

Example
-------
>>> cfg = from_dict({"tasks": {"sentiment": {"dataset": "sst2"}}, "train": {"epochs": 3}})
>>> cfg.train.epochs, cfg.model.kernel_sizes
(3, [3, 4, 5])
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config_files import apply_overrides, blame, read_yaml
from .errors import ConfigError
from .fields import (
    Rule,
    build_dataclass,
    check_fields,
    device_name,
    fraction,
    non_negative,
    one_of,
    param,
    positive,
    unknown_key,
)
from .fields import model_arguments as model_arguments  # re-exported
from .heads import HEADS, head_name
from .models import REGISTRY
from .networks import DPCNNConfig as DPCNNConfig  # re-exported
from .networks import ImageCNNConfig as ImageCNNConfig  # re-exported
from .networks import TextCNNConfig


# -- the sections ----------------------------------------------------------------------------------
@dataclass
class TaskConfig:
    """One classification task: a dataset and the head that learns it."""

    dataset: str = param("", "known name (sst2), Hub id (SetFit/sst2) or path to a folder / file")
    text_column: str = param("text", "column holding the raw text")
    label_column: str = param("label", "column holding the label (int id or name)")
    loss_weight: float = param(1.0, "scales this head's loss in a multi-task model", non_negative)
    multi_label: bool = param(False, "a row has a set of labels (a JSON list, or a string cut at "
                              "label_separator): sigmoid outputs, thresholds tuned on validation")
    label_separator: str = param("", "multi_label: splits a string label ('a|b' with '|'); '' = "
                                 "a string is one label")
    head: str = param("", "what the head's logits mean (textcnn.heads.HEADS): "
                      f"{' | '.join(HEADS)}; '' = multi_label for a multi_label task, else "
                      "squared_hinge when train.loss is, else softmax",
                      Rule(lambda name: name == "" or name in HEADS,
                           f"be '' or a registered head ({', '.join(HEADS)})"),
                      saved_at_default=False)
    stream: bool = param(False, "read the training split as a stream (corpora larger than "
                         "memory); validation and test are read into memory")
    validation: str = param("", "streamed task: validation file ('' = the dataset folder's)")
    test: str = param("", "streamed task: test file ('' = the dataset folder's, if any)")
    labels: list[str] = param([], "streamed task: label names in id order ([] = dataset.json's, "
                              "else the sorted labels of the tokenizer sample and validation)")


@dataclass
class TokenizerConfig:
    """How text becomes token ids (text models only)."""

    kind: str = param("word", "word | wordpiece | bpe | char | pretrained (model.pretrained's)",
                      one_of("word", "wordpiece", "bpe", "char", "pretrained"))
    lowercase: bool = param(True, "Kim lower-cases; keeps the vocabulary small")
    min_frequency: int = param(1, "tokens seen fewer times map to [UNK]", non_negative)
    vocab_size: int = param(30000, "cap for subword vocabularies (and for word, the most "
                            "frequent)", positive)
    max_length: int = param(256, "tokens past this are truncated (documented, never an error)",
                            positive)
    sample: int = param(100_000, "streamed tasks: rows (from the head of each shard) the "
                        "tokenizer is trained on", positive)


AnyModelConfig = Any  # the settings class of a registered model (textcnn.models.REGISTRY)
# model.name -> its settings class (textcnn.models.REGISTRY pairs each with its model class)
MODEL_CONFIGS: dict[str, type] = {name: entry.config for name, entry in REGISTRY.items()}


@dataclass
class TrainConfig:
    """How the model is trained and evaluated."""

    epochs: int = param(25, "upper bound; early stopping usually ends sooner (train.min_steps "
                        "may raise it for a small training set)", positive)
    batch_size: int = param(50, "Kim: 50", positive)
    optimizer: str = param("adamw", "adadelta (Kim) | adam | adamw; AdamW measured better here",
                           one_of("adadelta", "adam", "adamw"))
    lr: float = param(1e-3, "AdamW default; Kim's Adadelta uses 1.0", positive)
    weight_decay: float = param(0.0, "decoupled for AdamW, L2 otherwise", non_negative)
    max_norm: float = param(3.0, "Kim's L2 cap on each head weight row; 0 disables", non_negative)
    seed: int = param(0, "one seed fixes shuffling, init and dropout: runs repeat exactly")
    patience: int = param(5, "epochs without a better validation train.select_metric before "
                          "stopping (counted once train.min_steps steps are done)", positive)
    select_metric: str = param(
        "accuracy", "the validation metric (mean over tasks) that keeps the best epoch and that "
        "patience waits on: the one the task is judged by; macro_f1 weighs rare classes as much "
        "as common ones, micro_f1 suits multi-label heads (for a single-label head it equals "
        "accuracy), loss is the validation cross-entropy (lower is better)",
        one_of("accuracy", "macro_f1", "micro_f1", "loss"))
    min_steps: int = param(0, "at least this many optimizer steps: a small training set gets "
                           "the updates it needs (the epoch cap rises to fit them, and patience "
                           "waits until they are done); a large one is unaffected; 0 = off",
                           non_negative)
    time_budget: float = param(0.0, "seconds a run may take (data loading included): it stops "
                               "after the epoch that passes them and keeps the best epoch so far; "
                               "0 = no limit", non_negative)
    threads: int = param(0, "torch intra-op threads; 0 = the cores this process may use, shared "
                         "with torchrun's processes on this machine, less those the load "
                         "average says are busy", non_negative)
    bucket_chunks: int = param(50, "sort by length within chunks of this many batches", positive)
    sampling: str = param("proportional", "multi-task: proportional | temperature",
                          one_of("proportional", "temperature"))
    temperature: float = param(2.0, "for sampling=temperature: p ~ n ** (1 / T)", positive)
    eval_batch_size: int = param(500, "prediction batch size (length-sorted)", positive)
    schedule: str = param("constant", "lr per optimizer step: constant | cosine (to 0) | onecycle; "
                          "the curve spans the run's epoch cap (train.min_steps included)",
                          one_of("constant", "cosine", "onecycle"))
    warmup: float = param(0.0, "fraction of all steps (epoch cap x batches) spent ramping the lr "
                          "up", fraction)
    loss: str = param("cross_entropy", "training loss of single- and multi-label heads: "
                      "cross_entropy | squared_hinge (one-vs-rest, LinearSVC's; long documents)",
                      one_of("cross_entropy", "squared_hinge"))
    label_smoothing: float = param(0.0, "cross_entropy's training loss only; validation / test "
                                   "metrics are unchanged", fraction)
    class_weight: str = param("none", "none | balanced: each class's training loss weighted "
                              "n_rows / (n_classes x its rows), as scikit-learn's, so a rare class "
                              "counts as much as a common one (single-label heads)",
                              one_of("none", "balanced"))
    ema: float = param(0.0, "decay of a moving average of the weights, used to validate and "
                       "save; 0 off", fraction)
    steps_per_epoch: int = param(0, "streamed tasks: batches per epoch; 0 = one pass over the "
                                 "stream", non_negative)
    shuffle_buffer: int = param(10_000, "streamed tasks: rows held to shuffle the stream (its "
                                "memory bound)", positive)
    loader_workers: int = param(1, "streamed tasks: DataLoader processes reading and tokenizing "
                                "the stream; 0 = in the training process", non_negative)
    device: str = param("auto", "auto = CUDA when present, else the CPU; cpu | cuda | cuda:N | mps",
                        device_name)
    precision: str = param("fp32", "autocast dtype of the training forward pass; fp16 adds a "
                           "gradient scaler; weights stay fp32", one_of("fp32", "bf16", "fp16"))
    compile: bool = param(False, "torch.compile the training forward pass")
    checkpoint_every: int = param(0, "also checkpoint every this many optimizer steps, so "
                                  "--resume continues mid-epoch; 0 = after each epoch only",
                                  non_negative)


@dataclass(frozen=True)
class Section:
    """A config section registered from outside the core: its settings class (fields declared
    with :func:`textcnn.fields.param`) and its rules across sections, applied after the core's
    rules on inputs and before its rules on training (:func:`cross_field_rules`)."""

    cls: type
    rules: tuple[Callable[[Config], None], ...] = ()


# section name -> Section, in registration order (after the core's sections in config.json and
# in the config reference)
SECTIONS: dict[str, Section] = {}


def register_section(name: str, cls: type, rules: tuple[Callable[[Config], None], ...] = ()
                     ) -> None:
    """Add the top-level section ``name`` (a dataclass ``cls``) and its cross-section ``rules``.

    Registering the same class again is a no-op; another class under a taken name fails.

    Examples
    --------
    >>> from dataclasses import dataclass
    >>> from textcnn.fields import param, positive
    >>> @dataclass
    ... class Probe:
    ...     rounds: int = param(1, "how many", positive)
    >>> register_section("probe", Probe)
    >>> cfg = from_dict({"tasks": {"s": {"dataset": "sst2"}}, "probe": {"rounds": 3}})
    >>> cfg.probe.rounds, "probe" in cfg.to_dict()
    (3, True)
    >>> unregister_section("probe")
    """
    core = {f.name for f in dataclasses.fields(Config)}
    if name in core or (name in SECTIONS and SECTIONS[name].cls is not cls):
        raise ValueError(f"config section {name!r} is taken")
    SECTIONS[name] = Section(cls, tuple(rules))


def unregister_section(name: str) -> None:
    """Remove the registered section ``name`` (a test's or an example's own)."""
    SECTIONS.pop(name, None)


# switch name -> what turns its value into config items: a shorthand of the Python API
# (TextCNNClassifier(teacher="minilm")) that the part owning those keys registers
SWITCHES: dict[str, Callable[[str], list[str]]] = {}


def register_switch(name: str, expand: Callable[[str], list[str]]) -> None:
    """Let the switch ``name`` expand its value with ``expand`` (:func:`switch_items`)."""
    SWITCHES[name] = expand


def switch_items(name: str, value: str | None) -> list[str]:
    """The config items the switch ``name`` set to ``value`` stands for; none when unset.

    >>> switch_items("teacher", None)
    []
    """
    if not value:
        return []
    if name not in SWITCHES:
        raise ConfigError(f"{name}={value!r}: no installed part of textcnn takes {name}")
    return SWITCHES[name](value)


def section_names() -> list[str]:
    """Every top-level section, in order: the core's, then the registered ones."""
    return [f.name for f in dataclasses.fields(Config) if f.name != "sections"] + list(SECTIONS)


@dataclass
class Config:
    """A whole run: its tasks, the tokenizer (text models), the model and the training.

    Examples
    --------
    >>> config = from_dict({"tasks": {"sentiment": {"dataset": "sst2"}},
    ...                     "model": {"name": "dpcnn", "depth": 4}})
    >>> type(config.model).__name__, config.model.depth, config.train.optimizer
    ('DPCNNConfig', 4, 'adamw')
    >>> sorted(config.to_dict())
    ['model', 'tasks', 'tokenizer', 'train']
    """

    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: AnyModelConfig = field(default_factory=TextCNNConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    # the registered sections (register_section), by name; read as attributes: config.distill
    sections: dict[str, Any] = field(default_factory=dict, metadata={"inline": True})

    def __post_init__(self) -> None:
        for name, section in SECTIONS.items():  # every registered section, at its defaults
            self.sections.setdefault(name, section.cls())

    def __getattr__(self, name: str) -> Any:
        sections = self.__dict__.get("sections", {})
        if name in sections:
            return sections[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def to_dict(self, keep_defaults: bool = False) -> dict[str, Any]:
        """Plain data for config.json: the chosen model's keys only, no tokenizer for images, a
        registered section only where it differs from its defaults (every one with
        ``keep_defaults``), no key declared ``saved_at_default=False`` at its default (e.g.
        ``tasks.<name>.head`` left at ``''``)."""
        data = dataclasses.asdict(self)
        for name, value in data.pop("sections").items():
            registered = SECTIONS.get(name)
            if keep_defaults or registered is None or self.sections[name] != registered.cls():
                data[name] = value
        for name, task in self.tasks.items():
            _drop_unsaved_defaults(task, data["tasks"][name])
        _drop_unsaved_defaults(self.model, data["model"])
        data["model"] = {"name": self.model.name, **data["model"]}
        if self.model.input_kind == "image":
            del data["tokenizer"]
        return data


def _drop_unsaved_defaults(section: Any, data: dict[str, Any]) -> None:
    """Remove from ``data`` (``section`` as plain data) the keys its fields declare
    ``saved_at_default=False`` while they hold their default."""
    for f in dataclasses.fields(section):
        if not f.metadata.get("saved_at_default", True) and data.get(f.name) == f.default:
            del data[f.name]


# -- rules between fields --------------------------------------------------------------------------
def _embedding_mode_needs_vectors(cfg: Config) -> None:
    model = cfg.model  # every text model config has pretrained and embedding_mode
    if model.input_kind == "text" and not model.pretrained and model.embedding_mode != "non-static":
        raise ConfigError.for_key("model.embedding_mode", f"{model.embedding_mode!r} needs "
                                  "pretrained vectors: set model.pretrained")
    if model.input_kind == "text" and not model.pretrained and model.embedding_reduce != "none":
        raise ConfigError.for_key("model.embedding_reduce", f"{model.embedding_reduce!r} reduces "
                                  "pretrained vectors; set model.pretrained or drop it")


def _pretrained_tokenizer_needs_folder(cfg: Config) -> None:
    model = cfg.model
    if model.input_kind == "text" and not model.pretrained and cfg.tokenizer.kind == "pretrained":
        raise ConfigError.for_key("tokenizer.kind", "'pretrained' takes the tokenizer of "
                                  "model.pretrained (a model folder): set model.pretrained")


def _stream_keys_need_stream(cfg: Config) -> None:
    streamed = [name for name, task in cfg.tasks.items() if task.stream]
    for name, task in cfg.tasks.items():
        for key in ("validation", "test", "labels"):
            if getattr(task, key) and not task.stream:
                raise ConfigError.for_key(f"tasks.{name}.{key}", "is for streamed tasks: set "
                                          f"tasks.{name}.stream: true, or remove it")
    if streamed and cfg.model.input_kind != "text":
        raise ConfigError.for_key(f"tasks.{streamed[0]}.stream", "streams texts only")
    if streamed and len(cfg.tasks) > 1:
        raise ConfigError.for_key(f"tasks.{streamed[0]}.stream", "streams single-task configs "
                                  "only: train the streamed task alone")
    if cfg.train.steps_per_epoch and not streamed:
        raise ConfigError.for_key("train.steps_per_epoch", "is for streamed tasks (an epoch of "
                                  "an in-memory split is one pass): remove it")


def _wide_only_needs_buckets(cfg: Config) -> None:
    model = cfg.model
    if not getattr(model, "deep", True) and not model.ngram_buckets:
        raise ConfigError.for_key("model.deep", "false leaves no logits without the wide branch: "
                                  "set model.ngram_buckets (e.g. 262144)")


def _class_weight_needs_single_labels(cfg: Config) -> None:
    if cfg.train.class_weight == "none":
        return
    for name, task in cfg.tasks.items():
        if task.multi_label:
            why = "a multi-label head's labels are not exclusive classes"
        elif task.stream:
            why = "the labels of a streamed split are not counted before training"
        else:
            continue
        raise ConfigError.for_key("train.class_weight", f"{cfg.train.class_weight!r} weighs "
                                  f"single-label classes; task '{name}': {why}; use none")


def _head_reads_its_labels(cfg: Config) -> None:
    for name, task in cfg.tasks.items():
        if task.head and HEADS[task.head].multi_label != task.multi_label:
            fix = (f"set tasks.{name}.multi_label: true" if not task.multi_label else
                   f"a multi_label task's head is multi_label: remove tasks.{name}.head")
            reads = "label sets" if HEADS[task.head].multi_label else "one label per row"
            raise ConfigError.for_key(f"tasks.{name}.head", f"is {task.head!r}, a head that "
                                      f"reads {reads}; {fix}")


def _loss_selection_needs_cross_entropy(cfg: Config) -> None:
    margins = [task for task in cfg.tasks.values()
               if not HEADS[head_name(task, cfg.train.loss)].minimises_nll]
    if cfg.train.select_metric == "loss" and (cfg.train.loss != "cross_entropy" or margins):
        raise ConfigError.for_key("train.select_metric", "'loss' is the validation "
                                  "cross-entropy, which squared_hinge margins do not minimise: "
                                  "select by accuracy, macro_f1 or micro_f1")


# rules between fields, applied in order after every field's own check: those on the inputs,
# then the registered sections' rules, then those on training (cross_field_rules)
CROSS_FIELD_RULES: tuple[Callable[[Config], None], ...] = (
    _embedding_mode_needs_vectors,
    _pretrained_tokenizer_needs_folder,
    _stream_keys_need_stream,
    _wide_only_needs_buckets,
    _class_weight_needs_single_labels,
    _head_reads_its_labels,
    _loss_selection_needs_cross_entropy,
)
_INPUT_RULES = 3  # CROSS_FIELD_RULES[:3] read the inputs; the rest, training


def cross_field_rules() -> tuple[Callable[[Config], None], ...]:
    """Every rule between fields, in the order applied (the registered sections' in between)."""
    registered = tuple(rule for section in SECTIONS.values() for rule in section.rules)
    return CROSS_FIELD_RULES[:_INPUT_RULES] + registered + CROSS_FIELD_RULES[_INPUT_RULES:]


# -- building from plain data ----------------------------------------------------------------------
def _field_names(cls: type) -> set[str]:
    return {f.name for f in dataclasses.fields(cls)}


def _build_model(data: Any) -> AnyModelConfig:
    """The settings class ``model.name`` chooses, from the ``model`` section.

    A key of another model fails naming the key and the model.
    """
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError.for_key("model", f"must be a mapping, got {data!r}")
    data = dict(data)
    name = data.pop("name", TextCNNConfig.name)
    if not isinstance(name, str):
        raise ConfigError.for_key("model.name", f"must be a str, got {name!r}")
    if name not in MODEL_CONFIGS:
        raise ConfigError.for_key("model.name", f"{name!r} is not a known model "
                                  f"(known: {', '.join(MODEL_CONFIGS)})")
    cls = MODEL_CONFIGS[name]
    own = _field_names(cls)
    for key in [k for k in data if k not in own]:
        owners = [other for other, other_config in MODEL_CONFIGS.items()
                  if key in _field_names(other_config)]
        if not owners:
            raise unknown_key(f"model.{key}", own | {"name"})
        close = difflib.get_close_matches(key, sorted(own), n=1, cutoff=0.8)  # a typo
        fix = (f"did you mean 'model.{close[0]}'?" if close else
               f"remove it, or set model.name: {owners[0]}; {name} takes {', '.join(sorted(own))}")
        raise ConfigError.for_key(f"model.{key}", f"does not apply to model '{name}' (only to "
                                  f"{', '.join(owners)}): {fix}")
    return build_dataclass(cls, data, "model")


# metrics.json's top-level entries beside its heads (runs.run_timing; a distill.teacher run's
# teacher; the default recipe's candidates): no task may take them
RUN_TIMING_KEYS = ("best_epoch", "epochs", "seconds_to_best", "seconds", "select_metric",
                   "stopped", "teacher", "candidates")


def _build_tasks(tasks: Any) -> dict[str, TaskConfig]:
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError.for_key("tasks", "must map at least one task name to {dataset: ...}")
    built = {}
    for name, task in tasks.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError.for_key(f"tasks.{name}",
                                      "is not a task name: task names must be identifiers")
        if name in RUN_TIMING_KEYS:
            raise ConfigError.for_key(f"tasks.{name}", "is reserved: metrics.json gives the "
                                      "run's timing under that name; rename the task")
        if not isinstance(task, dict) or not task.get("dataset"):
            raise ConfigError.for_key(f"tasks.{name}.dataset", "is missing")
        built[name] = build_dataclass(TaskConfig, task, f"tasks.{name}")
    return built


def from_dict(data: Any) -> Config:
    """Build and validate a :class:`Config` from plain data (parsed YAML or JSON).

    Parameters
    ----------
    data : dict
        The config; ``heads``, ``thresholds`` and ``textcnn_version`` (a model folder's extras)
        are ignored.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping at top level, got {type(data).__name__}")
    data = dict(data)
    tasks = data.pop("tasks", None)
    # model folders carry these next to the config; they are not settings
    for extra in ("heads", "textcnn_version", "weights_sha256", "trained_at", "thresholds"):
        data.pop(extra, None)
    model = _build_model(data.pop("model", None))
    if model.input_kind == "image" and "tokenizer" in data:
        raise ConfigError.for_key("tokenizer", f"is for text models; model '{model.name}' reads "
                                  "pixels: remove the tokenizer section")
    known = set(section_names())
    unknown = sorted(str(key) for key in set(data) - known)
    if unknown:
        raise unknown_key(unknown[0], known)
    sections = {name: data.pop(name, None) for name in SECTIONS}
    cfg = build_dataclass(Config, data, "")
    sections = {name: build_dataclass(SECTIONS[name].cls, value, name)
                for name, value in sections.items()}
    cfg.model = model
    cfg.tasks = _build_tasks(tasks)
    cfg.sections = sections
    check_fields(cfg)
    for rule in cross_field_rules():
        rule(cfg)
    return cfg


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``--set`` overrides and validate it.

    Examples
    --------
    >>> cfg = load_config("configs/kim2014/sst2.yaml", ["train.epochs=2"])
    >>> cfg.train.epochs, cfg.tasks["sentiment"].dataset
    (2, 'sst2')
    """
    data = apply_overrides(read_yaml(path), overrides or [])
    try:
        return from_dict(data)
    except ConfigError as exc:  # blamed on the --set item that gave the key, else on the file
        raise blame(exc, str(path), overrides or []) from None
