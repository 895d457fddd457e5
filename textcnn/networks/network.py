"""One network for every architecture: an encoder, the per-task output layers and the wide branch.

A model is cut where its ideas differ. The *encoder* is what an architecture is (Kim's parallel
convolutions, the DPCNN pyramid, the character CNN, the 2D image stack): it maps its input to
pooled features ``(batch, features)``. What every architecture shares lives here, once:

* the per-task output layers (:class:`~textcnn.layers.Heads`) on those features, after dropout;
* the optional wide branch (:class:`~textcnn.ngrams.NgramBranch`), whose logits are added to
  each head's in :meth:`Network.add_wide` and nowhere else;
* which tokens the encoder reads (``conv_tokens``: the first N; the wide branch reads all) and
  whether the encoder's logits count at all (``deep``).

So an architecture is one file with an encoder and its settings dataclass, and a
:class:`NamedNetwork` subclass that pairs them (``textcnn.models.REGISTRY`` lists it by
``model.name``); the wide branch, the heads and the input view never appear in it.

The encoder's layers are saved under their own names, not under ``encoder.``: a model's
``model.safetensors`` reads ``embedding.weight``, ``core.blocks.0.conv.weight``,
``heads.layers.<task>.weight``, ``wide.weight``, whatever the composition, and the encoder's
layers read as the network's own (``model.core``, ``model.embedding``), the names of its
weights.

Example
-------
>>> import torch
>>> from textcnn.layers import Heads
>>> encoder = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
>>> net = Network(encoder, Heads(5, {"digit": 3})).eval()
>>> net(torch.randn(2, 3, 4))["digit"].shape
torch.Size([2, 3])
>>> sorted(net.state_dict())[:2]
['1.bias', '1.weight']
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import torch
from torch import nn

from ..fields import model_arguments
from ..layers import Heads
from ..ngrams import NgramBranch, WideAndDeep

ENCODER = "encoder"
_OWN = ("heads.", "wide.")  # the network's own state-dict entries; the rest are the encoder's


class Network(nn.Module):
    """``encoder`` -> dropout -> ``heads``, plus the ``wide`` branch's logits.

    Parameters
    ----------
    encoder : nn.Module
        Maps ``(ids, lengths)`` (text) or ``inputs`` alone (images) to pooled features
        ``(batch, heads' in_features)``; its optional ``min_length`` is the fewest positions
        it needs (default 1).
    heads : Heads
        One linear layer per task.
    wide : NgramBranch, optional
        Hashed n-gram logits added to every head's (text encoders only).
    dropout : float
        On the features, before the heads.
    conv_tokens : int
        The encoder reads only the first ``conv_tokens`` tokens (0 = all; the wide branch
        reads every token).
    deep : bool
        False keeps the wide logits alone (needs ``wide``).
    """

    def __init__(self, encoder: nn.Module, heads: Heads, wide: NgramBranch | None = None, *,
                 dropout: float = 0.0, conv_tokens: int = 0, deep: bool = True):
        super().__init__()
        if conv_tokens < 0:
            raise ValueError(f"conv_tokens must be >= 0, got {conv_tokens}")
        if not deep and wide is None:
            raise ValueError("deep=False needs the wide branch (ngram_buckets > 0)")
        clash = [name for name, _ in encoder.named_children() if f"{name}." in _OWN]
        if clash:
            raise ValueError(f"an encoder may not have a layer named {clash[0]!r}")
        self.conv_tokens, self.deep = int(conv_tokens), bool(deep)
        self.encoder = encoder
        self.wide = wide
        self.dropout = nn.Dropout(dropout)
        self.heads = heads
        self.register_state_dict_post_hook(_flatten_encoder)
        self.register_load_state_dict_pre_hook(_nest_encoder)

    def __getattr__(self, name: str) -> Any:
        """The encoder's layers and methods as the network's own (``model.core``)."""
        try:
            return super().__getattr__(name)
        except AttributeError as missing:
            modules = self.__dict__.get("_modules")
            if name == ENCODER or not modules or ENCODER not in modules:
                raise
            try:
                return getattr(modules[ENCODER], name)
            except AttributeError:
                raise missing from None  # named after the network, not its encoder

    @property
    def min_length(self) -> int:
        """The fewest positions an input must have (the encoder's widest kernel)."""
        return int(getattr(self.encoder, "min_length", 1))

    def conv_view(self, ids: torch.Tensor, lengths: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor]:
        """The ids and lengths the encoder reads: the first ``conv_tokens`` tokens."""
        if not self.conv_tokens:
            return ids, lengths
        return ids[:, :self.conv_tokens], lengths.clamp(max=self.conv_tokens)

    def features(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """The encoder's pooled features (batch, features) of what it reads of ``inputs``
        (token ids and their lengths; inputs without lengths, e.g. images, as they are)."""
        if lengths is None:
            return self.encoder(inputs)
        return self.encoder(*self.conv_view(inputs, lengths))

    def add_wide(self, logits: dict[str, torch.Tensor] | None, ids: torch.Tensor,
                 lengths: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Each head's logits plus the wide branch's (every token up to the tokenizer's
        ``max_length``), ``logits`` unchanged without the branch, the wide branch's alone when
        ``logits`` is None (``deep`` False)."""
        if self.wide is None:
            return logits
        wide = self.wide(ids, lengths)
        if logits is None:
            return wide
        return {head: value + wide[head] for head, value in logits.items()}

    def forward(self, inputs: torch.Tensor, lengths: torch.Tensor | None = None
                ) -> dict[str, torch.Tensor]:
        """``{head: logits (batch, classes)}`` of token ids (batch, time) and their lengths,
        or of images (batch, channels, height, width; ``lengths`` unused)."""
        deep = self.heads(self.dropout(self.features(inputs, lengths))) if self.deep else None
        return self.add_wide(deep, inputs, lengths)


def _flatten_encoder(module: Network, state: dict, prefix: str, _meta: Any) -> None:
    """State-dict post-hook: ``encoder.core.x`` saved as ``core.x`` (order kept)."""
    nested = prefix + ENCODER + "."
    items = list(state.items())
    state.clear()
    for key, value in items:
        state[prefix + key[len(nested):] if key.startswith(nested) else key] = value


def _nest_encoder(module: Network, state: dict, prefix: str, *_: Any) -> None:
    """Load-state-dict pre-hook: a saved ``core.x`` read into ``encoder.core.x``."""
    for key in [k for k in state if k.startswith(prefix)]:
        rest = key[len(prefix):]
        if not rest.startswith((*_OWN, ENCODER + ".")):
            state[prefix + ENCODER + "." + rest] = state.pop(key)


class NamedNetwork(Network):
    """A network built from a registered architecture's settings.

    A subclass names its settings dataclass (``settings``, with the ``model.name`` it answers
    to) and its encoder class; ``Subclass(input_size, heads, **settings)`` builds the encoder
    from the settings' own fields and the network from the shared ones (``dropout`` and, for
    text models, the wide branch's :class:`~textcnn.ngrams.WideAndDeep` fields).

    Parameters
    ----------
    input_size : int
        Vocabulary size (text) or image channels (images).
    heads : dict
        ``{head name: number of classes}``.
    **settings
        Fields of ``settings``, defaults as there.
    """

    settings: ClassVar[type]
    encoder_class: ClassVar[type[nn.Module]]

    def __init__(self, input_size: int, heads: dict[str, int], **settings: Any):
        arguments = model_arguments(self.settings(**settings))
        shared = {f.name for f in dataclasses.fields(WideAndDeep)}
        wide = {k: arguments.pop(k) for k in list(arguments) if k in shared}
        dropout = arguments.pop("dropout")
        encoder = self.encoder_class(input_size, heads, **arguments)
        branch = None
        if wide.get("ngram_buckets"):
            branch = NgramBranch(wide["ngram_buckets"], heads, wide["ngram_orders"],
                                 wide["ngram_scale"], wide["ngram_l2"],
                                 0 if wide.get("ngram_punctuation", True) else input_size)
        super().__init__(encoder, Heads(encoder.out_features, heads,
                                        getattr(encoder, "head_columns", None)), branch,
                         dropout=dropout, conv_tokens=wide.get("conv_tokens", 0),
                         deep=wide.get("deep", True))
