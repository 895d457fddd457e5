"""The folded backend: Kim's convolutions (and the DPCNN's region embedding) precomputed into
the embedding table."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from textcnn.backends import folded
from textcnn.backends.folded import FoldedDPCNN, FoldedTextCNN, table_bytes, why_not_foldable
from textcnn.classifier import TextClassifier
from textcnn.config import TextCNNConfig
from textcnn.errors import InputError
from textcnn.heads import softmax
from textcnn.models import DPCNN, TextCNN, build_model

# empty, 1 token, 2 and 4 tokens (< the widest kernel), unknown words, long, truncated
TEXTS = ["", "good", "not good", "a b c d", "zzzqqq xxyyzz", "a gorgeous , witty film",
         "the acting is fine but the script is a dull , plodding mess " * 4, "word " * 200]


def random_batch(vocab: int, n: int = 40, seed: int = 0):
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[0, 1, 2, 4], rng.integers(0, 30, n - 4)])
    ids = np.zeros((n, int(lengths.max())), dtype=np.int64)
    for row, length in zip(ids, lengths):
        row[:length] = rng.integers(1, vocab, length)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


@pytest.mark.parametrize("kernel_sizes", [(3, 4, 5), (1, 2), (7,)])
def test_folded_logits_match_the_convolutions(kernel_sizes):
    torch.manual_seed(0)
    model = TextCNN(300, {"sentiment": 2, "topic": 5}, embedding_dim=24,
                    kernel_sizes=kernel_sizes, channels=12).eval()
    fold = FoldedTextCNN(model)
    ids, lengths = random_batch(300)
    with torch.inference_mode():
        want, got = model(ids, lengths), fold(ids, lengths)
        assert set(got) == {"sentiment", "topic"}
        for head in want:
            torch.testing.assert_close(got[head], want[head], atol=1e-5, rtol=0)
        # batch independence: each text alone gives its row of the padded batch
        for i in (0, 1, 3, 17):
            alone = fold(ids[i:i + 1, :max(int(lengths[i]), 1)], lengths[i:i + 1])
            torch.testing.assert_close(alone["topic"], got["topic"][i:i + 1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("options", [{}, {"embedding_mode": "multichannel"},
                                     {"conv_tokens": 6}, {"ngram_buckets": 64, "depth": 1}])
def test_folded_dpcnn_matches_its_region_convolution(options):
    torch.manual_seed(0)
    model = DPCNN(300, {"sentiment": 2, "topic": 5}, embedding_dim=24, channels=12,
                  **{"depth": 3, **options}).eval()
    fold = FoldedDPCNN(model)
    assert table_bytes(model) == fold.table.numel() * 4 == 4 * 3 * 301 * 12
    ids, lengths = random_batch(300)
    with torch.inference_mode():
        want, got = model(ids, lengths), fold(ids, lengths)
        for head in want:
            torch.testing.assert_close(got[head], want[head], atol=1e-5, rtol=0)
        for i in (0, 1, 3, 17):  # each text alone gives its row of the padded batch
            alone = fold(ids[i:i + 1, :int(lengths[i])], lengths[i:i + 1])
            torch.testing.assert_close(alone["topic"], got["topic"][i:i + 1], atol=1e-5, rtol=0)
        fold.table[0, int(ids[3, 0])] += 1.0  # the first token, as position 1's left neighbour
        moved = (fold(ids[3:4], lengths[3:4])["topic"] - want["topic"][3:4]).abs().max()
    assert moved > 1e-3


def test_a_perturbed_table_is_caught():
    """The parity check above can fail: one changed table entry moves the logits."""
    torch.manual_seed(0)
    model = TextCNN(50, {"sentiment": 2}, embedding_dim=8, channels=4).eval()
    fold = FoldedTextCNN(model)
    ids, lengths = torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([5])
    with torch.no_grad():
        fold.table0[5] += 1.0  # kernel 3, offset 0, token 5
        diff = (fold(ids, lengths)["sentiment"] - model(ids, lengths)["sentiment"]).abs().max()
    assert diff > 1e-3


def test_classifier_backends_agree_on_real_text(trained):
    clf, folder = trained
    auto = TextClassifier.from_pretrained(folder)
    plain = TextClassifier.from_pretrained(folder, backend="torch")
    assert (auto.backend, plain.backend) == ("folded", "torch")
    for batch_size in (3, 500):
        np.testing.assert_allclose(auto.predict_proba(TEXTS, batch_size=batch_size)["sentiment"],
                                   plain.predict_proba(TEXTS)["sentiment"], atol=1e-5, rtol=0)
    assert [p["sentiment"][0]["label"] for p in auto.predict(TEXTS)] == \
        [p["sentiment"][0]["label"] for p in plain.predict(TEXTS)]
    assert auto.set_backend("torch") == "torch" and auto.engine.module is auto.model


def test_table_size_is_what_the_buffers_take():
    model = TextCNN(1000, {"sentiment": 2}, embedding_dim=16, kernel_sizes=(3, 4, 5), channels=10)
    fold = FoldedTextCNN(model)
    tables = sum(getattr(fold, f"table{i}").numel() * 4 for i in range(3))
    assert table_bytes(model) == tables == 4 * 1000 * 12 * 10


def test_models_that_do_not_fold_fall_back_or_say_why(trained, monkeypatch):
    clf, _ = trained
    normed = build_model(TextCNNConfig(embedding_dim=8, channels=4, norm="batch"), 50,
                         {"sentiment": 2}).eval()
    assert "norm" in why_not_foldable(normed)
    with pytest.raises(ValueError, match="cannot fold this model"):
        FoldedTextCNN(normed)
    other = TextClassifier(normed, clf.tokenizer, clf.config, clf.heads)
    assert other.set_backend("auto") == "torch"
    with pytest.raises(InputError, match="backend 'folded' does not fit this model: .*norm"):
        other.set_backend("folded")
    assert other.set_backend("onnx") == "onnx"  # every backend name is accepted
    # the byte budget: "auto" stays with the convolutions, an explicit "folded" still folds
    monkeypatch.setattr(folded, "MAX_TABLE_BYTES", 1000)
    small = TextClassifier(clf.model, clf.tokenizer, clf.config, clf.heads)
    assert "MiB" in why_not_foldable(clf.model, 1000)
    assert small.set_backend("auto") == "torch" and small.set_backend("folded") == "folded"


def test_unknown_backend_is_a_clear_error(trained):
    _, folder = trained
    with pytest.raises(InputError, match="unknown backend 'gpu'; choose one of auto, folded"):
        TextClassifier.from_pretrained(folder, backend="gpu")


def test_folded_probabilities_sum_to_one(trained):
    clf, _ = trained
    fold = TextClassifier(clf.model, clf.tokenizer, clf.config, clf.heads, backend="folded")
    logits = fold.engine.logits(fold.prepare(TEXTS), 4)["sentiment"]
    np.testing.assert_allclose(softmax(logits).sum(axis=1), 1.0, atol=1e-6)
