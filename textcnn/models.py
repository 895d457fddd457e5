"""Models built on the shared conv core, and a small registry of named models.

Every model maps a batch to ``{head name: logits (batch, n_classes)}``, so the trainer, metrics
and pipeline never care which model they hold.

Example
-------
>>> import torch
>>> model = TextCNN(vocab_size=100, heads={"sentiment": 2}, embedding_dim=16, channels=4)
>>> out = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
>>> out["sentiment"].shape
torch.Size([1, 2])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .config import ModelConfig
from .core import ConvBlock, ConvCore


class Heads(nn.Module):
    """One linear softmax head per task, on shared features."""

    def __init__(self, in_features: int, heads: dict[str, int]):
        super().__init__()
        self.layers = nn.ModuleDict({name: nn.Linear(in_features, n) for name, n in heads.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return {name: layer(features) for name, layer in self.layers.items()}

    @torch.no_grad()
    def apply_max_norm(self, max_norm: float) -> None:
        """Kim's constraint: rescale each class's weight vector to L2 norm <= ``max_norm``."""
        for layer in self.layers.values():
            layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=max_norm))


class TextCNN(nn.Module):
    """Kim (2014): embedding -> parallel 1D convs of several widths -> max over time -> heads.

    Parameters
    ----------
    vocab_size : int
        Rows of the embedding table; id 0 is padding (kept at zero).
    heads : dict
        ``{head name: number of classes}``.
    embedding_dim, kernel_sizes, channels, dropout
        Kim's values are 300, (3, 4, 5), 100 and 0.5.
    word_dropout : float
        In training, zero each token's whole embedding with this probability (a regulariser
        for small sentence sets; 0 = Kim).
    """

    def __init__(
        self,
        vocab_size: int,
        heads: dict[str, int],
        embedding_dim: int = 300,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        channels: int = 100,
        dropout: float = 0.5,
        word_dropout: float = 0.0,
        **block_kwargs,
    ):
        super().__init__()
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        with torch.no_grad():  # Kim's CNN-rand init: U[-0.25, 0.25], about word2vec's variance
            self.embedding.weight.uniform_(-0.25, 0.25)
            self.embedding.weight[0].zero_()
        self.core = ConvCore(1, embedding_dim, channels, kernel_sizes, **block_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(self.core.out_features, heads)

    def input_table(self) -> torch.Tensor:
        """(vocab, conv input channels): what the convolutions see for each token id at
        inference (the folded backend precomputes the convolutions from it)."""
        return self.embedding.weight

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        if self.training and self.word_dropout > 0:
            keep = torch.rand(ids.shape, device=ids.device) >= self.word_dropout  # (batch, time)
            x = x * keep.unsqueeze(-1)
        x = x.transpose(1, 2)  # (batch, embedding_dim, time)
        return self.core(x, lengths)  # (batch, channels * n_kernel_sizes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.dropout(self.features(ids, lengths)))


class ImageCNN(nn.Module):
    """Pixels -> a stack of the shared ConvBlock in 2D -> global max pool -> the same heads.

    The image twin of :class:`TextCNN`: each block is conv (``kernel_size`` square, "same"
    padding) -> optional norm -> ReLU -> ``pool`` x ``pool`` max-pool; the last feature map is
    max-pooled over every position, as Kim's core max-pools over time.

    Parameters
    ----------
    in_channels : int
        Image channels (1 for grey-scale digits).
    heads : dict
        ``{head name: number of classes}``.
    blocks : sequence of int
        Output channels of each block; ``residual`` applies to blocks whose input and output
        channels match.
    kernel_size, pool, dropout
        Square kernel, max-pool window after each block (1 = none), dropout on the features.

    Examples
    --------
    >>> import torch
    >>> model = ImageCNN(1, {"digit": 10}, blocks=(8, 16))
    >>> model(torch.randn(2, 1, 8, 8))["digit"].shape
    torch.Size([2, 10])
    """

    def __init__(
        self,
        in_channels: int,
        heads: dict[str, int],
        blocks: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        dropout: float = 0.5,
        residual: bool = False,
        **block_kwargs,
    ):
        super().__init__()
        layers, channels = [], in_channels
        for out in blocks:
            layers.append(ConvBlock(2, channels, out, kernel_size, padding="same",
                                    pool=pool if pool > 1 else None,
                                    residual=residual and channels == out, **block_kwargs))
            channels = out
        self.core = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(channels, heads)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        x = self.core(images)  # (batch, channels, height', width')
        return x.flatten(2).amax(dim=2)  # (batch, channels): max over every position

    def forward(self, images: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """``images`` (batch, channels, height, width); ``lengths`` is accepted and unused."""
        return self.heads(self.dropout(self.features(images)))


def _textcnn(cfg: ModelConfig, vocab_size: int, heads: dict[str, int]) -> nn.Module:
    return TextCNN(
        vocab_size, heads, cfg.embedding_dim, cfg.kernel_sizes, cfg.channels, cfg.dropout,
        cfg.word_dropout,
        norm=cfg.norm, residual=cfg.residual, separable=cfg.separable,
    )


def _imagecnn(cfg: ModelConfig, in_channels: int, heads: dict[str, int]) -> nn.Module:
    return ImageCNN(
        in_channels, heads, cfg.blocks, cfg.kernel_size, cfg.pool, cfg.dropout,
        norm=cfg.norm, residual=cfg.residual, separable=cfg.separable,
    )


# name -> builder(model config, input size, {head: n_classes}); the input size is the
# vocabulary size for text models and the number of image channels for image models
# (those named in config.IMAGE_MODELS)
REGISTRY: dict[str, Callable[[ModelConfig, int, dict[str, int]], nn.Module]] = {
    "textcnn": _textcnn,
    "imagecnn": _imagecnn,
}


def build_model(cfg: ModelConfig, vocab_size: int, heads: dict[str, int]) -> nn.Module:
    from .errors import ConfigError

    if cfg.name not in REGISTRY:
        raise ConfigError(
            f"config key 'model.name': unknown model {cfg.name!r} (known: {', '.join(REGISTRY)})"
        )
    return REGISTRY[cfg.name](cfg, vocab_size, heads)
