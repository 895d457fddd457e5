"""The registry of named models: ``model.name`` -> its settings class and its network class.

Every model is a :class:`~textcnn.networks.Network` (one encoder per architecture, in
:mod:`textcnn.networks`, the per-task heads and the optional wide branch) and maps a batch to
``{head name: logits (batch, n_classes)}``, so the trainer, metrics and classifiers never care
which model they hold. A new architecture is one file in :mod:`textcnn.networks` and one line
in :data:`REGISTRY`; the config (``textcnn.config.MODEL_CONFIGS``) reads its settings class
from here.

Example
-------
>>> import torch
>>> model = TextCNN(vocab_size=100, heads={"sentiment": 2}, embedding_dim=16, channels=4)
>>> out = model(torch.tensor([[5, 6, 7]]), torch.tensor([3]))
>>> out["sentiment"].shape
torch.Size([1, 2])
"""

from __future__ import annotations

from typing import Any, NamedTuple

from torch import nn

from .errors import ConfigError
from .fields import model_arguments
from .networks import DPCNN, ImageCNN, NamedNetwork, TextCNN
from .networks.charcnn import CharCNN

__all__ = ["DPCNN", "REGISTRY", "CharCNN", "ImageCNN", "RegisteredModel", "TextCNN",
           "build_model", "min_input_length"]


class RegisteredModel(NamedTuple):
    """A named model: its settings class (the ``model`` section) and its network class."""

    config: type
    model: type[NamedNetwork]


def _registry(*networks: type[NamedNetwork]) -> dict[str, RegisteredModel]:
    return {net.settings.name: RegisteredModel(net.settings, net) for net in networks}


# model.name -> its settings and network classes; the network class takes (input size, heads)
# and the settings' fields as keywords (fields.model_arguments). The input size is the
# vocabulary size for text models and the number of image channels for image models
# (input_kind "image"). One entry per architecture, in the order the config reference lists them.
REGISTRY: dict[str, RegisteredModel] = _registry(
    TextCNN,
    DPCNN,
    ImageCNN,
    CharCNN,
)


def build_model(model_config: Any, input_size: int, heads: dict[str, int]) -> nn.Module:
    """The model ``model_config`` describes (its class in :data:`REGISTRY`).

    Parameters
    ----------
    model_config : a settings class of :data:`REGISTRY` (e.g. TextCNNConfig)
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
        Any model; only a network whose encoder declares a ``min_length`` (Kim's widest
        kernel) asks for more than one position.

    Returns
    -------
    int
        ``model.min_length``, else 1.

    Examples
    --------
    >>> min_input_length(TextCNN(vocab_size=10, heads={"t": 2}, kernel_sizes=(3, 5)))
    5
    >>> min_input_length(nn.Linear(4, 2))
    1
    """
    return int(getattr(model, "min_length", 1))
