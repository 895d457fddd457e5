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
from .core import ConvCore


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
    """

    def __init__(
        self,
        vocab_size: int,
        heads: dict[str, int],
        embedding_dim: int = 300,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        channels: int = 100,
        dropout: float = 0.5,
        **block_kwargs,
    ):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.core = ConvCore(1, embedding_dim, channels, kernel_sizes, **block_kwargs)
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(self.core.out_features, heads)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        x = x.transpose(1, 2)  # (batch, embedding_dim, time)
        return self.core(x, lengths)  # (batch, channels * n_kernel_sizes)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.dropout(self.features(ids, lengths)))


def _textcnn(cfg: ModelConfig, vocab_size: int, heads: dict[str, int]) -> nn.Module:
    return TextCNN(
        vocab_size, heads, cfg.embedding_dim, cfg.kernel_sizes, cfg.channels, cfg.dropout,
        norm=cfg.norm, residual=cfg.residual, separable=cfg.separable,
    )


# name -> builder(model config, vocab size, {head: n_classes})
REGISTRY: dict[str, Callable[[ModelConfig, int, dict[str, int]], nn.Module]] = {
    "textcnn": _textcnn,
}


def build_model(cfg: ModelConfig, vocab_size: int, heads: dict[str, int]) -> nn.Module:
    from .errors import ConfigError

    if cfg.name not in REGISTRY:
        raise ConfigError(
            f"config key 'model.name': unknown model {cfg.name!r} (known: {', '.join(REGISTRY)})"
        )
    return REGISTRY[cfg.name](cfg, vocab_size, heads)
