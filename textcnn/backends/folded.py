"""The "folded" inference backend: Kim's convolutions precomputed into the embedding table.

A 1D convolution over embedded tokens is linear in the embeddings, and the embeddings are a table
lookup. So for each kernel width ``k`` and offset ``j < k`` the product of every vocabulary row
with the kernel's slice ``W[:, :, j]`` can be computed once, at load time::

    T_k[j * V + v] = E[v] @ W_k[:, :, j].T          (V = vocabulary size, one row of F filters)
    conv_k(text)[t] = b_k + sum_j T_k[j * V + ids[t + j]]

and a forward pass becomes gathers and sums (``F.embedding_bag``, one bag of ``k`` rows per
window) instead of ``2 * k * E * F`` multiply-adds per window: about 700 times fewer FLOPs for
Kim's SST-2 model. The rest is the trained model's own arithmetic in the same order: masked max
over time (padding and texts shorter than a kernel handled exactly as in
:class:`~textcnn.core.ConvCore`), bias, ReLU (``max_t relu(y_t + b) = relu(max_t y_t + b)``), and
the model's own heads. Only the summation order inside each window differs from the convolution,
so probabilities agree to about 1e-6 (tested at 1e-5).

The price is memory: ``V * sum(kernel_sizes) * F`` floats (66 MB for the SST-2 model,
288 MB for a 60k-word vocabulary). :func:`foldable` says whether a model can be folded within a
byte budget; the ``auto`` backend (:func:`textcnn.backends.make_backend`) folds when it can and
runs the convolutions otherwise.

Example
-------
>>> import torch
>>> from textcnn.models import TextCNN
>>> model = TextCNN(50, {"sentiment": 2}, embedding_dim=8, channels=4).eval()
>>> ids, lengths = torch.tensor([[5, 6, 7, 0], [8, 9, 10, 11]]), torch.tensor([3, 4])
>>> a, b = model(ids, lengths)["sentiment"], FoldedTextCNN(model)(ids, lengths)["sentiment"]
>>> bool(torch.allclose(a, b, atol=1e-6))
True
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..core import mask_positions
from ..layers import TokenInput
from ..models import TextCNN
from .base import Backend

MAX_TABLE_BYTES = 512 * 2**20  # the "auto" backend folds only models whose tables fit in this


def table_bytes(model: nn.Module) -> int:
    """Bytes the folded tables of ``model`` take (float32)."""
    core = model.core
    vocab = model.embedding.num_embeddings
    return 4 * vocab * sum(core.kernel_sizes) * core.out_features // len(core.kernel_sizes)


def why_not_foldable(model: nn.Module, max_bytes: int | None = MAX_TABLE_BYTES) -> str | None:
    """None when ``model`` can be folded within ``max_bytes`` (None = no limit), else why not."""
    if not isinstance(model, TextCNN):
        return f"only the Kim TextCNN folds, not {type(model).__name__}"
    for block in model.core.blocks:
        plain = (isinstance(block.conv, nn.Conv1d) and isinstance(block.norm, nn.Identity)
                 and isinstance(block.act, nn.ReLU) and isinstance(block.pool, nn.Identity)
                 and not block.residual and not block.preact and block.conv.stride == (1,)
                 and block.conv.padding == (0,) and block.conv.dilation == (1,)
                 and block.conv.groups == 1)
        if not plain:
            return "its conv blocks use norm, pooling, residual, separable or strided convolutions"
    size = table_bytes(model)
    if max_bytes is not None and size > max_bytes:
        return f"its tables would take {size / 2**20:.0f} MiB (limit {max_bytes / 2**20:.0f} MiB)"
    return None


class FoldedTextCNN(nn.Module):
    """Inference-only twin of a trained :class:`~textcnn.models.TextCNN` (same inputs, same
    ``{head: logits}`` output); the source model's weights are copied, not shared.

    Raises ``ValueError`` for a model :func:`why_not_foldable` rejects (with no byte limit).
    """

    def __init__(self, model: TextCNN):
        super().__init__()
        reason = why_not_foldable(model, max_bytes=None)
        if reason:
            raise ValueError(f"cannot fold this model: {reason}")
        self.kernel_sizes = model.core.kernel_sizes
        self.vocab_size = model.embedding.num_embeddings
        self.heads = model.heads
        self.wide, self.conv_tokens, self.deep = model.wide, model.conv_tokens, model.deep
        emb = model.input_table().detach()  # (vocab, conv input channels)
        with torch.no_grad():
            for i, (k, block) in enumerate(zip(self.kernel_sizes, model.core.blocks)):
                weight = block.conv.weight.detach()  # (filters, channels, k)
                table = torch.einsum("vc,fcj->jvf", emb, weight).reshape(k * self.vocab_size, -1)
                self.register_buffer(f"table{i}", table.contiguous())
                self.register_buffer(f"bias{i}", block.conv.bias.detach().clone())
                self.register_buffer(f"shift{i}", torch.arange(k) * self.vocab_size)
        self.eval()

    def window_sums(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Each width's convolution without its bias, ``(batch, positions, filters)``, windows
        past a text's end set to ``-inf`` (the explanations read which window each filter
        pooled)."""
        ids, lengths = self.conv_view(ids, lengths)
        widest = max(self.kernel_sizes)
        if ids.shape[1] < widest:  # as ConvCore: texts shorter than a kernel see padding
            ids = F.pad(ids, (0, widest - ids.shape[1]))
        ids = ids.long()
        sums = []
        for i, k in enumerate(self.kernel_sizes):
            windows = ids.unfold(1, k, 1) + getattr(self, f"shift{i}")  # (batch, positions, k)
            batch, positions = windows.shape[:2]
            y = F.embedding_bag(windows.reshape(-1, k), getattr(self, f"table{i}"), mode="sum")
            y = y.view(batch, positions, -1)
            n_valid = (lengths - k + 1).clamp(min=1)  # (batch,) windows inside the text
            sums.append(mask_positions(y, n_valid, float("-inf"), dim=1))
        return sums

    def features(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        sums = self.window_sums(ids, lengths)
        return torch.cat([(y.amax(dim=1) + getattr(self, f"bias{i}")).relu()
                          for i, y in enumerate(sums)], dim=1)

    # the model's own: the first conv_tokens tokens to the convolutions, the wide branch added
    conv_view = TokenInput.conv_view
    add_wide = TokenInput.add_wide

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        cnn = self.heads(self.features(ids, lengths)) if self.deep else None
        return self.add_wide(cnn, ids, lengths)


class FoldedBackend(Backend):
    """The ``folded`` backend: a :class:`FoldedTextCNN` built once from the trained model.

    Examples
    --------
    >>> from textcnn.models import TextCNN
    >>> FoldedBackend(TextCNN(30, {"topic": 2}, embedding_dim=4, channels=2).eval()).name
    'folded'
    """

    name = "folded"

    def __init__(self, model: TextCNN):
        super().__init__(model)
        self.module = FoldedTextCNN(model)
