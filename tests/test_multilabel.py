"""Multi-label heads: label sets in JSON and CSV, BCE training, tuned thresholds, the folder,
the backends, serving and the metrics."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from textcnn import load
from textcnn.config import TaskConfig, from_dict
from textcnn.data import load_raw, make_splits
from textcnn.errors import DataError
from textcnn.metrics import multilabel_metrics, multilabel_scores
from textcnn.multilabel import tune_thresholds
from textcnn.runs import evaluate_folder, train

COLOURS = ["blue", "green", "red"]
FILLER = ["the", "a", "of", "film", "and", "it", "is", "this", "that", "was", "very", "with"]


def colour_rows(n: int, seed: int, filler: list[str] = FILLER,
                words: tuple[int, int] = (4, 12), key: str = "labels") -> list[dict]:
    """Texts that name a random subset of the colours among ``words`` (a range) filler words;
    their ``key`` is that set."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        tags = sorted(c for c in COLOURS if rng.random() < 0.4)
        text = [rng.choice(filler) for _ in range(rng.randint(*words))] + tags
        rng.shuffle(text)
        rows.append({"text": " ".join(text), key: tags})
    return rows


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    folder = tmp_path_factory.mktemp("colours")
    for split, n, seed in (("train", 600, 0), ("validation", 150, 1), ("test", 150, 2)):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in colour_rows(n, seed)), encoding="utf-8")
    return folder


def _config(dataset, **task):
    return from_dict({
        "tasks": {"colour": {"dataset": str(dataset), "label_column": "labels",
                             "multi_label": True, **task}},
        "tokenizer": {"kind": "word", "max_length": 32},
        "model": {"embedding_dim": 16, "kernel_sizes": [1, 2], "channels": 8, "dropout": 0.1},
        "train": {"epochs": 6, "batch_size": 32, "lr": 0.02, "seed": 0, "threads": 1},
    })


@pytest.fixture(scope="module")
def trained_ml(colours, tmp_path_factory):
    out = tmp_path_factory.mktemp("ml") / "model"
    clf = train(_config(colours), output=out, log=lambda line: None)
    return clf, out


TEXTS = ["red and blue", "the film was very", "green", "", "a film with red green blue",
         "blue " * 40]


def test_json_lists_and_csv_separator_give_the_same_multi_hot_rows(colours, tmp_path):
    rows = colour_rows(20, 5) + [{"text": "no colour", "labels": []}]
    path = tmp_path / "tags.csv"
    path.write_text("text,labels\n" + "".join(
        f"{r['text']},{' | '.join(r['labels'])}\n" for r in rows), encoding="utf-8")
    csv = load_raw(TaskConfig(str(path), label_column="labels", multi_label=True,
                              label_separator="|"))
    jsonl = tmp_path / "tags.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    js = load_raw(TaskConfig(str(jsonl), label_column="labels", multi_label=True))
    assert csv.label_names == js.label_names == COLOURS
    want = np.array([[c in r["labels"] for c in COLOURS] for r in rows], dtype=np.float32)
    np.testing.assert_array_equal(csv.splits["all"].labels, want)
    np.testing.assert_array_equal(js.splits["all"].labels, want)
    assert csv.splits["all"].labels[-1].sum() == 0  # an empty cell: no label
    # CV folds and the validation carve work on label sets (no stratification)
    parts = make_splits(csv, seed=0, fold=0)
    assert sum(len(p) for p in parts.values()) == len(rows)


def test_unknown_label_names_its_line(tmp_path):
    folder = tmp_path / "named"
    folder.mkdir()
    (folder / "dataset.json").write_text(json.dumps({"label_names": ["a", "b"]}))
    (folder / "train.jsonl").write_text('{"text": "x", "label": ["a"]}\n'
                                        '{"text": "y", "label": ["a", "c"]}\n')
    with pytest.raises(DataError, match=r'train.jsonl:2: label "c" is outside'):
        load_raw(TaskConfig(str(folder), multi_label=True))


