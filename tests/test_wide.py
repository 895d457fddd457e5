"""Wide and deep: the hashed n-gram TF-IDF branch (textcnn.ngrams) beside the CNN."""

from __future__ import annotations

import json
import math
from collections import Counter

import numpy as np
import pytest
import torch

from conftest import tiny_config
from textcnn.backends.base import TorchBackend
from textcnn.backends.folded import FoldedBackend, FoldedTextCNN
from textcnn.classifier import load
from textcnn.config import from_dict
from textcnn.data.batch import Encoded
from textcnn.errors import ConfigError
from textcnn.models import DPCNN, TextCNN
from textcnn.ngrams import PRIMES, SALT, NgramBranch

HEADS = {"sentiment": 2, "topic": 5}


def random_batch(vocab: int, n: int = 24, seed: int = 0, longest: int = 40):
    rng = np.random.default_rng(seed)
    lengths = np.concatenate([[0, 1, 2, 4], rng.integers(0, longest, n - 4)])
    ids = np.zeros((n, int(lengths.max())), dtype=np.int64)
    for row, length in zip(ids, lengths):
        row[:length] = rng.integers(1, vocab, length)
    return torch.from_numpy(ids), torch.from_numpy(lengths)


SKIPPED = range(3, 200, 7)  # the ids a branch built with ngram_punctuation=False passes over


def wide_model(cls=TextCNN, conv_tokens: int = 6, **kwargs) -> torch.nn.Module:
    """A tiny model with a fitted, non-zero wide branch (texts longer than conv_tokens)."""
    torch.manual_seed(0)
    model = cls(200, HEADS, embedding_dim=8, channels=4, ngram_buckets=101,
                conv_tokens=conv_tokens, **kwargs).eval()
    if model.wide.skip is not None:
        model.wide.skip_ids(SKIPPED)
    model.wide.fit_idf([random_batch(200, n=60, seed=1)])
    with torch.no_grad():
        model.wide.weight.normal_(0.0, 2.0)
    return model


def bucket(branch: NgramBranch, *ids: int) -> int:
    """The bucket of the n-gram ``ids`` (the documented hash)."""
    return (len(ids) * SALT + sum(i * PRIMES[j] for j, i in enumerate(ids))) % branch.buckets


def reference_logits(branch: NgramBranch, ids: list[int]) -> np.ndarray:
    """scikit-learn's sublinear TF-IDF over the buckets, L2-normalised, times the weight."""
    counts = Counter()
    for n in branch.orders:
        for t in range(len(ids) - n + 1):
            counts[bucket(branch, *ids[t:t + n])] += 1
    idf = branch.idf.numpy().astype(np.float64)
    x = np.zeros(branch.buckets)
    for b, tf in counts.items():
        x[b] = (1 + math.log(tf)) * idf[b]
    if np.linalg.norm(x) > 0:
        x /= np.linalg.norm(x)
    return branch.scale * x @ branch.weight.detach().numpy().astype(np.float64)


def test_branch_is_sublinear_tfidf_over_buckets_and_ignores_padding():
    model = wide_model(ngram_scale=3.0)
    ids, lengths = random_batch(200, seed=2)
    ids[5, : 8] = torch.tensor([7, 7, 7, 9, 7, 7, 9, 9])  # repeated uni- and bigrams: tf > 1
    lengths[5] = 8
    ids[5, 8:] = 0
    with torch.inference_mode():
        got = model.wide.flat_logits(ids, lengths).double().numpy()
    for row in range(len(lengths)):
        want = reference_logits(model.wide, ids[row, :lengths[row]].tolist())
        np.testing.assert_allclose(got[row], want, atol=1e-5, rtol=0)
    assert np.abs(got[5]).max() > 0.1  # not vacuous


def test_idf_is_fitted_on_training_texts():
    branch = NgramBranch(50, {"t": 2}, orders=(1,))
    ids = torch.tensor([[3, 4, 0], [3, 5, 5]])
    assert branch.fit_idf([(ids, torch.tensor([2, 3]))]) == 2
    idf = {i: branch.idf[bucket(branch, i)].item() for i in (0, 3, 4, 5, 7)}
    assert len({bucket(branch, i) for i in idf}) == len(idf)  # no collision among these
    assert idf[3] == pytest.approx(1.0)  # in every text: log(3 / 3) + 1
    assert idf[4] == pytest.approx(math.log(3 / 2) + 1)  # in one of two
    assert idf[5] == pytest.approx(math.log(3 / 2) + 1)  # twice in one text: df 1
    assert idf[0] == 0.0 and idf[7] == 0.0  # padding and unseen: ignored
    assert int((branch.idf > 0).sum()) == 3


