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
from .core import ConvBlock, ConvCore
from .errors import ConfigError


class Heads(nn.Module):
    """One linear softmax head per task, on shared features.

    ``select`` (optional) gives each head the feature columns it reads, one equal-length list per
    head in ``heads`` order (TextCNN's task-private filters); by default every head reads all.
    """

    def __init__(self, in_features: int, heads: dict[str, int],
                 select: Sequence[Sequence[int]] | None = None):
        super().__init__()
        # rebuilt from the config on load, so not part of the saved weights
        self.register_buffer("select", None if select is None else
                             torch.tensor(select, dtype=torch.long), persistent=False)
        if self.select is not None:
            in_features = self.select.shape[1]
        self.layers = nn.ModuleDict({name: nn.Linear(in_features, n) for name, n in heads.items()})

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.select is None:
            return {name: layer(features) for name, layer in self.layers.items()}
        return {name: layer(features[:, self.select[i]])
                for i, (name, layer) in enumerate(self.layers.items())}

    @torch.no_grad()
    def apply_max_norm(self, max_norm: float) -> None:
        """Kim's constraint: rescale each class's weight vector to L2 norm <= ``max_norm``."""
        for layer in self.layers.values():
            layer.weight.copy_(torch.renorm(layer.weight, p=2, dim=0, maxnorm=max_norm))


def private_columns(n_kernels: int, shared: int, private: int, n_heads: int) -> list[list[int]]:
    """Feature columns each head reads when every kernel size has ``shared`` filters followed by
    ``private`` filters per head (head order), e.g. 1 kernel, 2 shared, 1 private, 2 heads:
    ``[[0, 1, 2], [0, 1, 3]]``."""
    per_kernel = shared + private * n_heads
    return [
        [k * per_kernel + c for k in range(n_kernels)
         for c in [*range(shared), *range(shared + h * private, shared + (h + 1) * private)]]
        for h in range(n_heads)
    ]


class TokenInput(nn.Module):
    """The token side every text model shares: an embedding table (id 0 = padding, kept at
    zero), Kim's embedding modes once :meth:`load_pretrained` fills it, and word dropout."""

    def _init_input(self, vocab_size: int, embedding_dim: int, embedding_mode: str,
                    word_dropout: float) -> int:
        """Create the table(s); returns the channels the first convolution sees."""
        if embedding_mode not in ("non-static", "static", "multichannel"):
            raise ValueError(f"unknown embedding_mode {embedding_mode!r}")
        self.word_dropout = word_dropout
        self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        with torch.no_grad():  # Kim's CNN-rand init: U[-0.25, 0.25], about word2vec's variance
            self.embedding.weight.uniform_(-0.25, 0.25)
            self.embedding.weight[0].zero_()
        self.static = None
        if embedding_mode == "static":
            self.embedding.weight.requires_grad_(False)
        elif embedding_mode == "multichannel":
            self.static = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
            self.static.weight.requires_grad_(False)
            with torch.no_grad():
                self.static.weight.copy_(self.embedding.weight)
        return embedding_dim * (2 if self.static is not None else 1)

    @torch.no_grad()
    def load_pretrained(self, matrix: torch.Tensor) -> None:
        """Copy a (vocab, embedding_dim) matrix into the table (and the static channel)."""
        if tuple(matrix.shape) != tuple(self.embedding.weight.shape):
            raise ValueError(f"pretrained matrix {tuple(matrix.shape)} does not match the "
                             f"embedding table {tuple(self.embedding.weight.shape)}")
        for table in (self.embedding, self.static):
            if table is not None:
                table.weight.copy_(matrix)
                table.weight[0].zero_()  # [PAD]

    def input_table(self) -> torch.Tensor:
        """(vocab, conv input channels): what the convolutions see for each token id at
        inference (the folded backend precomputes the convolutions from it)."""
        if self.static is None:
            return self.embedding.weight
        return torch.cat([self.embedding.weight, self.static.weight], dim=1)

    def embed(self, ids: torch.Tensor) -> torch.Tensor:
        """(batch, time) ids -> (batch, conv input channels, time)."""
        x = self.embedding(ids)  # (batch, time, embedding_dim)
        if self.static is not None:  # multichannel: (batch, time, 2 * embedding_dim)
            x = torch.cat([x, self.static(ids)], dim=2)
        if self.training and self.word_dropout > 0:
            keep = torch.rand(ids.shape, device=ids.device) >= self.word_dropout  # (batch, time)
            x = x * keep.unsqueeze(-1)
        return x.transpose(1, 2)


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
    ):
        super().__init__()
        in_channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
        self.core = ConvCore(1, in_channels, channels + private_channels * len(heads),
                             kernel_sizes, norm=norm, residual=residual, separable=separable)
        self.dropout = nn.Dropout(dropout)
        select = None
        if private_channels:
            select = private_columns(len(kernel_sizes), channels, private_channels, len(heads))
        self.heads = Heads(self.core.out_features, heads, select)

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        return self.core(self.embed(ids), lengths)  # (batch, out features)

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
    ):
        super().__init__()
        if depth < 0:
            raise ValueError(f"depth must be >= 0, got {depth}")
        in_channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
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
        pos = torch.arange(x.shape[2], device=x.device)
        return x.masked_fill(pos[None, None, :] >= n[:, None, None], value)

    def _pair(self, pair: nn.ModuleList, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        for block in pair:
            x = block(self._mask(x, n, 0.0))
        return x

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if ids.shape[1] < 1:  # no positions at all: one padding position, as ConvCore
            ids = nn.functional.pad(ids, (0, 1))
        x = self.embed(ids)  # (batch, embedding channels, time)
        n = lengths.to(x.device).clamp(min=1)  # valid positions per text
        x = self.region(self._mask(x, n, 0.0))  # (batch, channels, time)
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
        return self.heads(self.dropout(self.features(ids, lengths)))


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
