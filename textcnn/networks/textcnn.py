"""Kim's (2014) TextCNN: embedding -> parallel 1D convolutions of several widths -> max over time.

The encoder is the shared :class:`~textcnn.core.ConvCore` over a :class:`~textcnn.layers.
TokenInput`; its settings (:class:`TextCNNConfig`, ``model.name: textcnn``) sit beside it. The
heads, the dropout before them and the wide branch are the :class:`~textcnn.networks.Network`'s,
so this file holds only what makes the architecture Kim's (and the shared-private multi-task
filters, which decide which feature columns each head reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from ..core import ConvCore
from ..fields import fraction, non_negative, one_of, param, positive, positive_list
from ..layers import NORMS, TextInput, TokenInput, private_columns
from .network import NamedNetwork


@dataclass
class TextCNNConfig(TextInput):
    """Kim's TextCNN (``models.TextCNN``): parallel convs of several widths over the embeddings."""

    name: ClassVar[str] = "textcnn"

    kernel_sizes: list[int] = param([3, 4, 5], "n-gram widths", positive_list("sizes"))
    channels: int = param(100, "filters per kernel size (shared by every task)", positive)
    private_channels: int = param(0, "multi-task: filters per kernel size each task keeps to "
                                  "itself, read by its head only; 0 = all shared", non_negative)
    dropout: float = param(0.5, "on the pooled features, before the heads", fraction)
    norm: str = param("none", "none | batch: normalisation inside a conv block", one_of(*NORMS))
    residual: bool = param(False, "add the block input to its output (same shape)")
    separable: bool = param(False, "depthwise-separable convolution")


class TextCNNEncoder(TokenInput):
    """Token ids (batch, time) and lengths -> Kim's max-over-time features (batch, features).

    ``head_columns`` (None when every head reads every feature) gives each head its shared and
    private filters' columns; ``min_length`` is the widest kernel (shorter inputs are padded).
    """

    def __init__(self, vocab_size: int, heads: dict[str, int], *, embedding_dim: int = 300,
                 kernel_sizes: Sequence[int] = (3, 4, 5), channels: int = 100,
                 word_dropout: float = 0.0, embedding_mode: str = "non-static",
                 private_channels: int = 0, norm: str = "none", residual: bool = False,
                 separable: bool = False):
        super().__init__()
        in_channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
        self.core = ConvCore(1, in_channels, channels + private_channels * len(heads),
                             kernel_sizes, norm=norm, residual=residual, separable=separable)
        self.out_features = self.core.out_features
        self.min_length = max(self.core.kernel_sizes)
        self.head_columns = (private_columns(len(kernel_sizes), channels, private_channels,
                                             len(heads)) if private_channels else None)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.core(self.embed(ids), lengths)  # (batch, out features)


class TextCNN(NamedNetwork):
    """Kim (2014): embedding -> parallel 1D convs of several widths -> max over time -> heads.

    Parameters
    ----------
    vocab_size : int
        Rows of the embedding table; id 0 is padding (kept at zero).
    heads : dict
        ``{head name: number of classes}``.
    **settings
        The fields of :class:`TextCNNConfig` (defaults as there): Kim's ``embedding_dim``,
        ``kernel_sizes``, ``channels`` and ``dropout`` are 300, (3, 4, 5), 100 and 0.5;
        ``word_dropout`` zeroes a token's whole embedding in training; ``embedding_mode`` is
        one of Kim's variants once :meth:`load_pretrained` has filled the table ("non-static",
        "static", "multichannel": a frozen copy, ``self.static``, beside the trained one);
        ``private_channels`` gives each head filters of its own (multi-task); ``norm``,
        ``residual``, ``separable`` shape every conv block; ``ngram_buckets``,
        ``ngram_orders``, ``ngram_scale``, ``ngram_l2``, ``conv_tokens`` and ``deep`` are the
        wide branch's (:class:`~textcnn.ngrams.NgramBranch`; 0 buckets = none).

    Examples
    --------
    >>> import torch
    >>> model = TextCNN(1000, {"sentiment": 2, "topic": 5}, embedding_dim=16, channels=8).eval()
    >>> ids = torch.tensor([[4, 8, 15, 16, 23], [42, 0, 0, 0, 0]])  # id 0 pads
    >>> out = model(ids, lengths=torch.tensor([5, 1]))
    >>> {head: tuple(logits.shape) for head, logits in out.items()}
    {'sentiment': (2, 2), 'topic': (2, 5)}
    """

    settings = TextCNNConfig
    encoder_class = TextCNNEncoder

    def __init__(self, vocab_size: int, heads: dict[str, int], **settings: Any):
        super().__init__(vocab_size, heads, **settings)
