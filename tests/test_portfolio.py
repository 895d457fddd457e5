"""The default recipe compares candidate recipes on validation carves of the training rows and
keeps the best: the choice and every candidate's scores in the log, metrics.json and the card."""

from __future__ import annotations

import contextlib
import io
import json
import random

import numpy as np
import pytest
from test_cli import run_cli

from conftest import read_jsonl, write_jsonl
from textcnn.cli import main
from textcnn.config import from_dict
from textcnn.recipes import recipe_config, recipe_data, with_settings
from textcnn.recipes.portfolio import (
    CANDIDATES_DIR,
    MAX_ROWS,
    applies,
    candidates,
    choose,
    override_keys,
    standard_error,
)

# the recipe, shortened to seconds (none of these keys is one a candidate changes)
FAST = ["--set", "train.epochs=2", "--set", "train.min_steps=0", "--set", "model.channels=8",
        "--set", "train.threads=1", "--set", "train.lr=0.01"]


@pytest.fixture(scope="module")
def small_set(sst2_slice, tmp_path_factory):
    """300 training rows and 100 test rows of SST-2, no validation file: the run carves it."""
    folder = tmp_path_factory.mktemp("small-set")
    rng = random.Random(5)
    write_jsonl(folder / "train.jsonl", rng.sample(read_jsonl(sst2_slice / "train.jsonl"), 300))
    write_jsonl(folder / "test.jsonl", rng.sample(read_jsonl(sst2_slice / "test.jsonl"), 100))
    (folder / "dataset.json").write_text((sst2_slice / "dataset.json").read_text())
    return folder


@pytest.fixture(scope="module")
def compared(small_set, tmp_path_factory):
    """One default-recipe run on the small set: (its folder, metrics.json, stderr)."""
    out = tmp_path_factory.mktemp("compared") / "run"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["train", "--dataset", str(small_set), "--output", str(out), *FAST])
    assert code in (0, None), err.getvalue()
    return out, json.loads((out / "metrics.json").read_text()), err.getvalue()


def test_short_texts_compare_three_candidates_on_two_carves(compared):
    _, metrics, _ = compared
    entry = metrics["candidates"]
    table = entry["candidates"]
    assert [r["name"] for r in table] == ["cnn+wide", "cnn+wide hinge", "wide hinge"]
    assert entry["carves"] == 2 and entry["metric"] == "accuracy"
    for row in table:
        # carve 0 is the run's own 10% (30 rows), carve 1 a third of the 300 rows
        assert row["rows"] == [30, 100] and len(row["validation"]) == 2
        assert row["mean"] == pytest.approx(np.average(row["validation"], weights=row["rows"]),
                                            abs=1e-4)
    # the best mean when it beats the recipe's by more than one standard error, else the recipe
    best = next(r for r in table if r["mean"] == max(r["mean"] for r in table))
    recipe = table[0]
    se = np.sqrt(recipe["mean"] * (1 - recipe["mean"]) / sum(recipe["rows"]))
    assert entry["chosen"] == (best["name"] if best["mean"] - recipe["mean"] > se
                               else recipe["name"])
    assert f"one standard error ({se:.4f})" in entry["why"] or f"error, {se:.4f}," in entry["why"]


def test_the_kept_model_is_the_chosen_candidates_own_run(compared):
    out, metrics, err = compared
    entry = metrics["candidates"]
    chosen = next(r for r in entry["candidates"] if r["name"] == entry["chosen"])
    config = json.loads((out / "config.json").read_text())
    settings = {"train.loss": "cross_entropy", "model.deep": True, **chosen["settings"]}
    assert config["train"]["loss"] == settings["train.loss"]
    assert config["model"]["deep"] == settings["model.deep"]
    # the folder's validation score is the chosen candidate's carve-0 score: nothing retrained
    assert metrics["label"]["validation"]["accuracy"] == pytest.approx(chosen["validation"][0],
                                                                       abs=1e-4)
    assert "test" in metrics["label"]
    assert not (out / CANDIDATES_DIR).exists()
    assert f"kept candidate {entry['chosen']}: {entry['why']}" in err
    # the whole comparison is in the run's seconds
    assert metrics["seconds"] >= sum(s for r in entry["candidates"] for s in r["seconds"]) - 1