@pytest.mark.parametrize("cls", [TextCNN, DPCNN])
def test_batch_independence_and_multitask_slices(cls):
    model = wide_model(cls)
    ids, lengths = random_batch(200, seed=3)
    with torch.inference_mode():
        batched = model(ids, lengths)
        for i in range(len(lengths)):
            alone = model(ids[i:i + 1, :max(int(lengths[i]), 1)], lengths[i:i + 1])
            for head in HEADS:
                torch.testing.assert_close(alone[head], batched[head][i:i + 1], atol=1e-6,
                                           rtol=0)
        topic = model.wide.head_columns("topic")
        model.wide.weight[:, topic] += 5.0  # another head's columns: sentiment unchanged
        again = model(ids, lengths)
    torch.testing.assert_close(again["sentiment"], batched["sentiment"], atol=0, rtol=0)
    assert (again["topic"] - batched["topic"]).abs().max() > 1.0


def test_conv_tokens_limits_the_convolutions_not_the_branch():
    model = wide_model(conv_tokens=6)
    ids, lengths = random_batch(200, seed=4)
    long = lengths > 8
    changed = ids.clone()
    changed[:, 7:] = torch.where(changed[:, 7:] > 0, 3, 0)  # tokens past conv_tokens
    with torch.inference_mode():
        torch.testing.assert_close(model.features(changed, lengths), model.features(ids, lengths))
        moved = (model(changed, lengths)["topic"] - model(ids, lengths)["topic"]).abs().amax(1)
    assert bool((moved[long] > 1e-3).all())  # the wide branch reads them


@pytest.mark.parametrize("punctuation", [True, False])
def test_torch_folded_and_onnx_agree_to_1e5(punctuation):
    pytest.importorskip("onnxruntime")
    from textcnn.backends.onnx import OnnxBackend, parity

    model = wide_model(ngram_punctuation=punctuation)
    heads = {"sentiment": ["a", "b"], "topic": list("vwxyz")}
    torch_backend = TorchBackend(model)
    folded, onnx = FoldedBackend(model), OnnxBackend(model, heads, threads=1)
    assert parity(torch_backend, folded, list(heads), 200) < 1e-5
    assert parity(torch_backend, onnx, list(heads), 200) < 1e-5
    ids, lengths = random_batch(200, seed=5)
    data = Encoded(ids.numpy().astype(np.int32), lengths.numpy())
    want = torch_backend.logits(data, 7)
    for other in (folded, onnx):
        got = other.logits(data, 5)
        for head in heads:
            np.testing.assert_allclose(got[head], want[head], atol=1e-5, rtol=0)
    with torch.inference_mode():  # the wide part is really in there
        fold = FoldedTextCNN(model)
        no_wide = fold.heads(fold.features(ids, lengths))["topic"]
    assert np.abs(want["topic"] - no_wide.numpy()).max() > 0.1


@pytest.mark.parametrize("key,value", [("ngram_buckets", -1), ("ngram_orders", [1, 5]),
                                       ("ngram_orders", []), ("ngram_scale", 0.0),
                                       ("conv_tokens", -2), ("ngram_l2", -1e-4)])
def test_config_errors_name_the_key(key, value):
    with pytest.raises(ConfigError, match=f"model.{key}"):
        from_dict({"tasks": {"s": {"dataset": "sst2"}}, "model": {key: value}})
    with pytest.raises(ConfigError, match=f"model.{key}"):
        from_dict({"tasks": {"s": {"dataset": "sst2"}}, "model": {"name": "dpcnn", key: value}})


@pytest.mark.parametrize("punctuation", [True, False])
def test_folder_round_trip_and_exact_explanations(sst2_slice, tmp_path, punctuation):
    from textcnn.runs import train

    config = tiny_config(sst2_slice, epochs=1)
    config["model"].update(ngram_buckets=65536, ngram_orders=[1, 2], ngram_scale=4.0,
                           conv_tokens=8, ngram_punctuation=punctuation)
    lines = []
    clf = train(from_dict(config), output=tmp_path / "m", log=lines.append)
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model"]["ngram_buckets"] == 65536 and saved["model"]["conv_tokens"] == 8
    # the key is written only where the branch skips punctuation
    assert saved["model"].get("ngram_punctuation", True) is punctuation
    if not punctuation:  # the tokenizer's punctuation ids: "," among them, "film" not
        skip, vocab = clf.model.wide.skip, clf.tokenizer.get_vocab()
        assert skip[vocab[","]] == 1 and skip[vocab["film"]] == 0
        assert any(f"{int(skip.sum())} punctuation ids skipped" in line for line in lines)
    idf = clf.model.wide.idf
    assert 0 < int((idf > 0).sum()) < 65536 and float(idf.max()) > 2.0  # fitted, not ones
    assert float(clf.model.wide.weight.detach().abs().max()) > 0  # trained
    texts = ["a gorgeous , witty film", "", "dull " * 30, "the plot is thin but the acting"]
    want = clf.predict_proba(texts)["sentiment"]
    for backend in ("torch", "folded", "onnx"):
        again = load(tmp_path / "m", backend=backend, threads=1)
        assert again.backend == backend
        np.testing.assert_allclose(again.predict_proba(texts)["sentiment"], want, atol=1e-5)
        for row in again.explain(texts, top_k=None):
            a = row["heads"]["sentiment"]
            if len(row["tokens"]) >= 5:  # the wide n-grams are windows too: terms sum to the logit
                assert abs(a["bias"] + sum(a["token_attributions"]) - a["logit"]) < 1e-4
                assert min(w["end"] - w["start"] for w in a["windows"]) <= 2  # an n-gram's
    torch.testing.assert_close(again.model.wide.idf, idf)


