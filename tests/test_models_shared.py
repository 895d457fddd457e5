"""One test of every registered model (``textcnn.models.REGISTRY``), with tiny shapes: forward,
backward, the model folder round trip, ONNX and folded-backend parity where they apply, and
padding invariance for text models. A new architecture registers tiny settings in ``TINY``."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from textcnn.backends import TorchBackend
from textcnn.backends.folded import FoldedBackend, why_not_foldable
from textcnn.classifier import ImageClassifier, TextClassifier, load
from textcnn.config import from_dict
from textcnn.models import REGISTRY, build_model
from textcnn.tokenizer import encode as encode_ids
from textcnn.tokenizer import train_tokenizer
from textcnn.training import Encoded

# per model.name: settings small enough to run in milliseconds, the wide branch on where a text
# model takes it (so the network's one place where it adds its logits is exercised)
TINY = {
    "textcnn": {"embedding_dim": 8, "kernel_sizes": [2, 3], "channels": 4,
                "private_channels": 2, "ngram_buckets": 64},
    "dpcnn": {"embedding_dim": 8, "channels": 6, "depth": 2, "ngram_buckets": 64},
    "imagecnn": {"blocks": [4, 6]},
    "charcnn": {"embedding_dim": 6, "length": 130, "features": 8, "hidden": 16,
                "ngram_buckets": 64},
}
HEADS = {"sentiment": ["negative", "positive"], "topic": ["a", "b", "c"]}
TEXTS = ["a gorgeous, witty film", "dull and far too long", "the cast is superb", "meh",
         "an utterly forgettable sequel", "one of the year's best"] * 3
NAMES = list(REGISTRY)
TEXT_NAMES = [n for n in NAMES if REGISTRY[n].config.input_kind == "text"]


def config_of(name):
    text = REGISTRY[name].config.input_kind == "text"
    data = {"tasks": {h: {"dataset": "digits" if not text else "sst2"} for h in HEADS},
            "model": {"name": name, **TINY[name]}}
    if text:
        data["tokenizer"] = {"kind": "char" if name == "charcnn" else "word", "max_length": 64}
    return from_dict(data)


def classifier(name):
    """A freshly initialised classifier of model ``name`` (torch backend)."""
    assert name in TINY, f"register tiny settings for the new model {name!r} in TINY"
    torch.manual_seed(0)
    config = config_of(name)
    sizes = {h: len(labels) for h, labels in HEADS.items()}
    if config.model.input_kind == "image":
        model = build_model(config.model, 1, sizes).eval()
        return ImageClassifier(model, config, HEADS, (1, 8, 8), 16.0)
    tokenizer = train_tokenizer(TEXTS, config.tokenizer)
    model = build_model(config.model, tokenizer.get_vocab_size(), sizes)
    if model.wide is not None:  # idf fitted, so the branch's logits are not all zero
        ids, lengths = encode(tokenizer, TEXTS)
        model.wide.fit_idf([(ids, lengths)])
        with torch.no_grad():
            model.wide.weight.normal_()
    return TextClassifier(model.eval(), tokenizer, config, HEADS)


def encode(tokenizer, texts):
    ids, lengths = encode_ids(tokenizer, texts)
    return torch.as_tensor(ids).long(), torch.as_tensor(lengths)


def inputs(clf):
    """A batch the model takes: token ids and lengths, or images and no lengths."""
    if isinstance(clf, ImageClassifier):
        return torch.rand(5, 1, 8, 8), None
    return encode(clf.tokenizer, TEXTS[:5])


@pytest.mark.parametrize("name", NAMES)
def test_forward_gives_each_head_its_logits(name):
    clf = classifier(name)
    with torch.no_grad():
        out = clf.model(*inputs(clf))
    assert {h: tuple(v.shape) for h, v in out.items()} == {"sentiment": (5, 2), "topic": (5, 3)}
    assert all(torch.isfinite(v).all() for v in out.values())
    assert not torch.allclose(out["topic"][0], out["topic"][1])  # the inputs matter


@pytest.mark.parametrize("name", NAMES)
def test_backward_reaches_every_trained_weight(name):
    clf = classifier(name)
    model = clf.model.train()
    out = model(*inputs(clf))
    sum(v.logsumexp(dim=1).sum() for v in out.values()).backward()
    trained = {k: p for k, p in model.named_parameters() if p.requires_grad}
    missing = [k for k, p in trained.items() if p.grad is None or not p.grad.abs().sum() > 0]
    assert trained and not missing, f"no gradient reaches {missing}"


@pytest.mark.parametrize("name", NAMES)
def test_model_folder_round_trip(name, tmp_path):
    clf = classifier(name)
    folder = clf.save(tmp_path / name)
    saved = load_file(str(folder / "model.safetensors"))
    assert saved.keys() == clf.model.state_dict().keys()  # the flat names: no "encoder."
    assert not any(k.startswith("encoder.") for k in saved)
    back = load(folder, backend="torch")
    probes = (np.random.default_rng(0).uniform(0, 16, (4, 8, 8)) if name == "imagecnn"
              else TEXTS[:4] + ["", "unseen words entirely"])
    want, got = clf.predict_proba(probes), back.predict_proba(probes)
    for head in HEADS:
        np.testing.assert_allclose(got[head], want[head], atol=1e-6, rtol=0)


def random_encoded(vocab: int, n: int = 24) -> Encoded:
    rng = np.random.default_rng(0)
    lengths = np.concatenate([[0, 1, 2], rng.integers(0, 41, n - 3)]).astype(np.int64)
    ids = np.zeros((n, int(lengths.max())), dtype=np.int32)
    for row, length in zip(ids, lengths):
        row[:length] = rng.integers(2, vocab, length)
    return Encoded(ids, lengths)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_onnx_export_matches_torch(name):
    pytest.importorskip("onnxruntime")
    from textcnn.backends.onnx import OnnxBackend

    clf = classifier(name)
    data = random_encoded(clf.model.embedding.num_embeddings)
    want = TorchBackend(clf.model).logits(data, 8)
    got = OnnxBackend(clf.model, HEADS, threads=1).logits(data, 8)
    for head in HEADS:
        np.testing.assert_allclose(got[head], want[head], atol=1e-4, rtol=0)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_folded_backend_matches_torch_where_the_model_folds(name):
    clf = classifier(name)
    reason = why_not_foldable(clf.model)
    if name in ("textcnn", "dpcnn"):
        assert reason is None
    else:  # the others run on the torch backend; auto says why
        assert reason and type(clf.model).__name__ in reason
        assert clf.set_backend("auto") == "torch"
        return
    data = random_encoded(clf.model.embedding.num_embeddings)
    want = TorchBackend(clf.model).logits(data, 8)
    got = FoldedBackend(clf.model).logits(data, 8)
    for head in HEADS:
        np.testing.assert_allclose(got[head], want[head], atol=1e-5, rtol=0)


@pytest.mark.parametrize("name", TEXT_NAMES)
def test_extra_padding_does_not_change_the_prediction(name):
    clf = classifier(name)
    ids, lengths = encode(clf.tokenizer, TEXTS[:5])
    padded = torch.nn.functional.pad(ids, (0, 37))  # 37 more padding positions per row
    with torch.no_grad():
        want, wider = clf.model(ids, lengths), clf.model(padded, lengths)
        alone = clf.model(ids[3:4, :int(lengths[3])], lengths[3:4])  # the shortest, unpadded
    for head in HEADS:
        torch.testing.assert_close(wider[head], want[head], atol=1e-5, rtol=0)
        torch.testing.assert_close(alone[head], want[head][3:4], atol=1e-5, rtol=0)


def test_the_wide_branch_adds_its_logits_once_for_every_text_model():
    for name in TEXT_NAMES:
        clf = classifier(name)
        model = clf.model
        ids, lengths = encode(clf.tokenizer, TEXTS[:3])
        with torch.no_grad():
            deep = model.heads(model.features(ids, lengths))
            total = model(ids, lengths)
            wide = model.wide(ids, lengths)
        for head in HEADS:
            torch.testing.assert_close(total[head], deep[head] + wide[head], atol=1e-5, rtol=0)


def test_the_encoders_layers_read_as_the_networks_own_and_a_missing_one_names_the_network():
    model = classifier("textcnn").model
    assert model.core is model.encoder.core and model.embedding is model.encoder.embedding
    with pytest.raises(AttributeError, match="'TextCNN' object has no attribute 'nothing'"):
        model.nothing  # noqa: B018