def test_the_card_lists_every_candidate_and_the_one_kept(compared):
    out, metrics, _ = compared
    card = (out / "README.md").read_text()
    section = card.split("## Candidates", 1)[1].split("\n## ", 1)[0]
    for row in metrics["candidates"]["candidates"]:
        assert f"| {row['name']} |" in section
    kept = [line for line in section.splitlines() if line.endswith("| kept |")]
    assert len(kept) == 1 and f"| {metrics['candidates']['chosen']} |" in kept[0]
    assert '`train.loss="squared_hinge" model.ngram_l2=0.00333`' in section


def test_a_loss_the_user_sets_trains_that_recipe_alone(small_set, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", small_set, "--output", out, *FAST,
                           "--set", "train.loss=squared_hinge")
    assert code in (0, None), err
    metrics = json.loads((out / "metrics.json").read_text())
    assert "candidates" not in metrics and "candidate" not in err
    assert json.loads((out / "config.json").read_text())["train"]["loss"] == "squared_hinge"


def test_a_time_budget_skips_the_candidates_that_would_pass_it(small_set, tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = run_cli(capsys, "train", "--dataset", small_set, "--output", out, *FAST,
                           "--time-budget", "0.01")
    assert code in (0, None), err
    table = json.loads((out / "metrics.json").read_text())["candidates"]["candidates"]
    assert "mean" in table[0] and "skipped" not in table[0]
    assert [r.get("skipped") for r in table[1:]] == ["train.time_budget"] * 2
    assert "candidate cnn+wide hinge: skipped" in err


def test_a_candidate_must_beat_the_recipe_by_more_than_noise():
    recipe = {"name": "cnn+wide", "mean": 0.8, "rows": [100, 333]}  # standard error 0.0192
    assert choose([recipe, {"name": "hinge", "mean": 0.819}])["name"] == "cnn+wide"
    assert choose([recipe, {"name": "hinge", "mean": 0.82}])["name"] == "hinge"
    assert choose([recipe, {"name": "a", "mean": 0.83}, {"name": "b", "mean": 0.85},
                   {"name": "skipped"}])["name"] == "b"
    assert standard_error(0.8, 433) == pytest.approx(0.01922, abs=1e-5)


def test_the_candidates_follow_the_data_and_the_users_keys():
    config = recipe_config("sst2")
    names = [c.name for c in candidates(config, 1000, long_texts=False)]
    assert names == ["cnn+wide", "cnn+wide hinge", "wide hinge"]
    hinge = candidates(config, 1000, long_texts=False)[1].settings
    assert hinge == {"train.loss": "squared_hinge", "model.ngram_l2": 0.001}
    # long texts: the recipe already trains on the hinge; only the cheap wide branch joins it
    long = recipe_config("sst2", settings={"train.loss": "squared_hinge",
                                           "model.conv_tokens": 128})
    assert [c.name for c in candidates(long, 1000, long_texts=True)] == \
        ["cnn+wide hinge", "wide hinge"]
    assert [c.name for c in candidates(config, MAX_ROWS + 1, False)] == ["cnn+wide"]
    assert [c.name for c in candidates(config, 1000, False, fixed={"train"})] == ["cnn+wide"]
    assert [c.name for c in candidates(config, 1000, False, fixed={"model.deep"})] == \
        ["cnn+wide", "cnn+wide hinge"]
    no_wide = recipe_config("sst2", overrides=["model.ngram_buckets=0"])
    assert [c.name for c in candidates(no_wide, 1000, False)] == ["cnn+wide"]
    by_loss = recipe_config("sst2", overrides=["train.select_metric=loss"])
    assert [c.name for c in candidates(by_loss, 1000, False)] == ["cnn+wide"]


def test_only_a_plain_single_label_text_run_compares():
    config = recipe_config("sst2")
    assert applies(config, resume=False) and not applies(config, resume=True)
    data = with_settings(recipe_data(), {})
    for task in ({"dataset": "x", "multi_label": True}, {"dataset": "x", "stream": True}):
        assert not applies(from_dict({**data, "tasks": {"label": task}}), resume=False)
    teacher = recipe_config("sst2", overrides=["distill.teacher=some/model"])
    assert not applies(teacher, resume=False)
    assert override_keys(["a.b=1", "c = {d: 2}"]) == {"a.b", "c"}