def test_skipped_ids_are_passed_over_and_spans_name_the_texts_tokens():
    branch = NgramBranch(1009, {"t": 3}, (1, 2), vocab=50)
    assert branch.skip_ids([7, 8, 8, 99]) == 2  # an id past the vocabulary is ignored
    torch.manual_seed(0)
    with torch.no_grad():
        branch.weight.normal_()
    ids = torch.tensor([[5, 7, 6, 8, 5, 0], [5, 6, 5, 0, 0, 0], [7, 8, 0, 0, 0, 0]])
    lengths = torch.tensor([5, 3, 2])
    branch.fit_idf([(ids, lengths)])
    out = branch(ids, lengths)["t"].detach()
    # "5 , 6 . 5" reads as "5 6 5" (its bigrams join the words around a skipped id)
    torch.testing.assert_close(out[0], out[1], atol=0, rtol=0)
    np.testing.assert_allclose(out[1].numpy(), reference_logits(branch, [5, 6, 5]), atol=1e-5)
    assert float(out[2].abs().max()) == 0.0  # nothing but skipped ids
    wider = torch.cat([ids, torch.zeros(3, 4, dtype=torch.long)], 1)  # padding changes nothing
    torch.testing.assert_close(branch(wider, lengths)["t"].detach(), out, atol=0, rtol=0)
    h, share, start, end = branch.tfidf(ids[:1], lengths[:1])
    spans = sorted((int(a), int(b)) for a, b, w in zip(start[0], end[0], share[0]) if w > 0)
    assert spans == [(0, 1), (0, 3), (2, 3), (2, 5), (4, 5)]  # unigrams, then bigrams over 7, 8
    with pytest.raises(ValueError, match="vocab > 0"):
        NgramBranch(11, {"t": 2}).skip_ids([1])


def test_wide_only_is_the_branch_alone():
    model = wide_model(deep=False)
    ids, lengths = random_batch(200, seed=6)
    with torch.inference_mode():
        out = model(ids, lengths)
        wide = model.wide(ids, lengths)
        folded = FoldedTextCNN(model)(ids, lengths)
    for head in HEADS:
        torch.testing.assert_close(out[head], wide[head], atol=0, rtol=0)
        torch.testing.assert_close(folded[head], wide[head], atol=1e-6, rtol=0)
    with pytest.raises(ConfigError, match="model.deep"):
        from_dict({"tasks": {"s": {"dataset": "sst2"}}, "model": {"deep": False}})


def test_ngram_l2_adds_its_penalty_gradient_in_training_only():
    ids, lengths = random_batch(200, n=8, seed=7)
    grads, outputs = {}, {}
    for l2 in (0.0, 0.01):
        torch.manual_seed(0)
        branch = NgramBranch(512, {"topic": 3}, scale=4.0, l2=l2)
        torch.nn.init.normal_(branch.weight)
        branch.fit_idf([(ids, lengths)])
        loss = branch(ids, lengths)["topic"].logsumexp(1).mean()
        loss.backward()
        grads[l2], outputs[l2] = branch.weight.grad.clone(), loss.item()
        with torch.no_grad():
            assert torch.equal(branch.eval()(ids, lengths)["topic"],
                               branch.train()(ids, lengths)["topic"])
    assert outputs[0.0] == outputs[0.01]  # the forward pass is unchanged
    # the gradient of 0.01 / 2 * ||4 * weight||^2 joins the loss's
    torch.testing.assert_close(grads[0.01] - grads[0.0], 0.01 * 16 * branch.weight.detach())
    model = wide_model(ngram_l2=0.5)
    assert model.wide.l2 == 0.5
    config = from_dict({"tasks": {"s": {"dataset": "sst2"}},
                        "model": {"ngram_buckets": 64, "ngram_l2": 1e-4}})
    assert config.model.ngram_l2 == 1e-4