def test_tuned_threshold_is_the_known_f1_best_cut():
    # ranked: + + - + - -  -> F1 by cut: 1/2, 4/5, 2/3, 6/7 (best: the top four), 3/4, 2/3
    p = np.array([0.9, 0.8, 0.6, 0.4, 0.2, 0.1])
    y = np.array([1, 1, 0, 1, 0, 0])
    cols = np.stack([p, p, 1 - p], axis=1)
    # label 1: never true -> 0.5 kept; label 2: the same ranking mirrored -> the same cut
    labels = np.stack([y, np.zeros(6), 1 - y], axis=1)
    t = tune_thresholds(labels, cols)
    np.testing.assert_allclose(t, [0.3, 0.5, 0.3])
    # and nothing on a fine grid beats it
    grid = [multilabel_scores(y[:, None], (p >= g)[:, None])["micro_f1"]
            for g in np.linspace(0, 1, 101)]
    assert multilabel_scores(y[:, None], (p >= t[0])[:, None])["micro_f1"] == max(grid)
    # tied probabilities are never split
    assert tune_thresholds(np.array([[1], [0], [1]]), np.array([[0.5], [0.5], [0.2]]))[0] == 0.2


def test_metrics_keys_and_values():
    labels = np.array([[1, 0, 1], [0, 1, 0]])
    logits = np.array([[2.0, -2.0, 0.5], [-1.0, 1.0, -0.5]])  # row 0 label 2: p = 0.62
    m = multilabel_metrics(labels, logits)
    assert sorted(m) == ["accuracy", "loss", "macro_f1", "micro_f1", "subset_accuracy"]
    assert m["subset_accuracy"] == m["accuracy"] == 1.0 and m["micro_f1"] == 1.0
    m = multilabel_metrics(labels, logits, thresholds=np.array([0.5, 0.5, 0.7]))
    assert m["subset_accuracy"] == 0.5 and m["micro_f1"] == round(2 * 2 / (2 * 2 + 1), 6)


def test_training_learns_and_writes_thresholds_and_metrics(trained_ml, colours):
    clf, out = trained_ml
    saved = json.loads((out / "config.json").read_text())
    assert saved["tasks"]["colour"]["multi_label"] is True
    assert sorted(saved["thresholds"]["colour"]) == COLOURS
    np.testing.assert_allclose(clf.threshold("colour"),
                               [saved["thresholds"]["colour"][c] for c in COLOURS])
    test = json.loads((out / "metrics.json").read_text())["colour"]["test"]
    assert test["micro_f1"] > 0.9 and test["subset_accuracy"] > 0.8, test
    assert not (out / "confusion.png").exists()
    # `evaluate` reads the label sets the same way and scores at the stored thresholds
    assert evaluate_folder(out, str(colours), "test")["colour"]["test"] == test


def test_predict_answers_every_label_over_its_threshold(trained_ml):
    clf, _ = trained_ml
    proba = clf.predict_proba(TEXTS)["colour"]
    assert proba.shape == (len(TEXTS), 3) and not np.allclose(proba.sum(axis=1), 1)
    rows = clf.predict(TEXTS, top_k=1)
    for row, p in zip(rows, proba):
        want = [COLOURS[j] for j in np.argsort(-p, kind="stable") if p[j] >= clf.threshold(
            "colour")[j]]
        assert [x["label"] for x in row["colour"]] == want
        assert [x["score"] for x in row["colour"]] == [round(float(p[COLOURS.index(w)]), 6)
                                                       for w in want]
    assert rows[1]["colour"] == []  # filler words only: no colour
    fresh = colour_rows(100, 7)
    answers = clf.predict([r["text"] for r in fresh])
    right = [sorted(x["label"] for x in a["colour"]) == r["labels"] for a, r in zip(answers, fresh)]
    assert sum(right) >= 90, sum(right)


