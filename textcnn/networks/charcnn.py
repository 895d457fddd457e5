"""Zhang, Zhao & LeCun's (2015) character-level CNN: characters in, six convolutions with
max-pooling, two fully connected layers, then the heads.

Characters need no segmentation and no word vocabulary, so misspelt, noisy or unsegmented text
(typos, hashtags, languages without spaces) reaches the network as written. The input is the
``char`` tokenizer's ids (``tokenizer: {kind: char}``: a character vocabulary built from the
training split by Hugging Face ``tokenizers``, id 0 padding, unseen characters ``[UNK]``)
through the shared :class:`~textcnn.layers.TokenInput`; every text is cut or zero-padded to
``length`` characters inside the encoder, as in the paper, so what follows the convolutions is a
fixed-size flatten and the prediction never depends on how far a batch was padded.

The stack is the paper's small variant, built from the shared :class:`~textcnn.core.ConvBlock`
(conv -> ReLU -> optional non-overlapping max-pool of 3)::

    kernel   7    7    3    3    3    3
    pool     3    3    -    -    -    3          ``features`` filters each (the paper: 256)
    flatten -> Linear(hidden) -> ReLU -> dropout -> Linear(hidden) -> ReLU   (the paper: 1024)

and the :class:`~textcnn.networks.Network` adds the dropout before the heads (the paper's third
fully connected layer), and the wide branch if asked. Two choices differ from the paper: the
characters go through a trained embedding table (``embedding_dim``, by default the width of the
paper's 70-letter one-hot code) instead of a fixed one-hot code, so the alphabet is the training
split's own; and ``length`` defaults to 256 characters rather than 1,014, a sentence-level set's
scale (each position costs the same, and 1,014 is the paper's choice for reviews and news).
Settings: :class:`CharCNNConfig`, ``model.name: charcnn``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from ..core import ConvBlock
from ..fields import Rule, fraction, param, positive
from ..layers import TextInput, TokenInput
from .network import NamedNetwork

KERNELS = (7, 7, 3, 3, 3, 3)  # the paper's six convolutions
POOLED = (True, True, False, False, False, True)  # a max-pool of POOL after these
POOL = 3


def positions_left(length: int) -> int:
    """Positions after the six convolutions and three pools of a ``length``-character input.

    >>> positions_left(1014), positions_left(256), positions_left(122)
    (34, 5, 0)
    """
    for kernel, pooled in zip(KERNELS, POOLED):
        length = max(length - kernel + 1, 0)
        length = length // POOL if pooled else length
    return length


MIN_LENGTH = next(n for n in range(1, 2000) if positions_left(n) >= 1)  # 123


@dataclass
class CharCNNConfig(TextInput):
    """Zhang, Zhao & LeCun's character CNN (``models.CharCNN``), the small variant."""

    name: ClassVar[str] = "charcnn"

    embedding_dim: int = param(70, "width of each character's vector (the paper: a 70-letter "
                               "one-hot code)", positive)
    length: int = param(256, "characters every text is cut or zero-padded to (the paper: 1014; "
                        f"at least {MIN_LENGTH}); set tokenizer.max_length to it",
                        Rule(lambda n: n >= MIN_LENGTH, f"be at least {MIN_LENGTH} (six convs "
                             "and three pools of 3 leave no position below it)"))
    features: int = param(256, "filters of every convolution (the paper's small variant: 256)",
                          positive)
    hidden: int = param(1024, "units of each of the two fully connected layers (the paper: "
                        "1024)", positive)
    hidden_dropout: float = param(0.5, "between the two fully connected layers", fraction)
    dropout: float = param(0.5, "on the last fully connected layer's output, before the heads",
                           fraction)


def fixed_length(ids: torch.Tensor, lengths: torch.Tensor, length: int) -> torch.Tensor:
    """``ids`` (batch, time) with positions at or past ``lengths`` zeroed, cut or zero-padded
    to ``length`` columns (the same graph for every batch width, as ONNX needs).

    >>> fixed_length(torch.tensor([[5, 6, 7], [8, 9, 4]]), torch.tensor([3, 1]), 4).tolist()
    [[5, 6, 7, 0], [8, 0, 0, 0]]
    """
    valid = torch.arange(ids.shape[1], device=ids.device) < lengths.to(ids.device)[:, None]
    return nn.functional.pad(ids * valid, (0, length))[:, :length]


class CharCNNEncoder(TokenInput):
    """Character ids (batch, time) and lengths -> the last fully connected layer (batch,
    hidden)."""

    def __init__(self, vocab_size: int, heads: dict[str, int], *, embedding_dim: int = 70,
                 length: int = 256, features: int = 256, hidden: int = 1024,
                 hidden_dropout: float = 0.5, word_dropout: float = 0.0,
                 embedding_mode: str = "non-static"):
        super().__init__()
        left = positions_left(length)
        if left < 1:
            raise ValueError(f"length must be at least {MIN_LENGTH}, got {length}")
        channels = self._init_input(vocab_size, embedding_dim, embedding_mode, word_dropout)
        blocks = []
        for kernel, pooled in zip(KERNELS, POOLED):
            blocks.append(ConvBlock(1, channels, features, kernel, pool=POOL if pooled else None))
            channels = features
        self.convs = nn.Sequential(*blocks)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(features * left, hidden), nn.ReLU(),
                                nn.Dropout(hidden_dropout), nn.Linear(hidden, hidden), nn.ReLU())
        self.length, self.out_features = int(length), hidden

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        x = self.embed(fixed_length(ids, lengths, self.length))  # (batch, channels, length)
        return self.fc(self.convs(x))  # (batch, hidden)


class CharCNN(NamedNetwork):
    """Zhang, Zhao & LeCun (2015): characters -> six convs with max-pools -> two fully
    connected layers -> heads (the encoder: :class:`CharCNNEncoder`).

    Parameters
    ----------
    vocab_size : int
        Characters in the vocabulary (the ``char`` tokenizer's), id 0 padding.
    heads : dict
        ``{head name: number of classes}``.
    **settings
        The fields of :class:`CharCNNConfig` (defaults as there): ``length``, ``features``,
        ``hidden``, ``hidden_dropout``, ``dropout``, and the text keys every text model takes.

    Examples
    --------
    >>> import torch
    >>> model = CharCNN(40, {"topic": 6}, embedding_dim=8, length=130, features=16,
    ...                 hidden=32).eval()
    >>> model(torch.tensor([[5, 6, 7, 8, 9]]), torch.tensor([5]))["topic"].shape
    torch.Size([1, 6])
    """

    settings = CharCNNConfig
    encoder_class = CharCNNEncoder

    def __init__(self, vocab_size: int, heads: dict[str, int], **settings: Any):
        super().__init__(vocab_size, heads, **settings)
