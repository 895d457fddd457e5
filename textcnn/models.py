"""Models built on the shared conv core, and a small registry of named models.

Every model maps a batch to ``{head name: logits (batch, n_classes)}``, so the trainer, metrics
and classifiers never care which model they hold.

Example
-------
>>> import torch
>>> model = TextCNN(vocab_size=100, heads={"sentiment": 2}, embedding_dim=16, channels=4)
>>> out = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
>>> out["sentiment"].shape
torch.Size([1, 2])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import nn

from .config import (
    AnyModelConfig,
    DPCNNConfig,
    ImageCNNConfig,
    TextCNNConfig,
    model_arguments,
)
from .core import ConvBlock, ConvCore, mask_positions
from .errors import ConfigError
from .layers import Heads, TokenInput, private_columns


class TextCNN(TokenInput):
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
    embedding_mode : str
        Kim's variants once :meth:`load_pretrained` has filled the table: "non-static" (the
        table is trained), "static" (frozen) or "multichannel" (a frozen copy, ``self.static``,
        and a trained one, concatenated along the channels the convolutions see).
    private_channels : int
        Filters per kernel size that each head has to itself, beside the ``channels`` all heads
        share (multi-task); 0 = all shared.
    norm, residual, separable
        Of every conv block (:class:`~textcnn.core.ConvBlock`).
    ngram_buckets, ngram_orders, ngram_scale, ngram_l2, conv_tokens, deep
        The wide branch (:class:`~textcnn.ngrams.NgramBranch`; 0 buckets = none), whose logits
        add to the heads'; the convolutions read the first ``conv_tokens`` tokens (0 = all);
        ``deep=False`` keeps the wide logits alone.

    Examples
    --------
    >>> import torch
    >>> model = TextCNN(1000, {"sentiment": 2, "topic": 5}, embedding_dim=16, channels=8).eval()
    >>> ids = torch.tensor([[4, 8, 15, 16, 23], [42, 0, 0, 0, 0]])  # id 0 pads
    >>> out = model(ids, lengths=torch.tensor([5, 1]))
    >>> {head: tuple(logits.shape) for head, logits in out.items()}
    {'sentiment': (2, 2), 'topic': (2, 5)}
    """

    def __init__(
        self,
        vocab_size: int,
        heads: dict[str, int],
        *,
        embedding_dim: int = 300,
        kernel_sizes: Sequence[int] = (3, 4, 5),
        channels: int = 100,
        dropout: float = 0.5,
        word_dropout: float = 0.0,
        embedding_mode: str = "non-static",
        private_channels: int = 0,
        norm: str = "none",
        residual: bool = False,
        separable: bool = False,
        ngram_buckets: int = 0,
        ngram_orders: Sequence[int] = (1, 2),
        ngram_scale: float = 1.0,
        ngram_l2: float = 0.0,
        conv_tokens: int = 0,
        deep: bool = True,
    ):
        super().__init__()
        in_channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
        self._init_wide(heads, ngram_buckets, ngram_orders, ngram_scale, conv_tokens, deep,
                        ngram_l2)
        self.core = ConvCore(1, in_channels, channels + private_channels * len(heads),
                             kernel_sizes, norm=norm, residual=residual, separable=separable)
        self.dropout = nn.Dropout(dropout)
        select = None
        if private_channels:
            select = private_columns(len(kernel_sizes), channels, private_channels, len(heads))
        self.heads = Heads(self.core.out_features, heads, select)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        ids, lengths = self.conv_view(ids, lengths)
        return self.core(self.embed(ids), lengths)  # (batch, out features)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        cnn = self.heads(self.dropout(self.features(ids, lengths))) if self.deep else None
        return self.add_wide(cnn, ids, lengths)


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
    norm, separable
        Of every block (:class:`~textcnn.core.ConvBlock`).

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
        *,
        blocks: Sequence[int] = (32, 64),
        kernel_size: int = 3,
        pool: int = 2,
        dropout: float = 0.5,
        norm: str = "none",
        residual: bool = False,
        separable: bool = False,
    ):
        super().__init__()
        layers, channels = [], in_channels
        for out in blocks:
            layers.append(ConvBlock(2, channels, out, kernel_size, padding="same",
                                    pool=pool if pool > 1 else None,
                                    norm=norm, residual=residual and channels == out,
                                    separable=separable))
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


