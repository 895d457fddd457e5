"""The network of every model: one :class:`Network` (encoder, heads, wide branch), and one file
per architecture holding its encoder and, beside it, its settings dataclass.

An architecture differs from another only in its encoder, so that is all its file holds; the
per-task heads, the dropout before them, the wide branch and which tokens the encoder reads are
the :class:`Network`'s, written once. ``textcnn.models.REGISTRY`` names each architecture by its
``model.name``. Nothing here imports training, serving or prediction.

Example
-------
>>> import torch
>>> model = TextCNN(100, {"sentiment": 2}, embedding_dim=8, channels=4, ngram_buckets=64)
>>> type(model.encoder).__name__, type(model.wide).__name__
('TextCNNEncoder', 'NgramBranch')
"""

from .dpcnn import DPCNN, DPCNNConfig, DPCNNEncoder
from .imagecnn import ImageCNN, ImageCNNConfig, ImageCNNEncoder
from .network import NamedNetwork, Network
from .textcnn import TextCNN, TextCNNConfig, TextCNNEncoder

__all__ = [
    "DPCNN", "DPCNNConfig", "DPCNNEncoder", "ImageCNN", "ImageCNNConfig", "ImageCNNEncoder",
    "NamedNetwork", "Network", "TextCNN", "TextCNNConfig", "TextCNNEncoder",
]
