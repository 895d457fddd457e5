"""DPCNN: the pyramid halves the length, padding never leaks, and it plugs into the registry."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from textcnn.backends.folded import why_not_foldable
from textcnn.config import from_dict, load_config
from textcnn.core import ConvBlock
from textcnn.errors import ConfigError
from textcnn.models import DPCNN, REGISTRY, build_model, min_input_length

HEADS = {"sentiment": 2, "topic": 5, "question": 3}


def model(depth: int = 8, **kw) -> DPCNN:
    torch.manual_seed(0)
    return DPCNN(vocab_size=50, heads=HEADS, embedding_dim=8, channels=6, depth=depth, **kw).eval()


def pool_lengths(m: DPCNN, ids: torch.Tensor, lengths: torch.Tensor) -> list[tuple[int, int]]:
    """(length in, length out) of every downsampling block's pool, in order."""
    seen = []
    hook = m.pool.register_forward_hook(lambda mod, args, out: seen.append(
        (args[0].shape[2], out.shape[2])))
    try:
        m(ids, lengths)
    finally:
        hook.remove()
    return seen


@pytest.mark.parametrize("length, chain", [
    (1, []),
    (2, [(2, 1)]),
    (5, [(5, 3), (3, 2), (2, 1)]),
    (16, [(16, 8), (8, 4), (4, 2), (2, 1)]),
    (33, [(33, 17), (17, 9), (9, 5), (5, 3), (3, 2), (2, 1)]),
])
def test_each_block_halves_the_length_until_one_position(length, chain):
    m = model(depth=8)
    seen = pool_lengths(m, torch.randint(2, 50, (2, length)), torch.full((2,), length))
    assert seen == chain
    assert all(out == math.ceil(n / 2) for n, out in seen)
    assert len(seen) == math.ceil(math.log2(length))  # 2 ** blocks >= length
    # depth caps the number of blocks (33 tokens stop at 9 positions after two)
    capped = pool_lengths(model(depth=2), torch.randint(2, 50, (1, length)), torch.tensor([length]))
    assert capped == chain[:2]


def test_layout_is_the_shared_block():
    m = model(depth=3)
    blocks = [m.region, *m.stage, *(b for pair in m.pyramid for b in pair)]
    assert all(isinstance(b, ConvBlock) for b in blocks) and len(blocks) == 1 + 2 + 3 * 2
    assert not m.region.preact and isinstance(m.region.act, torch.nn.Identity)
    assert all(b.preact and not b.residual for b in blocks[1:])  # the shortcut spans a pair
    assert all(b.conv.kernel_size == (3,) and b.conv.padding == "same" for b in blocks)
    assert (m.pool.kernel_size, m.pool.stride, m.pool.padding) == (3, 2, 1)
    assert m.embedding.padding_idx == 0 and m.embedding.weight[0].abs().sum() == 0
    assert m.embedding.weight.abs().max() <= 0.25  # Kim's U[-0.25, 0.25]


def test_logits_do_not_depend_on_batch_padding():
    m = model(depth=8)
    lengths = [0, 1, 2, 3, 6, 17, 40]
    width = 48  # wider than every text, as a padded batch is
    gen = torch.Generator().manual_seed(1)
    texts = [torch.randint(2, 50, (n,), generator=gen) for n in lengths]
    batch = torch.zeros(len(texts), width, dtype=torch.long)
    for row, text in zip(batch, texts):
        row[:len(text)] = text
    together = m(batch, torch.tensor(lengths))
    for i, text in enumerate(texts):
        alone = m(text[None], torch.tensor([len(text)]))
        for head in HEADS:
            torch.testing.assert_close(together[head][i:i + 1], alone[head], atol=1e-5, rtol=0)
    # ids past a text's length are never read (here junk instead of the padding id 0)
    junk = batch.clone()
    for row, n in zip(junk, lengths):
        row[max(n, 1):] = torch.randint(2, 50, (width - max(n, 1),), generator=gen)
    torch.testing.assert_close(m(junk, torch.tensor(lengths))["topic"], together["topic"],
                               atol=1e-5, rtol=0)
    # and the masking is what makes it so: every text scored at the batch width differs
    unmasked = m(batch, torch.full((len(texts),), width))
    assert not torch.allclose(unmasked["topic"][:1], together["topic"][:1], atol=1e-3)


def test_heads_shapes_and_empty_inputs():
    m = model(depth=4)
    out = m(torch.randint(2, 50, (4, 11)), torch.tensor([11, 5, 1, 0]))
    assert {h: tuple(o.shape) for h, o in out.items()} == {h: (4, n) for h, n in HEADS.items()}
    assert all(torch.isfinite(o).all() for o in out.values())
    # a batch of empty texts may arrive with no positions at all (width 0)
    empty = m(torch.zeros(2, 0, dtype=torch.long), torch.tensor([0, 0]))
    one_pad = m(torch.zeros(2, 1, dtype=torch.long), torch.tensor([0, 0]))
    torch.testing.assert_close(empty["topic"], one_pad["topic"])
    # the trainer pads batches to the widest Kim kernel: 1 for a model without a Kim core
    assert min_input_length(m) == 1


