"""THE shared conv core: one block and one Kim-style pooled core, generic over 1D and 2D.

Text and images differ only in ``dim``: ``dim=1`` convolves over time (batch, channels, time),
``dim=2`` over height and width (batch, channels, height, width). Layer types are looked up by
``dim`` in one table, so no block exists twice.

Example
-------
>>> import torch
>>> core = ConvCore(dim=1, in_channels=8, channels=4, kernel_sizes=(3, 5))
>>> core(torch.randn(2, 8, 7), lengths=torch.tensor([7, 2])).shape
torch.Size([2, 8])
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

_LAYERS = {
    1: {"conv": nn.Conv1d, "batch": nn.BatchNorm1d, "max": nn.MaxPool1d},
    2: {"conv": nn.Conv2d, "batch": nn.BatchNorm2d, "max": nn.MaxPool2d},
}


def mask_positions(x: torch.Tensor, n_valid: torch.Tensor, value: float, dim: int = 2
                   ) -> torch.Tensor:
    """``x`` with every position at or past ``n_valid`` (one count per row) along ``dim`` set to
    ``value``: how padding is kept out of a max-pool (``-inf``) or a convolution (``0``).

    Examples
    --------
    >>> mask_positions(torch.ones(2, 1, 3), torch.tensor([1, 3]), 0.0).tolist()
    [[[1.0, 0.0, 0.0]], [[1.0, 1.0, 1.0]]]
    """
    shape = [1] * x.dim()
    shape[dim] = -1
    positions = torch.arange(x.shape[dim], device=x.device).view(shape)
    past = positions >= n_valid.view(-1, *[1] * (x.dim() - 1))
    return x.masked_fill(past, value)


def layers(dim: int) -> dict[str, type[nn.Module]]:
    if dim not in _LAYERS:
        raise ValueError(f"dim must be 1 (text) or 2 (images), got {dim}")
    return _LAYERS[dim]


class ConvBlock(nn.Module):
    """conv -> optional norm -> activation -> optional pool, optionally residual.

    Parameters
    ----------
    dim : 1 or 2
        Spatial dimensions (1 = text over time, 2 = images).
    in_channels, out_channels : int
    kernel_size : int or tuple
        An int is used on every spatial axis; a tuple gives one size per axis.
    norm : "none" or "batch"
    activation : callable returning a module (default ``nn.ReLU``)
    pool : int or None
        Max-pool window (and stride) applied after the activation.
    residual : bool
        Add the input to the output (needs equal channels; ``padding="same"`` keeps the size).
    separable : bool
        Depthwise conv (one filter per input channel) followed by a 1x1 pointwise conv.
    preact : bool
        Pre-activation order (norm -> activation -> conv), as in ResNet v2 and DPCNN.
    padding : int, tuple or "same"

    Examples
    --------
    >>> import torch
    >>> block = ConvBlock(2, 1, 4, 3, padding="same", pool=2)
    >>> block(torch.randn(1, 1, 8, 8)).shape
    torch.Size([1, 4, 4, 4])
    """

    def __init__(
        self,
        dim: int,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Sequence[int],
        *,
        stride: int = 1,
        padding: int | Sequence[int] | str = 0,
        norm: str = "none",
        activation: type[nn.Module] = nn.ReLU,
        pool: int | None = None,
        residual: bool = False,
        separable: bool = False,
        preact: bool = False,
    ):
        super().__init__()
        kinds = layers(dim)
        conv = kinds["conv"]
        if residual and in_channels != out_channels:
            raise ValueError(
                f"a residual block needs in_channels == out_channels, got {in_channels} and "
                f"{out_channels}; drop residual=True or match the channels"
            )
        if separable:
            self.conv = nn.Sequential(
                conv(in_channels, in_channels, kernel_size, stride=stride, padding=padding,
                     groups=in_channels),
                conv(in_channels, out_channels, 1),
            )
        else:
            self.conv = conv(in_channels, out_channels, kernel_size, stride=stride, padding=padding)
        norm_channels = in_channels if preact else out_channels
        self.norm = kinds["batch"](norm_channels) if norm == "batch" else nn.Identity()
        self.act = activation()
        self.pool = kinds["max"](pool) if pool else nn.Identity()
        self.residual = residual
        self.preact = preact

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:  # noqa: SIM108 -- norm -> act -> conv (ResNet v2, DPCNN)
            y = self.conv(self.act(self.norm(x)))
        else:  # conv -> norm -> act
            y = self.act(self.norm(self.conv(x)))
        if self.residual:
            y = y + x
        return self.pool(y)


class ConvCore(nn.Module):
    """Kim's core: parallel conv blocks of several widths, each max-pooled over the first axis.

    In 1D (text) the input is ``(batch, in_channels, time)`` and the kernel of branch ``k`` is
    ``k`` wide. In 2D the input is ``(batch, in_channels, height, width)`` and branch ``k`` uses a
    ``(k, kernel_width)`` kernel; with ``kernel_width`` equal to the width this is the text CNN
    seen as an image. Pooling takes the maximum over every remaining position.

    ``lengths`` (batch,) masks padding: for a text of length ``L`` branch ``k`` pools only over its
    first ``max(L - k + 1, 1)`` windows, so a text's features never depend on how far its batch
    was padded. Inputs shorter than the widest kernel are padded here.

    Returns ``(batch, channels * len(kernel_sizes))``.

    Examples
    --------
    >>> core = ConvCore(dim=1, in_channels=8, channels=4, kernel_sizes=(3, 5))
    >>> x = torch.randn(2, 8, 9)  # (batch, channels, time)
    >>> x[1, :, 2:] = 0  # the second text is 2 positions long, zero-padded (as embedded [PAD])
    >>> batched = core(x, lengths=torch.tensor([9, 2]))
    >>> alone = core(x[1:, :, :2], lengths=torch.tensor([2]))
    >>> batched.shape, bool(torch.allclose(batched[1:], alone, atol=1e-6))
    (torch.Size([2, 8]), True)
    """

    def __init__(
        self,
        dim: int,
        in_channels: int,
        channels: int,
        kernel_sizes: Sequence[int],
        *,
        kernel_width: int | None = None,
        **block_kwargs,
    ):
        super().__init__()
        if dim == 2 and kernel_width is None:
            raise ValueError("a 2D ConvCore needs kernel_width (the image width for Kim's core)")
        self.dim = dim
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.kernel_width = kernel_width
        self.blocks = nn.ModuleList(
            ConvBlock(dim, in_channels, channels, k if dim == 1 else (k, kernel_width),
                      **block_kwargs)
            for k in self.kernel_sizes
        )
        self.out_features = channels * len(self.kernel_sizes)

    def window_maps(self, x: torch.Tensor, lengths: torch.Tensor | None = None
                    ) -> list[torch.Tensor]:
        """Each branch's activations before the max-pool, ``(batch, channels, positions)``, with
        windows past a text's end set to ``-inf``: position ``t`` of branch ``k`` reads input
        positions ``t .. t + k - 1`` only (what :mod:`textcnn.explain` attributes to)."""
        widest = max(self.kernel_sizes)
        time = x.shape[2]
        if time < widest:  # pad the first spatial axis (time / height) with zeros
            pad = [0, 0] * (self.dim - 1) + [0, widest - time]
            x = nn.functional.pad(x, pad)
        maps = []
        for k, block in zip(self.kernel_sizes, self.blocks):
            y = block(x).flatten(2)  # (batch, channels, positions); 2D: width axis is 1 wide
            if lengths is not None:
                n_valid = (lengths - k + 1).clamp(min=1)  # (batch,) windows inside the text
                y = mask_positions(y, n_valid, float("-inf"))
            maps.append(y)
        return maps

    def forward(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        return torch.cat([y.amax(dim=2) for y in self.window_maps(x, lengths)], dim=1)
