"""Config: defaults, per-model settings, field checks, saved configs, every shipped config."""

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import torch

from textcnn.classifier import TextClassifier
from textcnn.config import (
    MODEL_CONFIGS,
    Config,
    DPCNNConfig,
    TokenizerConfig,
    from_dict,
    load_config,
    model_arguments,
)
from textcnn.embeddings import read_vectors
from textcnn.errors import ConfigError, ModelFolderError
from textcnn.models import DPCNN, REGISTRY, build_model
from textcnn.ngrams import WideAndDeep
from textcnn.sources import folder_embeddings, is_model_folder, resolve_source
from textcnn.tokenizer import train_tokenizer

ROOT = Path(__file__).resolve().parents[1]


def base(**over):
    data = {"tasks": {"sentiment": {"dataset": "sst2"}}}
    data.update(over)
    return data


def test_defaults_and_values():
    cfg = from_dict(base(train={"epochs": 2, "lr": 1}))
    assert cfg.train.epochs == 2 and cfg.train.lr == 1.0
    assert cfg.model.kernel_sizes == [3, 4, 5] and cfg.model.channels == 100
    assert cfg.tasks["sentiment"].dataset == "sst2"


@pytest.mark.parametrize(
    "data, key",
    [
        (base(train={"epochz": 3}), "config key 'train.epochz"),
        (base(model={"channels": "many"}), "config key 'model.channels"),
        (base(model={"kernel_sizes": [3, "x"]}), "config key 'model.kernel_sizes[1]"),
        (base(tokenizer={"lowercase": "yes"}), "config key 'tokenizer.lowercase"),
        (base(train={"optimizer": "sgd"}), "train.optimizer"),
        (base(train={"batch_size": 0}), "train.batch_size"),
        (base(train={"schedule": "linear"}), "train.schedule"),
        (base(train={"warmup": 1.5}), "train.warmup"),
        (base(train={"ema": -0.1}), "train.ema"),
        (base(train={"label_smoothing": 1.0}), "train.label_smoothing"),
        ({"tasks": {"sentiment": {"dataset": "sst2", "colour": 1}}}, "tasks.sentiment.colour"),
        ({"tasks": {"sentiment": {}}}, "tasks.sentiment.dataset"),
        ({"tasks": {"sentiment": {"dataset": "sst2", "loss_weight": -1}}},
         "tasks.sentiment.loss_weight"),
        ({"model": {}}, "tasks"),
        (base(train={"lr": float("nan")}), "train.lr"),
        (base(model={"nope": 1}), "config key 'model.nope"),
        (base(model={"name": "rnn"}), "model.name"),
        (base(model={"name": 3}), "config key 'model.name"),
        ({"tasks": {"1x": {"dataset": "sst2"}}}, "tasks.1x"),
    ],
)
def test_bad_config_names_the_dotted_key(data, key):
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        from_dict(data)


