"""The ordinal head: K-1 step logits, rank-consistent probabilities, the median answered, and
the mean absolute error in metrics.json beside accuracy."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from textcnn.config import from_dict
from textcnn.errors import ConfigError, InputError
from textcnn.heads import HEADS, head_for
from textcnn.runs import evaluate_folder, train

HEAD = HEADS["ordinal"]()
WORDS = ["awful", "bad", "okay", "good", "great"]


def test_the_loss_is_the_negative_log_likelihood_of_the_label():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, (50, 4)).astype(np.float32)  # 5 labels
    labels = rng.integers(0, 5, 50)
    p = HEAD.probabilities(logits)
    want = -np.log(p[np.arange(50), labels])
    got = [HEAD.loss(torch.from_numpy(logits[i:i + 1]), torch.tensor(labels[i:i + 1])).item()
           for i in range(50)]
    np.testing.assert_allclose(got, want, rtol=1e-4)


def test_probabilities_are_rank_consistent_and_the_median_is_answered():
    rng = np.random.default_rng(1)
    p = HEAD.probabilities(rng.normal(0, 3, (200, 4)))
    above = 1 - np.cumsum(p, axis=1)[:, :-1]  # P(y > k)
    assert (np.diff(above, axis=1) <= 1e-12).all()  # never more likely to be above a higher one
    # the answer is the label that minimises the expected absolute error
    cost = np.abs(np.arange(5)[:, None] - np.arange(5)[None, :])  # (answer, true)
    best = (p @ cost.T).argmin(axis=1)
    np.testing.assert_array_equal(HEAD.median(p), best)


def test_mae_counts_label_steps():
    logits = np.array([[9.0, 9.0, 9.0, 9.0], [-9.0, 0.0, 0.0, 0.0], [9.0, 9.0, -9.0, 0.0]])
    # answered 4, 0, 2 against 1, 0, 4: errors of 3, 0 and 2 steps
    m = HEAD.metrics(np.array([1, 0, 4]), logits)
    assert m["mae"] == round(5 / 3, 6) and m["accuracy"] == round(1 / 3, 6)
    assert list(m) == ["accuracy", "macro_f1", "loss", "mae"]


def test_the_head_key_is_checked_with_the_keys_it_meets():
    with pytest.raises(ConfigError, match=r"tasks\.t\.head.*'ordinal'.*one label per row"):
        from_dict({"tasks": {"t": {"dataset": "x", "head": "ordinal", "multi_label": True}}})
    config = from_dict({"tasks": {"t": {"dataset": "x", "head": "ordinal"}}})
    assert type(head_for(config, "t")) is HEADS["ordinal"]
    assert config.to_dict()["tasks"]["t"]["head"] == "ordinal"
    assert "head" not in from_dict({"tasks": {"t": {"dataset": "x"}}}).to_dict()["tasks"]["t"]
    with pytest.raises(ConfigError, match=r"train\.select_metric.*squared_hinge margins"):
        from_dict({"tasks": {"t": {"dataset": "x", "head": "squared_hinge"}},
                   "train": {"select_metric": "loss"}})
    from_dict({"tasks": {"t": {"dataset": "x", "head": "ordinal"}},
               "train": {"select_metric": "loss"}})  # its loss is the one it reports


def test_the_default_recipe_trains_a_head_of_its_own_as_it_is():
    from textcnn.recipes import recipe_config
    from textcnn.recipes.portfolio import applies

    assert applies(recipe_config("sst5"), resume=False)  # its candidates vary train.loss
    assert not applies(recipe_config("sst5", overrides=["tasks.label.head=ordinal"]), False)


@pytest.fixture(scope="module")
def ratings(tmp_path_factory):
    """Texts whose rating 1-5 one word among filler says (awful .. great)."""
    folder = tmp_path_factory.mktemp("ratings")
    rng = random.Random(0)
    for split, n in (("train", 400), ("validation", 100), ("test", 100)):
        rows = []
        for _ in range(n):
            k = rng.randrange(5)
            words = ["the", "film", "was"] * rng.randint(1, 3) + [WORDS[k]]
            rng.shuffle(words)
            rows.append({"text": " ".join(words), "label": str(k + 1)})
        (folder / f"{split}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_a_run_reports_mae_and_evaluate_scores_it_the_same(ratings, tmp_path):
    config = from_dict({
        "tasks": {"stars": {"dataset": str(ratings), "head": "ordinal"}},
        "tokenizer": {"kind": "word", "max_length": 32},
        "model": {"embedding_dim": 16, "kernel_sizes": [1, 2], "channels": 8, "dropout": 0.1},
        "train": {"epochs": 8, "batch_size": 32, "lr": 0.02, "seed": 0, "threads": 1},
    })
    clf = train(config, output=tmp_path / "m", log=lambda line: None)
    assert clf.model.heads.layers["stars"].out_features == 4  # 5 ratings, 4 steps
    test = json.loads((tmp_path / "m" / "metrics.json").read_text())["stars"]["test"]
    assert sorted(test) == ["accuracy", "loss", "macro_f1", "mae"]
    assert test["accuracy"] > 0.8 and test["mae"] < 0.3  # the counts are learnt
    # textcnn evaluate reads the split file in chunks: the same numbers
    assert evaluate_folder(tmp_path / "m", str(ratings), "test") == {"stars": {"test": test}}
    (answer,) = clf.predict(["the film was good"], top_k=5)
    assert [a["label"] for a in answer["stars"]][0] == "4"
    assert len(answer["stars"]) == 5
    # its logits are steps, not labels: explain says so instead of naming a wrong label
    with pytest.raises(InputError, match=r"head 'stars' \(ordinal\) has 4 logits for 5 labels"):
        clf.explain(["the film was good"])
