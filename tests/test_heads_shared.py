"""Every registered head passes one test: its loss trains, its probabilities are probabilities,
its decoding agrees with its answers and metrics, and a small model folder with it round-trips
through save/load, the ONNX and folded backends and padding."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

from textcnn.classifier import load
from textcnn.config import from_dict
from textcnn.heads import HEADS
from textcnn.runs import train

NAMES = sorted(HEADS)
LABELS = 4  # ordered: a row's label is how many "up" words it holds
FILLER = ["the", "film", "was", "a", "plot", "and", "it", "of", "with", "very"]


def _head(name):
    return HEADS[name]("squared_hinge" if name == "squared_hinge" else "cross_entropy")


def _targets(head, rng: np.random.Generator, n: int) -> np.ndarray:
    if head.multi_label:
        return (rng.random((n, LABELS)) < 0.4).astype(np.float32)  # (n, labels) multi-hot
    return rng.integers(0, LABELS, n)  # (n,) label ids


@pytest.mark.parametrize("name", NAMES)
def test_the_loss_trains_and_sums_over_rows(name):
    head, rng = _head(name), np.random.default_rng(0)
    assert head.labels(head.outputs(LABELS)) == LABELS
    y = torch.as_tensor(_targets(head, rng, 16))
    logits = torch.randn(16, head.outputs(LABELS), generator=torch.Generator().manual_seed(0),
                         requires_grad=True)
    loss = head.loss(logits, y)
    loss.backward()
    assert torch.isfinite(loss) and loss.item() > 0
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    torch.testing.assert_close(head.loss(logits, y, reduction="sum"), 16 * loss)
    with torch.no_grad():  # a step down the gradient lowers it
        assert head.loss(logits - 0.1 * logits.grad, y).item() < loss.item()


@pytest.mark.parametrize("name", NAMES)
def test_probabilities_decoding_answers_and_metrics_agree(name):
    head, rng = _head(name), np.random.default_rng(1)
    logits = rng.normal(0, 2, (40, head.outputs(LABELS))).astype(np.float32)
    labels = _targets(head, rng, 40)
    p = head.probabilities(logits)
    assert p.shape == (40, LABELS) and (p >= 0).all() and (p <= 1).all()
    answers = head.ranked(p, 1)
    metrics = head.metrics(labels, logits)
    assert all(0 <= v <= 1 for k, v in metrics.items() if k != "loss" and k != "mae")
    if head.multi_label:
        cut = head.threshold(LABELS)
        assert [set(a.tolist()) for a in answers] == [set(np.flatnonzero(r >= cut)) for r in p]
        hits = [set(a.tolist()) == set(np.flatnonzero(t)) for a, t in zip(answers, labels)]
        assert metrics["subset_accuracy"] == round(float(np.mean(hits)), 6)
    else:
        np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-6)
        decoded = head.decode(logits)
        assert [a.tolist() for a in answers] == [[d] for d in decoded.tolist()]
        assert metrics["accuracy"] == round(float(np.mean(decoded == labels)), 6)
        nll = -np.log(p[np.arange(40), labels]).mean()
        assert metrics["loss"] == pytest.approx(nll, abs=1e-5)  # the mean -log p(label)


def _rows(n: int, seed: int, multi_label: bool) -> list[dict]:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        k = rng.randrange(LABELS)
        words = [rng.choice(FILLER) for _ in range(rng.randint(3, 10))] + ["up"] * k
        rng.shuffle(words)
        label = [f"l{j}" for j in range(k)] if multi_label else f"r{k}"
        rows.append({"text": " ".join(words), "label": label})
    return rows


@pytest.fixture(scope="module", params=NAMES)
def trained_head(request, tmp_path_factory):
    name = request.param
    multi = HEADS[name].multi_label
    folder = tmp_path_factory.mktemp(f"data-{name}")
    for split, n, seed in (("train", 300, 0), ("validation", 80, 1), ("test", 80, 2)):
        (folder / f"{split}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in _rows(n, seed, multi)), encoding="utf-8")
    config = from_dict({
        "tasks": {"t": {"dataset": str(folder), "head": name, "multi_label": multi}},
        "tokenizer": {"kind": "word", "max_length": 32},
        "model": {"embedding_dim": 16, "kernel_sizes": [1, 2], "channels": 8, "dropout": 0.1,
                  "ngram_buckets": 512},
        "train": {"epochs": 2, "batch_size": 32, "lr": 0.02, "seed": 0, "threads": 1},
    })
    out = tmp_path_factory.mktemp(f"run-{name}") / "model"
    clf = train(config, output=out, log=lambda line: None)
    return name, clf, out


TEXTS = ["up up the film", "", "a", "up up up", "the plot was very thin " * 6]


def test_a_model_folder_round_trips_with_every_backend(trained_head):
    name, clf, out = trained_head
    saved = json.loads((out / "config.json").read_text())
    assert saved["tasks"]["t"]["head"] == name
    want = clf.predict_proba(TEXTS)["t"]
    assert want.shape == (len(TEXTS), len(clf.heads["t"]))
    loaded = load(out, backend="torch")
    np.testing.assert_array_equal(loaded.predict_proba(TEXTS)["t"], want)
    assert loaded.predict(TEXTS, top_k=2) == clf.predict(TEXTS, top_k=2)
    assert type(loaded.head_objects["t"]) is HEADS[name]
    metrics = json.loads((out / "metrics.json").read_text())["t"]
    assert set(metrics["test"]) == set(metrics["validation"])
    folded = load(out, backend="folded", threads=1)
    np.testing.assert_allclose(folded.predict_proba(TEXTS)["t"], want, atol=1e-5)
    from textcnn.export import export

    export(out)
    onnx = load(out, backend="onnx", threads=1)
    assert onnx.backend == "onnx"
    np.testing.assert_allclose(onnx.predict_proba(TEXTS)["t"], want, atol=1e-5)


def test_padding_does_not_change_a_prediction(trained_head):
    _, clf, _ = trained_head
    together = clf.predict_proba(TEXTS)["t"]
    for i, text in enumerate(TEXTS):
        np.testing.assert_allclose(clf.predict_proba([text])["t"][0], together[i], atol=1e-6)
