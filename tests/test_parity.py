"""Text and image convolution are the same operation where they should be (to 1e-5, float32).

The checks live in ``textcnn.contrib.studies.parity`` (``textcnn compare`` reports the same
numbers). The last two tests make sure the checks can fail: a core perturbed on purpose must
break them.
"""

import pytest
import torch
from torch import nn

from textcnn.contrib.studies import parity
from textcnn.contrib.studies.parity import TOLERANCE
from textcnn.core import ConvBlock, ConvCore

SEEDS = [0, 1, 2]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 5])
def test_1d_conv_equals_2d_conv_with_a_full_width_kernel(seed, k):
    diff = parity.parity_conv(k=k, seed=seed)
    assert diff < TOLERANCE


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [2, 3])
def test_max_over_time_equals_2d_max_pool_over_the_full_height(seed, k):
    assert parity.parity_pool(k=k, seed=seed) < TOLERANCE


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("norm", ["none", "batch"])
def test_text_model_with_its_2d_equivalent_core_gives_the_same_logits(seed, norm):
    assert parity.parity_text_model(norm=norm, seed=seed) < TOLERANCE


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 10, 7)])
def test_image_rows_as_a_sequence_through_the_1d_core_equal_the_2d_core(seed, shape):
    assert parity.parity_image_rows(shape=shape, seed=seed) < TOLERANCE


def test_the_checks_compare_nonzero_outputs_and_leave_the_rng_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    results = parity.parity_checks()
    assert torch.equal(before, torch.get_rng_state())
    assert len(results) == 5 and all(0 <= d < TOLERANCE for d in results.values())
    # the twin of a trained-looking core really is 2D and gives non-trivial features
    core = ConvCore(1, 6, 4, (2, 3))
    twin = parity.core_2d_like(core)
    assert twin.dim == 2 and twin.blocks[0].conv.weight.shape == (4, 1, 2, 6)
    assert twin(torch.randn(2, 1, 9, 6)).abs().sum() > 0


def test_a_masking_bug_in_the_core_breaks_the_checks(monkeypatch):
    forward = ConvCore.forward

    def off_by_one(self, x, lengths=None):  # pools one padded window too many
        return forward(self, x, None if lengths is None else lengths + 1)

    monkeypatch.setattr(ConvCore, "forward", off_by_one)
    assert parity.parity_pool() > 1e-3
    assert parity.parity_text_model() > 1e-3


def test_a_2d_only_change_in_the_block_breaks_the_checks(monkeypatch):
    forward = ConvBlock.forward

    def nudged(self, x):
        y = forward(self, x)
        conv = self.conv[0] if isinstance(self.conv, nn.Sequential) else self.conv
        return y + 1e-4 if isinstance(conv, nn.Conv2d) else y

    monkeypatch.setattr(ConvBlock, "forward", nudged)
    for check in (parity.parity_conv, parity.parity_pool, parity.parity_text_model,
                  parity.parity_image_rows):
        assert check() > TOLERANCE, check.__name__