class DPCNN(TokenInput):
    """Johnson & Zhang (2017), deep pyramid CNN: region embedding -> residual pairs of
    pre-activation 3-wide convs, the length halved between pairs -> max over time -> heads.

    Every conv is the shared :class:`~textcnn.core.ConvBlock` (1D, 3 wide, "same" padding)::

        x = conv(embedding(ids))                 # region embedding, no activation
        x = x + conv(relu(conv(relu(x))))        # the first stage
        up to ``depth`` times, while the text is longer than one position:
            x = maxpool(3, stride 2)(x)          # length L -> ceil(L / 2)
            x = x + conv(relu(conv(relu(x))))
        max over the remaining positions -> dropout -> heads

    Halving the length halves each block's cost, so all the downsampling blocks together cost
    less than the first stage, and ``depth`` blocks take ``2 ** depth`` tokens to one position.

    ``lengths`` masks padding exactly: padded positions are zeroed before every conv (so "same"
    padding sees the zeros an unpadded text would), set to -inf before every pool and the final
    max, and a text of length ``L`` keeps ``ceil(L / 2)`` positions after a pool. A text already
    down to one position skips the remaining blocks. So a text's logits never depend on how far
    its batch was padded. Length 0 counts as one (padding) position, as in ConvCore.

    Parameters
    ----------
    vocab_size, heads, embedding_dim, dropout, word_dropout, embedding_mode
        As :class:`TextCNN` (pretrained vectors feed the region embedding).
    ngram_buckets, ngram_orders, ngram_scale, ngram_l2, conv_tokens, deep
        As :class:`TextCNN`.
    channels : int
        Width of every conv (the paper: 250).
    depth : int
        At most this many downsampling blocks (pool + two convs); 8 take 256 tokens to one.

    Examples
    --------
    >>> import torch
    >>> model = DPCNN(100, {"topic": 4}, embedding_dim=8, channels=6, depth=3).eval()
    >>> model(torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([5]))["topic"].shape
    torch.Size([1, 4])
    """

    def __init__(
        self,
        vocab_size: int,
        heads: dict[str, int],
        *,
        embedding_dim: int = 300,
        channels: int = 250,
        depth: int = 8,
        dropout: float = 0.5,
        word_dropout: float = 0.0,
        embedding_mode: str = "non-static",
        ngram_buckets: int = 0,
        ngram_orders: Sequence[int] = (1, 2),
        ngram_scale: float = 1.0,
        ngram_l2: float = 0.0,
        conv_tokens: int = 0,
        deep: bool = True,
    ):
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        in_channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
        self._init_wide(heads, ngram_buckets, ngram_orders, ngram_scale, conv_tokens, deep,
                        ngram_l2)
        self.region = ConvBlock(1, in_channels, channels, 3, padding="same",
                                activation=nn.Identity)

        def pair() -> nn.ModuleList:  # ReLU before each conv; zero in -> zero into the conv
            return nn.ModuleList(ConvBlock(1, channels, channels, 3, padding="same", preact=True)
                                 for _ in range(2))

        self.stage = pair()
        self.pool = nn.MaxPool1d(3, stride=2, padding=1)  # one module: hooks see every call
        self.pyramid = nn.ModuleList(pair() for _ in range(depth))
        self.dropout = nn.Dropout(dropout)
        self.heads = Heads(channels, heads)

    @staticmethod
    def _mask(x: torch.Tensor, n: torch.Tensor, value: float) -> torch.Tensor:
        """``x`` (batch, channels, time) with positions at or past ``n`` (batch,) set to value."""
        return mask_positions(x, n, value)

    def _pair(self, pair: nn.ModuleList, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        for block in pair:
            x = block(self._mask(x, n, 0.0))
        return x

    def region_ids(self, ids: torch.Tensor, lengths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ids the region embedding reads (the first ``conv_tokens``; one padding position
        when there are none, as ConvCore) and each text's valid positions (at least 1)."""
        ids, lengths = self.conv_view(ids, lengths)
        if ids.shape[1] < 1:
            ids = nn.functional.pad(ids, (0, 1))
        return ids, lengths.to(ids.device).clamp(min=1)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        ids, n = self.region_ids(ids, lengths)
        x = self.region(self._mask(self.embed(ids), n, 0.0))  # (batch, channels, time)
        return self.pyramid_features(x, n)

    def pyramid_features(self, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """The region embedding ``x`` (batch, channels, time) of texts ``n`` (batch,) positions
        long (at least 1) -> the pooled features (batch, channels): the first stage, the
        pyramid and the max over time (the folded backend computes ``x`` from its tables)."""
        x = x + self._pair(self.stage, x, n)
        for pair in self.pyramid:
            if x.shape[2] == 1 and not torch.jit.is_tracing():
                break  # every text is down to one position (a traced graph keeps all blocks)
            longer = (n > 1).to(x.dtype)[:, None, None]  # texts down to one position skip
            x = self.pool(self._mask(x, n, float("-inf")))  # (batch, channels, ceil(time / 2))
            n = n - n // 2  # ceil(n / 2): what the text alone keeps, not what the pool touches
            x = x + longer * self._pair(pair, x, n)
        return self._mask(x, n, float("-inf")).amax(dim=2)  # (batch, channels)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        cnn = self.heads(self.dropout(self.features(ids, lengths))) if self.deep else None
        return self.add_wide(cnn, ids, lengths)


class RegisteredModel(NamedTuple):
    """A named model: its settings class (the ``model`` section) and its model class."""

    config: type[AnyModelConfig]
    model: type[nn.Module]


# model.name -> its settings and model classes; the model class takes (input size, heads) and
# the settings' fields as keywords (config.model_arguments). The input size is the vocabulary
# size for text models and the number of image channels for image models (input_kind "image").
REGISTRY: dict[str, RegisteredModel] = {
    "textcnn": RegisteredModel(TextCNNConfig, TextCNN),
    "imagecnn": RegisteredModel(ImageCNNConfig, ImageCNN),
    "dpcnn": RegisteredModel(DPCNNConfig, DPCNN),
}


def build_model(model_config: AnyModelConfig, input_size: int,
                heads: dict[str, int]) -> nn.Module:
    """The model ``model_config`` describes (its class in :data:`REGISTRY`).

    Parameters
    ----------
    model_config : TextCNNConfig, DPCNNConfig or ImageCNNConfig
        The ``model`` section of a config.
    input_size : int
        Vocabulary size (text models) or image channels (image models).
    heads : dict
        ``{head name: number of classes}``.
    """
    entry = REGISTRY.get(model_config.name)
    if entry is None:
        raise ConfigError.for_key("model.name", f"{model_config.name!r} is not a known model "
                                  f"(known: {', '.join(REGISTRY)})")
    return entry.model(input_size, heads, **model_arguments(model_config))


def min_input_length(model: nn.Module) -> int:
    """The fewest positions an input must have: the widest kernel of a Kim-style core.

    Shorter inputs are padded to this length before the forward pass.

    Parameters
    ----------
    model : nn.Module
        Any model; only a ``core`` with ``kernel_sizes`` (:class:`~textcnn.core.ConvCore`)
        asks for more than one position.

    Returns
    -------
    int
        ``max(model.core.kernel_sizes)``, else 1.

    Examples
    --------
    >>> min_input_length(TextCNN(vocab_size=10, heads={"t": 2}, kernel_sizes=(3, 5)))
    5
    >>> min_input_length(nn.Linear(4, 2))
    1
    """
    return max(getattr(getattr(model, "core", None), "kernel_sizes", (1,)))