def test_yaml_file_overrides_and_duplicate_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks:\n  sentiment: {dataset: sst2}\ntrain: {epochs: 4}\n")
    cfg = load_config(path, ["train.epochs=7", "model.kernel_sizes=[2, 3]"])
    assert cfg.train.epochs == 7 and cfg.model.kernel_sizes == [2, 3]
    with pytest.raises(ConfigError, match=r"^--set train.nope=1: config key 'train.nope'"):
        load_config(path, ["train.nope=1"])
    path.write_text("tasks:\n  a: {dataset: sst2}\n  a: {dataset: mr}\n")
    with pytest.raises(ConfigError, match="c.yaml: config key 'a' is given twice"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


def test_each_model_has_its_own_settings():
    assert type(Config().model).name == "textcnn"
    for name in ("textcnn", "dpcnn", "imagecnn"):
        cfg = from_dict(base(model={"name": name}))
        assert type(cfg.model) is MODEL_CONFIGS[name] and cfg.model.name == name
        fields = dataclasses.asdict(cfg.model)
        if fields.pop("ngram_punctuation", False) is not True:  # written only when false
            assert name == "imagecnn"
        assert cfg.to_dict()["model"] == {"name": name, **fields}
    dpcnn = from_dict(base(model={"name": "dpcnn"})).to_dict()["model"]
    assert dpcnn == {"name": "dpcnn", "embedding_dim": 300, "channels": 100, "depth": 8,
                     "dropout": 0.5, "word_dropout": 0.0, "pretrained": "",
                     "embedding_reduce": "none", "embedding_mode": "non-static",
                     "ngram_buckets": 0, "ngram_orders": [1, 2], "ngram_scale": 1.0,
                     "ngram_l2": 0.0, "conv_tokens": 0, "deep": True}
    assert "depth" not in from_dict(base()).to_dict()["model"]
    skipping = from_dict(base(model={"ngram_buckets": 64, "ngram_punctuation": False}))
    assert skipping.to_dict()["model"]["ngram_punctuation"] is False


@pytest.mark.parametrize("model, key, owners", [
    ({"name": "dpcnn", "kernel_sizes": [3]}, "kernel_sizes", "textcnn"),
    ({"name": "dpcnn", "norm": "none"}, "norm", "textcnn, imagecnn"),
    ({"blocks": [8]}, "blocks", "imagecnn"),
    ({"name": "textcnn", "depth": 3}, "depth", "dpcnn"),
    ({"name": "imagecnn", "pretrained": "x"}, "pretrained", "textcnn, dpcnn, charcnn"),
])
def test_a_key_of_another_model_names_the_key_the_model_and_the_fix(model, key, owners):
    with pytest.raises(ConfigError) as err:
        from_dict(base(model=model))
    message = str(err.value)
    name = model.get("name", "textcnn")
    assert message.startswith(f"config key 'model.{key}' does not apply to model '{name}' "
                              f"(only to {owners}): remove it, or set model.name: ")
    assert len(message.splitlines()) == 1


def test_the_registry_pairs_each_config_with_the_model_taking_its_fields():
    assert {name: entry.config for name, entry in REGISTRY.items()} == MODEL_CONFIGS
    for name, entry in REGISTRY.items():
        assert entry.config.name == name and entry.config.input_kind in ("text", "image")
        assert all(f.metadata["why"] for f in dataclasses.fields(entry.config))
        # the encoder takes the architecture's own fields, the network the shared ones
        keywords = {p.name for p in inspect.signature(entry.model.encoder_class).parameters
                    .values() if p.kind is p.KEYWORD_ONLY}
        shared = {"dropout"} | ({f.name for f in dataclasses.fields(WideAndDeep)}
                                if entry.config.input_kind == "text" else set())
        assert set(model_arguments(entry.config())) == keywords | shared
        assert not keywords & shared
    assert "pretrained" not in model_arguments(DPCNNConfig())  # the trainer reads it


def test_a_saved_config_with_another_models_key_is_refused(tmp_path):
    """config.json is read as strictly as a YAML config: a dpcnn folder's config naming Kim's
    kernel_sizes is a corrupt folder (named, with the key), not silently cut."""
    written = from_dict({"tasks": {"topic": {"dataset": "x"}}, "model": {"name": "dpcnn",
                                                                         "depth": 2}})
    tokenizer = train_tokenizer(["a good film", "a bad film", "the plot"], TokenizerConfig())
    torch.manual_seed(0)
    model = build_model(written.model, tokenizer.get_vocab_size(), {"topic": 2}).eval()
    TextClassifier(model, tokenizer, written, {"topic": ["a", "b"]}).save(tmp_path)
    loaded = TextClassifier.from_pretrained(tmp_path, backend="torch")
    assert isinstance(loaded.model, DPCNN) and loaded.config == written
    data = json.loads((tmp_path / "config.json").read_text())
    data["model"]["kernel_sizes"] = [3, 4, 5]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFolderError, match="'model.kernel_sizes' does not apply to model "
                                               "'dpcnn'"):
        TextClassifier.from_pretrained(tmp_path, backend="torch")
    del data["model"]["kernel_sizes"], data["kind"]
    (tmp_path / "config.json").write_text(json.dumps(data))
    with pytest.raises(ModelFolderError, match="'kind' is missing"):
        TextClassifier.from_pretrained(tmp_path, backend="torch")


def _vector_width(source: str) -> int:
    """The size of the vectors ``source`` (model.pretrained) names; skips when not installed."""
    try:
        path = resolve_source(source)
    except ConfigError as exc:
        pytest.skip(f"model.pretrained {source!r} is not installed here: {exc}")
    if is_model_folder(path):
        return folder_embeddings(path, 1).shape[1]
    return read_vectors(path, set())[1]


SHIPPED = [*sorted(ROOT.glob("configs/**/*.yaml")), ROOT / "textcnn" / "recipes" / "default.yaml"]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_config_builds_its_model(path):
    from textcnn.recipes import recipe_config

    assert len(SHIPPED) > 20  # configs/<group>/*.yaml all found
    cfg = recipe_config("sst2") if path.parent.name == "recipes" else load_config(path)
    assert cfg.tasks and all(task.dataset for task in cfg.tasks.values())
    heads = {name: 3 for name in cfg.tasks}
    torch.manual_seed(0)
    if cfg.model.input_kind == "image":
        model = build_model(cfg.model, 1, heads).eval()  # grey-scale, as digits and MNIST
        out = model(torch.rand(2, 1, 16, 16))
    else:
        model = build_model(cfg.model, 50, heads).eval()  # a small vocabulary
        out = model(torch.randint(1, 50, (2, 12)), torch.tensor([12, 5]))
    assert {h: tuple(o.shape) for h, o in out.items()} == {h: (2, 3) for h in heads}
    assert all(torch.isfinite(o).all() for o in out.values())
    if cfg.model.input_kind == "text" and cfg.model.pretrained:
        width = _vector_width(cfg.model.pretrained)
        assert width == cfg.model.embedding_dim, (
            f"{path.name}: model.embedding_dim {cfg.model.embedding_dim}, vectors {width}-d")
