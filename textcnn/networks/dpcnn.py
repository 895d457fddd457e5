"""Johnson & Zhang's (2017) deep pyramid CNN: a region embedding, then residual pairs of 3-wide
convolutions with the length halved between pairs, then max over time.

Every convolution is the shared :class:`~textcnn.core.ConvBlock`; the settings
(:class:`DPCNNConfig`, ``model.name: dpcnn``) sit beside the encoder. The heads, the dropout
before them and the wide branch are the :class:`~textcnn.networks.Network`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..core import ConvBlock, mask_positions
from ..fields import fraction, non_negative, param, positive
from ..layers import TextInput, TokenInput
from .network import NamedNetwork


@dataclass
class DPCNNConfig(TextInput):
    """Johnson & Zhang's deep pyramid CNN (``models.DPCNN``): 3-wide convs, length halved."""

    name: ClassVar[str] = "dpcnn"

    channels: int = param(100, "width of every conv (the paper: 250)", positive)
    depth: int = param(8, "at most this many downsampling blocks (pool halving the length, two "
                       "convs); 8 take 256 tokens to one position; 0 = first stage only",
                       non_negative)
    dropout: float = param(0.5, "on the pooled features, before the heads", fraction)


class DPCNNEncoder(TokenInput):
    """Token ids (batch, time) and lengths -> the pyramid's pooled features (batch, channels).

    Every conv is the shared :class:`~textcnn.core.ConvBlock` (1D, 3 wide, "same" padding)::

        x = conv(embedding(ids))                 # region embedding, no activation
        x = x + conv(relu(conv(relu(x))))        # the first stage
        up to ``depth`` times, while the text is longer than one position:
            x = maxpool(3, stride 2)(x)          # length L -> ceil(L / 2)
            x = x + conv(relu(conv(relu(x))))
        max over the remaining positions

    Halving the length halves each block's cost, so all the downsampling blocks together cost
    less than the first stage, and ``depth`` blocks take ``2 ** depth`` tokens to one position.

    ``lengths`` masks padding exactly: padded positions are zeroed before every conv (so "same"
    padding sees the zeros an unpadded text would), set to -inf before every pool and the final
    max, and a text of length ``L`` keeps ``ceil(L / 2)`` positions after a pool. A text already
    down to one position skips the remaining blocks. So a text's logits never depend on how far
    its batch was padded. Length 0 counts as one (padding) position, as in ConvCore.
    """

    def __init__(self, vocab_size: int, heads: dict[str, int], *, embedding_dim: int = 300,
                 channels: int = 250, depth: int = 8, word_dropout: float = 0.0,
                 embedding_mode: str = "non-static"):
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
        self.out_features = channels

    @staticmethod
    def _mask(x: torch.Tensor, n: torch.Tensor, value: float) -> torch.Tensor:
        """``x`` (batch, channels, time) with positions at or past ``n`` (batch,) set to value."""
        return mask_positions(x, n, value)

    def _pair(self, pair: nn.ModuleList, x: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        for block in pair:
            x = block(self._mask(x, n, 0.0))
        return x

    @staticmethod
    def region_ids(ids: torch.Tensor, lengths: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ids the region embedding reads (one padding position when there are none, as
        ConvCore) and each text's valid positions (at least 1)."""
        if ids.shape[1] < 1:
            ids = nn.functional.pad(ids, (0, 1))
        return ids, lengths.to(ids.device).clamp(min=1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
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


class DPCNN(NamedNetwork):
    """Johnson & Zhang (2017), deep pyramid CNN: region embedding -> residual pairs of
    pre-activation 3-wide convs, the length halved between pairs -> max over time -> heads
    (the encoder: :class:`DPCNNEncoder`).

    Parameters
    ----------
    vocab_size : int
        Rows of the embedding table; id 0 is padding.
    heads : dict
        ``{head name: number of classes}``.
    **settings
        The fields of :class:`DPCNNConfig` (defaults as there): ``channels`` (the width of
        every conv; the paper: 250), ``depth`` (at most this many downsampling blocks; 8 take
        256 tokens to one), and the text keys of :class:`~textcnn.networks.TextCNN`
        (embedding, word dropout, the wide branch; pretrained vectors feed the region
        embedding).

    Examples
    --------
    >>> import torch
    >>> model = DPCNN(100, {"topic": 4}, embedding_dim=8, channels=6, depth=3).eval()
    >>> model(torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([5]))["topic"].shape
    torch.Size([1, 4])
    """

    settings = DPCNNConfig
    encoder_class = DPCNNEncoder

    def __init__(self, vocab_size: int, heads: dict[str, int], **settings: Any):
        super().__init__(vocab_size, heads, **settings)