def test_gradient_reaches_the_embedding_and_word_dropout_only_in_training():
    m = model(depth=3, word_dropout=0.3).train()
    ids = torch.tensor([[3, 4, 5, 6, 7, 0, 0], [8, 9, 10, 11, 12, 13, 14]])
    out = m(ids, torch.tensor([5, 7]))
    (out["sentiment"].sum() + out["topic"].sum()).backward()
    grad = m.embedding.weight.grad
    assert grad[3:15].abs().sum(dim=1).gt(0).sum() >= 8  # most tokens survive word dropout
    assert grad[0].abs().sum() == 0 and grad[15:].abs().sum() == 0  # padding, unused ids
    assert all(p.grad is not None and p.grad.abs().sum() > 0
               for p in (m.region.conv.weight, m.pyramid[-1][1].conv.weight))
    m.eval()
    torch.testing.assert_close(m.features(ids, torch.tensor([5, 7])),
                               m.features(ids, torch.tensor([5, 7])))
    m.train()
    torch.manual_seed(1)
    a = m.features(ids, torch.tensor([5, 7]))
    torch.manual_seed(2)
    assert not torch.allclose(a, m.features(ids, torch.tensor([5, 7])))


@pytest.mark.parametrize("name", [n for n, e in REGISTRY.items() if e.config.input_kind == "text"])
def test_every_text_model_in_the_registry_runs(name):
    settings = {"embedding_dim": 8, "channels": 4, "depth": 3, "dropout": 0.0}
    config_class = REGISTRY[name].config
    own = {f.name for f in dataclasses.fields(config_class)}
    cfg = config_class(**{k: v for k, v in settings.items() if k in own})
    torch.manual_seed(0)
    m = build_model(cfg, 50, {"a": 2, "b": 3}).eval()
    ids = torch.randint(2, 50, (3, 9))
    ids[1, 2:], ids[2, :] = 0, 0
    out = m(ids, torch.tensor([9, 2, 0]))
    assert out["a"].shape == (3, 2) and out["b"].shape == (3, 3)
    alone = m(ids[1:2, :2], torch.tensor([2]))
    torch.testing.assert_close(out["b"][1:2], alone["b"], atol=1e-5, rtol=0)


def test_registry_builds_dpcnn_from_the_config():
    cfg = from_dict({"tasks": {"t": {"dataset": "sst2"}},
                     "model": {"name": "dpcnn", "embedding_dim": 8, "channels": 6, "depth": 3,
                               "word_dropout": 0.1}}).model
    m = build_model(cfg, 40, {"t": 4})
    assert isinstance(m, DPCNN) and len(m.pyramid) == 3 and m.word_dropout == 0.1
    assert m.embedding.weight.shape == (40, 8) and m.heads.layers["t"].in_features == 6
    shipped = load_config("configs/studies/20newsgroups-dpcnn.yaml")
    assert shipped.model.name == "dpcnn" and shipped.model.depth == 8
    assert shipped.tokenizer.max_length <= 2 ** shipped.model.depth  # reaches one position
    assert shipped.to_dict()["model"]["depth"] == 8


@pytest.mark.parametrize("data, key", [
    ({"model": {"name": "dpcnn", "blocks": [8]}}, "model.blocks"),
    ({"model": {"name": "dpcnn", "pool": 2}}, "model.pool"),
    ({"model": {"name": "dpcnn", "depth": -1}}, "model.depth"),
    ({"model": {"name": "dpcnn", "depth": 2.5}}, "model.depth"),
    ({"model": {"name": "imagecnn", "depth": 3}}, "model.depth"),
])
def test_config_rejects_keys_of_the_other_kind(data, key):
    task = "digits" if data["model"]["name"] == "imagecnn" else "sst2"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as err:
        from_dict({"tasks": {"t": {"dataset": task}}, **data})
    assert len(str(err.value).splitlines()) == 1


def test_image_config_json_has_no_depth():
    image = from_dict({"tasks": {"d": {"dataset": "digits"}}, "model": {"name": "imagecnn"}})
    assert "depth" not in image.to_dict()["model"]


def test_dpcnn_folds_unless_its_region_is_not_a_plain_conv():
    m = model(depth=2)
    assert why_not_foldable(m, max_bytes=None) is None
    m.region.conv.padding = (2,)
    assert "region embedding" in why_not_foldable(m, max_bytes=None)


def test_onnx_export_keeps_every_block():
    """The traced graph cannot stop early, so it runs every block; texts already at one position
    pass through unchanged, and the graph matches torch at widths other than the traced one."""
    pytest.importorskip("onnxruntime")
    from textcnn.backends.onnx import session, to_onnx

    m = model(depth=4)
    sess = session(to_onnx(m, list(HEADS)), threads=1)
    m.eval()  # torch.onnx.export restores its (training) wrapper's mode onto the model
    names = [o.name for o in sess.get_outputs()]
    gen = torch.Generator().manual_seed(3)
    for width in (1, 3, 20):
        ids = torch.randint(2, 50, (3, width), generator=gen)
        lengths = torch.tensor([width, max(width // 2, 1), 0])
        for row, n in zip(ids, lengths):
            row[n:] = 0
        got = dict(zip(names, sess.run(None, {"ids": ids.numpy(), "lengths": lengths.numpy()})))
        want = m(ids, lengths)
        for head in HEADS:
            torch.testing.assert_close(torch.from_numpy(got[head]), want[head].detach(),
                                       atol=1e-5, rtol=0)
