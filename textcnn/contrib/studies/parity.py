"""Parity checks: where text and image convolution are the same operation.

Each check builds both sides from the shared core (``textcnn.core``) with random weights and
inputs and returns the max absolute difference (float32); they pass below ``TOLERANCE``. The
test suite (``tests/test_parity.py``) and ``textcnn compare``'s report run the same functions.

1. a 1D conv of width k over an embedded sentence (batch, E, T) equals a 2D conv with a (k, E)
   kernel over the sentence as a one-channel image (batch, 1, T, E), weights shared;
2. Kim's max-over-time pooling (``ConvCore``, padded batch with lengths) equals a 2D max-pool
   over the full remaining height of each unpadded sentence;
3. TextCNN's logits with its 1D core equal those with a 2D-equivalent core
   (``ConvCore(dim=2, in_channels=1, kernel_width=E)``, weights copied), on the padded batch
   and on each sentence alone, unpadded, so the 1D core's length masking is exercised;
4. an image read row by row as a sequence (H steps of W*C features) through the 1D core equals
   the 2D core with a full-width kernel.

Example
-------
>>> all(diff < TOLERANCE for diff in parity_checks().values())
True
"""

from __future__ import annotations

import functools

import torch
from torch import nn

from ...core import ConvBlock, ConvCore
from ...models import TextCNN

TOLERANCE = 1e-5


# -- parity checks --------------------------------------------------------------------------------
def _check(fn):
    """A parity check runs under its own seed and leaves the global RNG as it was."""

    @functools.wraps(fn)
    def run(*args, seed: int = 0, **kwargs) -> float:
        with torch.random.fork_rng(), torch.no_grad():
            torch.manual_seed(seed)
            return fn(*args, **kwargs)

    return run


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).abs().max())


def _sentences(batch: int, emb: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch (batch, E, T) of random embedded sentences and their lengths."""
    x = torch.randn(batch, emb, max(lengths))
    for i, n in enumerate(lengths):
        x[i, :, n:] = 0.0
    return x, torch.tensor(lengths)


@_check
def parity_conv(emb: int = 16, k: int = 3, channels: int = 8) -> float:
    """Check 1: ConvBlock 1D width k over (B, E, T) vs ConvBlock 2D (k, E) over (B, 1, T, E)."""
    x = torch.randn(4, emb, 11)
    one = ConvBlock(1, emb, channels, k)
    two = ConvBlock(2, 1, channels, (k, emb))
    two.conv.weight.copy_(one.conv.weight.transpose(1, 2).unsqueeze(1))  # (C, 1, k, E)
    two.conv.bias.copy_(one.conv.bias)
    y1 = one(x)  # (B, C, T - k + 1)
    y2 = two(x.transpose(1, 2).unsqueeze(1))  # (B, C, T - k + 1, 1)
    return _max_diff(y1, y2.squeeze(3))


@_check
def parity_pool(emb: int = 16, k: int = 3, channels: int = 8) -> float:
    """Check 2: Kim's masked max-over-time vs a 2D max-pool over the full remaining height."""
    lengths = [12, 7, 3, 9]
    x, lens = _sentences(len(lengths), emb, lengths)
    core = ConvCore(1, emb, channels, (k,))
    pooled = core(x, lens)  # (B, C): max over each sentence's valid windows
    diffs = []
    for i, n in enumerate(lengths):
        two = ConvBlock(2, 1, channels, (k, emb), pool=(n - k + 1, 1))  # the whole height
        two.conv.weight.copy_(core.blocks[0].conv.weight.transpose(1, 2).unsqueeze(1))
        two.conv.bias.copy_(core.blocks[0].conv.bias)
        image = x[i:i + 1, :, :n].transpose(1, 2).unsqueeze(1)  # (1, 1, n, E), unpadded
        diffs.append(_max_diff(pooled[i], two(image).flatten()))
    return max(diffs)


def core_2d_like(core: ConvCore) -> ConvCore:
    """The 2D twin of a 1D ``ConvCore``: (k, E) kernels over (B, 1, T, E), weights copied."""
    emb = core.blocks[0].conv.in_channels
    channels = core.blocks[0].conv.out_channels
    norm = "batch" if isinstance(core.blocks[0].norm, nn.BatchNorm1d) else "none"
    twin = ConvCore(2, 1, channels, core.kernel_sizes, kernel_width=emb, norm=norm)
    state = {}
    for key, value in core.state_dict().items():
        if key.endswith("conv.weight"):  # (C, E, k) -> (C, 1, k, E)
            value = value.transpose(1, 2).unsqueeze(1)
        state[key] = value
    twin.load_state_dict(state)
    return twin.eval()


@_check
def parity_text_model(norm: str = "none") -> float:
    """Check 3: TextCNN logits, 1D core (padded batch, lengths) vs 2D core (each text alone)."""
    model = TextCNN(60, {"sentiment": 2, "topic": 3}, embedding_dim=12,
                    kernel_sizes=(3, 4, 5), channels=6, norm=norm).eval()
    if norm == "batch":  # non-trivial running statistics
        for module in model.modules():
            if isinstance(module, nn.BatchNorm1d):
                module.running_mean.normal_()
                module.running_var.uniform_(0.5, 2.0)
    lengths = [20, 6, 9, 2, 14]  # padded to 20: masking matters; 2 < the widest kernel
    ids = torch.randint(2, 60, (len(lengths), max(lengths)))
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    logits_1d = model(ids, torch.tensor(lengths))
    twin = core_2d_like(model.core)
    batch_2d = model.heads(twin(model.embedding(ids).unsqueeze(1), torch.tensor(lengths)))
    diffs = [_max_diff(logits_1d[h], batch_2d[h]) for h in batch_2d]
    for i, n in enumerate(lengths):
        image = model.embedding(ids[i:i + 1, :n]).unsqueeze(1)  # (1, 1, n, E)
        logits_2d = model.heads(model.dropout(twin(image, torch.tensor([n]))))
        diffs += [_max_diff(logits_1d[h][i:i + 1], logits_2d[h]) for h in logits_2d]
    return max(diffs)


@_check
def parity_image_rows(shape: tuple[int, int, int] = (3, 10, 7)) -> float:
    """Check 4: an image as H steps of W*C features through the 1D core vs the 2D core."""
    c, h, w = shape
    images = torch.randn(4, c, h, w)
    two = ConvCore(2, c, 8, (2, 3, 4), kernel_width=w)
    one = ConvCore(1, w * c, 8, (2, 3, 4))
    state = {}
    for key, value in two.state_dict().items():
        if key.endswith("conv.weight"):  # (O, C, k, W) -> (O, W*C, k), pixel-major
            value = value.permute(0, 3, 1, 2).reshape(value.shape[0], w * c, value.shape[2])
        state[key] = value
    one.load_state_dict(state)
    rows = images.permute(0, 3, 1, 2).reshape(4, w * c, h)  # (B, W*C, H): row r = step r
    return _max_diff(one(rows, torch.full((4,), h)), two(images))


PARITY = {
    "1D conv (k, over E channels) == 2D conv (k x E kernel)": parity_conv,
    "Kim max-over-time == 2D max-pool over the full height": parity_pool,
    "TextCNN logits: 1D core == 2D-equivalent core": parity_text_model,
    "TextCNN logits with batch norm: 1D core == 2D core":
        lambda: parity_text_model(norm="batch"),
    "image rows as a sequence (1D) == full-width 2D core": parity_image_rows,
}


def parity_checks() -> dict[str, float]:
    """Every parity check's measured max absolute difference (float32)."""
    return {name: check() for name, check in PARITY.items()}