def test_round_trip_backends_and_batch_independence(trained_ml, tmp_path):
    clf, out = trained_ml
    want = clf.predict_proba(TEXTS)["colour"]
    copy = load(clf.save(tmp_path / "copy"), backend="torch")
    assert copy.multi_label == ["colour"]
    np.testing.assert_array_equal(copy.threshold("colour"), clf.threshold("colour"))
    assert copy.predict(TEXTS) == clf.predict(TEXTS)
    for backend in ("folded", "onnx"):
        other = load(out, backend=backend, threads=1)
        assert other.backend == backend
        np.testing.assert_allclose(other.predict_proba(TEXTS)["colour"], want, atol=1e-5)
        assert [[x["label"] for x in r["colour"]] for r in other.predict(TEXTS)] == \
            [[x["label"] for x in r["colour"]] for r in clf.predict(TEXTS)]
    for i, text in enumerate(TEXTS):  # alone, and in batches of every size
        np.testing.assert_allclose(clf.predict_proba([text])["colour"][0], want[i], atol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(TEXTS, batch_size=2)["colour"], want, atol=1e-6)


def test_serving_answers_what_predict_gives(trained_ml):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from textcnn.serve import ServeSettings, create_app

    clf, out = trained_ml
    with TestClient(create_app(out, ServeSettings(backend="torch"))) as client:
        got = client.post("/v1/classify", json={"texts": TEXTS, "top_k": 1}).json()
        info = client.get("/v1/model").json()
    assert got["predictions"] == clf.predict(TEXTS)
    assert info["thresholds"]["colour"] == dict(zip(COLOURS, clf.threshold("colour").tolist()))


def test_batcher_never_cuts_a_multi_label_answer_to_top_k():
    from textcnn.serve import MicroBatcher

    def predict(texts, top_k):
        return [{"tags": [{"label": "a", "score": 0.9}, {"label": "b", "score": 0.8}],
                 "class": [{"label": "x", "score": 0.7}, {"label": "y", "score": 0.3}][:top_k]}
                for _ in texts]

    batcher = MicroBatcher(predict, whole_heads=["tags"])
    from textcnn.serve.batcher import PendingRequest

    rows = batcher._forward([PendingRequest(["one"], 1, None), PendingRequest(["two"], 2, None)])
    assert [len(rows[0][0]["tags"]), len(rows[0][0]["class"])] == [2, 1]
    assert [len(rows[1][0]["tags"]), len(rows[1][0]["class"])] == [2, 2]


def test_a_multi_label_and_a_single_label_head_train_together(colours, tmp_path):
    single = tmp_path / "red"
    single.mkdir()
    for split in ("train", "validation", "test"):
        rows = [json.loads(line) for line in (colours / f"{split}.jsonl").read_text().splitlines()]
        (single / f"{split}.jsonl").write_text("".join(
            json.dumps({"text": r["text"], "label": "yes" if "red" in r["labels"] else "no"})
            + "\n" for r in rows))
    config = _config(colours).to_dict()
    config["tasks"]["red"] = {"dataset": str(single)}
    config["train"]["epochs"] = 3
    clf = train(from_dict(config), output=tmp_path / "model", log=lambda line: None)
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert "micro_f1" in metrics["colour"]["test"] and "micro_f1" not in metrics["red"]["test"]
    assert metrics["red"]["test"]["accuracy"] > 0.9, metrics
    row = load(tmp_path / "model").predict(["red and blue"], top_k=1)[0]
    assert len(row["red"]) == 1 and row == clf.predict(["red and blue"], top_k=1)[0]
    assert clf.multi_label == ["colour"]


def test_multi_label_image_task_is_refused():
    from textcnn.modality import load_datasets

    config = from_dict({"tasks": {"digit": {"dataset": "digits", "multi_label": True}},
                        "model": {"name": "imagecnn", "blocks": [4]}})
    with pytest.raises(DataError, match=r"tasks.digit.multi_label: image datasets have one"):
        load_datasets(config)
