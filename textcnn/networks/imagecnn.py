"""The image twin of Kim's CNN: a stack of the shared 2D :class:`~textcnn.core.ConvBlock`, then
a global max pool, then the same heads.

The conv/pool block is the text models' own block in 2D (``textcnn.parity`` checks the two
paths agree), so an image run and a text run differ only in their input and this encoder. The
settings (:class:`ImageCNNConfig`, ``model.name: imagecnn``) sit beside it; the input size is
the number of image channels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..core import ConvBlock
from ..fields import fraction, one_of, param, positive, positive_list
from ..layers import NORMS
from .network import NamedNetwork


@dataclass
class ImageCNNConfig:
    """The image twin (``models.ImageCNN``): 2D blocks; the input size comes from the images."""

    name: ClassVar[str] = "imagecnn"
    input_kind: ClassVar[str] = "image"  # pixels in: no tokenizer, no embedding

    blocks: list[int] = param([32, 64], "out channels of each 2D block", positive_list("channels"))
    kernel_size: int = param(3, "square kernel of every 2D block", positive)
    pool: int = param(2, "max-pool window after every 2D block; 1 = no pooling", positive)
    dropout: float = param(0.5, "on the pooled features, before the heads", fraction)
    norm: str = param("none", "none | batch: normalisation inside a conv block", one_of(*NORMS))
    residual: bool = param(False, "add the block input to its output (same shape)")
    separable: bool = param(False, "depthwise-separable convolution")


class ImageCNNEncoder(nn.Module):
    """Images (batch, channels, height, width) -> max over every position (batch, channels).

    Each block is conv (``kernel_size`` square, "same" padding) -> optional norm -> ReLU ->
    ``pool`` x ``pool`` max-pool; the last feature map is max-pooled over every position, as
    Kim's core max-pools over time. ``residual`` applies to blocks whose input and output
    channels match.
    """

    def __init__(self, in_channels: int, heads: dict[str, int], *,
                 blocks: Sequence[int] = (32, 64), kernel_size: int = 3, pool: int = 2,
                 norm: str = "none", residual: bool = False, separable: bool = False):
        super().__init__()
        layers, channels = [], in_channels
        for out in blocks:
            layers.append(ConvBlock(2, channels, out, kernel_size, padding="same",
                                    pool=pool if pool > 1 else None,
                                    norm=norm, residual=residual and channels == out,
                                    separable=separable))
            channels = out
        self.core = nn.Sequential(*layers)
        self.out_features = channels

    def forward(self, images: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """``images`` (batch, channels, height, width); ``lengths`` is accepted and unused."""
        x = self.core(images)  # (batch, channels, height', width')
        return x.flatten(2).amax(dim=2)  # (batch, channels): max over every position


class ImageCNN(NamedNetwork):
    """Pixels -> a stack of the shared ConvBlock in 2D -> global max pool -> the same heads.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grey-scale digits).
    heads : dict
        ``{head name: number of classes}``.
    **settings
        The fields of :class:`ImageCNNConfig` (defaults as there): ``blocks`` (out channels
        of each block), ``kernel_size``, ``pool`` (the max-pool window after each block; 1 =
        none), ``dropout`` on the features, ``norm``, ``residual``, ``separable``.

    Examples
    --------
    >>> import torch
    >>> model = ImageCNN(1, {"digit": 10}, blocks=(8, 16))
    >>> model(torch.randn(2, 1, 8, 8))["digit"].shape
    torch.Size([2, 10])
    """

    settings = ImageCNNConfig
    encoder_class = ImageCNNEncoder

    def __init__(self, in_channels: int, heads: dict[str, int], **settings: Any):
        super().__init__(in_channels, heads, **settings)
