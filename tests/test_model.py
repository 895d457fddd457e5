import pytest
import torch

from textcnn.core import ConvBlock, ConvCore
from textcnn.models import TextCNN


def model(**kw):
    torch.manual_seed(0)
    m = TextCNN(vocab_size=50, heads={"sentiment": 2, "topic": 3}, embedding_dim=12,
                kernel_sizes=(3, 4, 5), channels=6, **kw)
    return m.eval()


@pytest.mark.parametrize("length", [0, 1, 2, 4])
def test_inputs_shorter_than_the_widest_kernel(length):
    ids = torch.randint(2, 50, (1, length))
    out = model()(ids, torch.tensor([length]))
    assert out["sentiment"].shape == (1, 2) and torch.isfinite(out["sentiment"]).all()


def test_logits_do_not_depend_on_batch_padding():
    m = model()
    short = torch.tensor([[5, 9]])
    long = torch.randint(2, 50, (3, 40))
    alone = m(short, torch.tensor([2]))
    batch = torch.zeros(4, 40, dtype=torch.long)
    batch[0, :2] = short[0]
    batch[1:] = long
    together = m(batch, torch.tensor([2, 40, 40, 40]))
    for head in alone:
        torch.testing.assert_close(together[head][:1], alone[head], atol=1e-5, rtol=0)
    # and the padding really is masked: unmasked pooling would differ
    unmasked = m.heads(m.core(m.embedding(batch).transpose(1, 2)))
    assert not torch.allclose(unmasked["sentiment"][:1], alone["sentiment"], atol=1e-5)


def test_padding_row_stays_zero_and_max_norm():
    m = model()
    assert m.embedding.weight[0].abs().sum() == 0
    with torch.no_grad():
        m.heads.layers["sentiment"].weight.mul_(100)
    m.heads.apply_max_norm(3.0)
    norms = m.heads.layers["sentiment"].weight.norm(dim=1)
    assert torch.all(norms <= 3.0 + 1e-5) and torch.allclose(norms, torch.full_like(norms, 3.0))


def test_conv_block_options_1d_and_2d():
    x1, x2 = torch.randn(2, 4, 9), torch.randn(2, 4, 9, 9)
    for dim, x in ((1, x1), (2, x2)):
        block = ConvBlock(dim, 4, 4, 3, padding="same", norm="batch", residual=True,
                          separable=True, pool=3)
        assert block(x).shape == x.shape[:2] + (3,) * dim
    with pytest.raises(ValueError, match="in_channels == out_channels"):
        ConvBlock(1, 4, 8, 3, residual=True)
    with pytest.raises(ValueError, match="kernel_width"):
        ConvCore(2, 1, 4, (3,))


def test_word_dropout_only_in_training():
    m = model(word_dropout=0.5)
    ids, lens = torch.randint(2, 50, (4, 12)), torch.full((4,), 12)
    m.eval()
    torch.testing.assert_close(m(ids, lens)["sentiment"], m(ids, lens)["sentiment"])
    m.train()
    m.dropout.p = 0.0  # isolate word dropout
    torch.manual_seed(1)
    a = m.features(ids, lens)
    torch.manual_seed(2)
    b = m.features(ids, lens)
    assert not torch.allclose(a, b)
