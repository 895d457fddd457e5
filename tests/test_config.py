from pathlib import Path

import pytest

from textcnn.config import from_dict, load_config
from textcnn.errors import ConfigError


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
        (base(train={"epochz": 3}), "config.train.epochz"),
        (base(model={"channels": "many"}), "config.model.channels"),
        (base(model={"kernel_sizes": [3, "x"]}), "config.model.kernel_sizes[1]"),
        (base(tokenizer={"lowercase": "yes"}), "config.tokenizer.lowercase"),
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
    with pytest.raises(ConfigError, match=r"c.yaml: .*config.train.nope"):
        load_config(path, ["train.nope=1"])
    path.write_text("tasks:\n  a: {dataset: sst2}\n  a: {dataset: mr}\n")
    with pytest.raises(ConfigError, match="'a' is given twice"):
        load_config(path)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[1].glob("configs/*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.tasks and all(task.dataset for task in cfg.tasks.values())
