"""Config error messages a user can act on: the close key for a typo, the YAML line, the
``--set`` item to blame; and ``--set`` values read as one scalar unless they are a flow list."""

import pytest

from textcnn.cli import main
from textcnn.config import from_dict, load_config
from textcnn.config_files import apply_overrides
from textcnn.errors import ConfigError
from textcnn.recipes import recipe_config

TASKS = {"tasks": {"s": {"dataset": "sst2"}}}


@pytest.mark.parametrize("data, message", [
    ({**TASKS, "train": {"epoch": 3}},
     "config key 'train.epoch' is unknown: did you mean 'train.epochs'?"),
    ({**TASKS, "trian": {"epochs": 3}}, "config key 'trian' is unknown: did you mean 'train'?"),
    ({"tasks": {"s": {"dataset": "sst2", "label_colum": "y"}}},
     "config key 'tasks.s.label_colum' is unknown: did you mean 'tasks.s.label_column'"),
    ({**TASKS, "model": {"chanels": 8}},
     "config key 'model.chanels' is unknown: did you mean 'model.channels'"),
    ({**TASKS, "model": {"kernel_size": [3]}},  # imagecnn's key, a typo of textcnn's
     "does not apply to model 'textcnn' (only to imagecnn): did you mean 'model.kernel_sizes'?"),
])
def test_a_misspelt_key_gets_the_key_it_resembles(data, message):
    with pytest.raises(ConfigError) as err:
        from_dict(data)
    assert message in str(err.value) and "(known:" not in str(err.value)


def test_a_key_like_no_other_lists_the_known_keys():
    with pytest.raises(ConfigError, match=r"'train.colour' is unknown \(known: .*epochs, "):
        from_dict({**TASKS, "train": {"colour": 3}})


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    path = tmp_path / "typo.yaml"
    path.write_text("tasks:\n  s: {dataset: sst2}\ntrain:\n  epochs: 3\n   lr: 0.1\n")
    assert main(["train", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}, line 5, column 6: not valid YAML: mapping values")
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    path.write_text("tasks:\n  s: {dataset: sst2\ntrain: {}\n")
    with pytest.raises(ConfigError, match=r"typo.yaml, line 3, .*flow mapping at line 2\)$"):
        load_config(path)


def test_a_bad_set_value_is_blamed_on_the_set_item_not_the_file(tmp_path, capsys):
    path = tmp_path / "ok.yaml"
    path.write_text("tasks:\n  s: {dataset: sst2}\ntrain: {epochz: 1}\n")
    with pytest.raises(ConfigError, match=r"^--set model.channels=lots: config key "
                                          r"'model.channels' must be an integer, got 'lots'$"):
        load_config(path, ["model.channels=lots"])
    with pytest.raises(ConfigError, match=r"^--set model.kernel_sizes=\[3, x\]: config key "
                                          r"'model.kernel_sizes\[1\]'"):
        load_config(path, ["model.kernel_sizes=[3, x]"])
    # a bad key of the file itself is still the file's, even with --set items beside it
    with pytest.raises(ConfigError, match=rf"^{path}: config key 'train.epochz'"):
        load_config(path, ["model.channels=8"])
    with pytest.raises(ConfigError, match=r"^--set train.lr=fast: config key 'train.lr'"):
        recipe_config("sst2", overrides=["train.lr=fast"])
    assert main(["train", "--dataset", "sst2", "--set", "train.epoch=2"]) == 2
    assert capsys.readouterr().err == ("error: --set train.epoch=2: config key 'train.epoch' is "
                                       "unknown: did you mean 'train.epochs'?\n")


@pytest.mark.parametrize("raw, value", [
    ("|", "|"), (">", ">"), ("#", "#"), ("-", "-"), ("*", "*"), ("a: b", "a: b"),
    ("3", 3), ("-3", -3), ("0.5", 0.5), ("1e-4", 1e-4), ("true", True), ("null", None),
    ("", None), ("[2, 3]", [2, 3]), ("[8]", [8]), ("{a: 1}", {"a": 1}), ("''", ""),
    ('"|"', "|"), ("2020-01-01", "2020-01-01"), ("x y", "x y"),
])
def test_set_values_are_one_scalar_unless_a_flow_list_or_mapping(raw, value):
    assert apply_overrides({}, [f"k={raw}"]) == {"k": value}


def test_a_separator_set_on_the_command_line_is_the_character_given():
    config = recipe_config("tags.jsonl", overrides=["tasks.label.multi_label=true",
                                                    "tasks.label.label_separator=|"])
    assert config.tasks["label"].label_separator == "|"
    config = load_config("configs/kim2014/sst2.yaml", ["tasks.sentiment.label_separator=>"])
    assert config.tasks["sentiment"].label_separator == ">"


def test_an_unparsable_set_value_names_the_set_item():
    with pytest.raises(ConfigError, match=r"^--set model.kernel_sizes=\[3,: cannot parse"):
        apply_overrides({}, ["model.kernel_sizes=[3,"])
