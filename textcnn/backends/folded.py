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

A DPCNN folds its region embedding (:class:`FoldedDPCNN`), the one convolution that reads the
embeddings: the 3-wide tables replace it and the embedding copy, and its deeper convolutions run
time-major, as matrix products.

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
from ..models import DPCNN, TextCNN
from ..networks import Network
from ..networks.dpcnn import DPCNNEncoder
from .base import Backend

MAX_TABLE_BYTES = 512 * 2**20  # the "auto" backend folds only models whose tables fit in this
REGION = 3  # the DPCNN region embedding's width


def table_bytes(model: nn.Module) -> int:
    """Bytes the folded tables of ``model`` take (float32)."""
    vocab = model.embedding.num_embeddings
    if isinstance(model, DPCNN):  # one row per token id (and one of zeros) per kernel offset
        return 4 * REGION * (vocab + 1) * model.region.conv.out_channels
    core = model.core
    return 4 * vocab * sum(core.kernel_sizes) * core.out_features // len(core.kernel_sizes)


def _plain(block: nn.Module, activation: type[nn.Module], padding: tuple[int] | str) -> bool:
    """Whether a conv block is a plain 1D conv (then ``activation``): no norm, pool, residual,
    pre-activation, stride, dilation or groups, and the given padding."""
    return (isinstance(block.conv, nn.Conv1d) and isinstance(block.norm, nn.Identity)
            and type(block.act) is activation and isinstance(block.pool, nn.Identity)
            and not block.residual and not block.preact and block.conv.stride == (1,)
            and block.conv.padding == padding and block.conv.dilation == (1,)
            and block.conv.groups == 1)


def why_not_foldable(model: nn.Module, max_bytes: int | None = MAX_TABLE_BYTES) -> str | None:
    """None when ``model`` can be folded within ``max_bytes`` (None = no limit), else why not."""
    if isinstance(model, DPCNN):
        if model.region.conv.kernel_size != (REGION,) or not _plain(model.region, nn.Identity,
                                                                     "same"):
            return "its region embedding is not a plain 3-wide convolution"
    elif not isinstance(model, TextCNN):
        return f"only Kim's TextCNN and the DPCNN fold, not {type(model).__name__}"
    elif not all(_plain(block, nn.ReLU, (0,)) for block in model.core.blocks):
        return "its conv blocks use norm, pooling, residual, separable or strided convolutions"
    size = table_bytes(model)
    if max_bytes is not None and size > max_bytes:
        return f"its tables would take {size / 2**20:.0f} MiB (limit {max_bytes / 2**20:.0f} MiB)"
    return None


class _FoldedConvs(nn.Module):
    """Kim's convolutions, max over time, bias and ReLU, read from the folded tables."""

    def __init__(self, model: TextCNN):
        super().__init__()
        self.vocab_size = model.embedding.num_embeddings
        self.kernel_sizes = model.core.kernel_sizes
        emb = model.input_table().detach()  # (vocab, conv input channels)
        with torch.no_grad():
            for i, (k, block) in enumerate(zip(self.kernel_sizes, model.core.blocks)):
                weight = block.conv.weight.detach()  # (filters, channels, k)
                table = torch.einsum("vc,fcj->jvf", emb, weight).reshape(k * self.vocab_size, -1)
                self.register_buffer(f"table{i}", table.contiguous())
                self.register_buffer(f"bias{i}", block.conv.bias.detach().clone())
                self.register_buffer(f"shift{i}", torch.arange(k) * self.vocab_size)

    def window_sums(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Each width's convolution without its bias, ``(batch, positions, filters)``, windows
        past a text's end set to ``-inf``."""
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

    def pooled_windows(self, ids: torch.Tensor, lengths: torch.Tensor
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Per width, ``(each filter's pooled feature (batch, F_k), the window it pooled
        (batch, F_k))``: the features :meth:`features` concatenates, and where they came from
        (what an exact explanation credits)."""
        pooled = []
        for i, y in enumerate(self.window_sums(ids, lengths)):
            best, at = y.max(dim=1)
            pooled.append(((best + getattr(self, f"bias{i}")).relu(), at))
        return pooled

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        sums = self.window_sums(ids, lengths)
        return torch.cat([(y.amax(dim=1) + getattr(self, f"bias{i}")).relu()
                          for i, y in enumerate(sums)], dim=1)


class _FoldedPyramid(nn.Module):
    """The DPCNN encoder with its region embedding read from tables, time-major."""

    def __init__(self, model: DPCNN):
        super().__init__()
        self.vocab_size = model.embedding.num_embeddings
        self.convs = len(model.stage) + sum(len(pair) for pair in model.pyramid)
        with torch.no_grad():
            conv = model.region.conv
            table = torch.einsum("vc,fcj->jvf", model.input_table().detach(), conv.weight)
            self.register_buffer("table", F.pad(table, (0, 0, 0, 1)).contiguous())  # zeros row
            self.register_buffer("bias", conv.bias.detach().clone())
            blocks = [*model.stage, *(block for pair in model.pyramid for block in pair)]
            for i, block in enumerate(blocks):  # W[:, :, j].T per offset j: (3, in, out)
                weight = block.conv.weight.detach().permute(2, 1, 0).contiguous()
                self.register_buffer(f"weight{i}", weight)
                self.register_buffer(f"bias{i}", block.conv.bias.detach().clone())

    def region(self, ids: torch.Tensor, n: torch.Tensor) -> torch.Tensor:
        """The region embedding, (batch, time, channels), of ``ids`` (batch, time) whose texts
        are ``n`` (batch,) positions long."""
        ids = mask_positions(ids.long(), n, self.vocab_size, dim=1)  # past the end: zeros row
        before, at, after = (F.embedding(ids, t) for t in self.table)  # (batch, time, channels)
        return self._same(before, at + self.bias, after)

    def _conv(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Conv ``i`` (3 wide, "same" padding) of ``x`` (batch, time, channels)."""
        weight = getattr(self, f"weight{i}")
        return self._same(x @ weight[0], x @ weight[1] + getattr(self, f"bias{i}"), x @ weight[2])

    @staticmethod
    def _same(before: torch.Tensor, at: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
        """A 3-wide "same" convolution from its three per-position terms (batch, time,
        channels): ``at[t] + before[t - 1] + after[t + 1]``, zeros past either end (in place)."""
        at[:, 1:] += before[:, :-1]
        at[:, :-1] += after[:, 1:]
        return at

    def _pair(self, i: int, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        """Convs ``i`` and ``i + 1``, each after ReLU and zeroing the padding (``keep``: 1 at a
        text's positions, 0 past its end, (batch, time, 1))."""
        return self._conv(i + 1, self._conv(i, x.relu() * keep).relu() * keep)

    @staticmethod
    def _pool(x: torch.Tensor) -> torch.Tensor:
        """Max-pool over time, 3 wide, stride 2, padding 1: (batch, time, channels) -> (batch,
        ceil(time / 2), channels), as the model's ``MaxPool1d(3, 2, 1)``."""
        half = (x.shape[1] + 1) // 2
        x = F.pad(x, (0, 0, 1, 2 * half + 1 - x.shape[1]), value=float("-inf"))
        return torch.maximum(torch.maximum(x[:, 0:2 * half:2], x[:, 1:2 * half + 1:2]),
                             x[:, 2:2 * half + 2:2])

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """:meth:`DPCNNEncoder.pyramid_features` over the folded region embedding,
        time-major."""
        read, n = self.region_ids(ids, lengths)
        x = self.region(read, n)  # (batch, time, channels)

        def masks(time: int) -> tuple[torch.Tensor, torch.Tensor]:  # keep (1 / 0), off (0 / -inf)
            keep = (torch.arange(time, device=x.device) < n[:, None]).to(x.dtype)[..., None]
            return keep, torch.log(keep)

        keep, off = masks(x.shape[1])
        x = x + self._pair(0, x, keep)
        for i in range(2, self.convs, 2):
            if x.shape[1] == 1 and not torch.jit.is_tracing():
                break  # every text is down to one position
            longer = (n > 1).to(x.dtype)[:, None, None]  # texts down to one position skip
            x = self._pool(x + off)
            n = n - n // 2
            keep, off = masks(x.shape[1])
            x = x + longer * self._pair(i, x, keep)
        return (x + off).amax(dim=1)  # (batch, channels)

    # the model's own: which ids the region reads
    region_ids = staticmethod(DPCNNEncoder.region_ids)


class _Folded(Network):
    """A folded twin: the trained model's own :class:`~textcnn.networks.Network` (its heads,
    its wide branch, which tokens the convolutions read) around a folded encoder (the
    subclass's ``folds``), built from the trained encoder's weights.

    Raises ``ValueError`` for a model :func:`why_not_foldable` rejects (with no byte limit).
    """

    folds: type[nn.Module]

    def __init__(self, model: TextCNN | DPCNN):
        reason = why_not_foldable(model, max_bytes=None)
        if reason:
            raise ValueError(f"cannot fold this model: {reason}")
        super().__init__(self.folds(model), model.heads, model.wide,
                         conv_tokens=model.conv_tokens, deep=model.deep)
        self.eval()


class FoldedTextCNN(_Folded):
    """Inference-only twin of a trained :class:`~textcnn.models.TextCNN` (same inputs, same
    ``{head: logits}`` output); the source model's weights are copied, not shared.

    Raises ``ValueError`` for a model :func:`why_not_foldable` rejects (with no byte limit).
    """

    folds = _FoldedConvs

    def window_sums(self, ids: torch.Tensor, lengths: torch.Tensor) -> list[torch.Tensor]:
        """Each width's convolution without its bias over the tokens the model's convolutions
        read, ``(batch, positions, filters)``, windows past a text's end set to ``-inf`` (the
        explanations read which window each filter pooled)."""
        return self.encoder.window_sums(*self.conv_view(ids, lengths))


class FoldedDPCNN(_Folded):
    """Inference-only twin of a trained :class:`~textcnn.models.DPCNN`: its region embedding (a
    3-wide convolution over the embeddings, no activation) read from tables, the rest the
    model's arithmetic in time-major layout (weights copied, not shared)::

        T_j[v] = E[v] @ W[:, :, j].T        (j = 0, 1, 2; one extra row of zeros: padding)
        region(text)[t] = b + T_0[ids[t - 1]] + T_1[ids[t]] + T_2[ids[t + 1]]

    Positions past a text's end read the row of zeros, as the convolution reads zeroed
    embeddings there. This drops the region convolution and the embedding copy, over half of
    a narrow DPCNN's work on short texts. The deeper 3-wide convolutions run on
    ``(batch, time, channels)`` as three matrix products each, the same sums as the model's
    ``conv1d`` in another order (about twice as fast on one CPU thread at 64 channels), and
    padding is masked by multiplying with (or adding) a mask made once per length.

    Raises ``ValueError`` for a model :func:`why_not_foldable` rejects (with no byte limit).
    """

    folds = _FoldedPyramid


class FoldedBackend(Backend):
    """The ``folded`` backend: a :class:`FoldedTextCNN` built once from the trained model.

    Examples
    --------
    >>> from textcnn.models import TextCNN
    >>> FoldedBackend(TextCNN(30, {"topic": 2}, embedding_dim=4, channels=2).eval()).name
    'folded'
    """

    name = "folded"

    def __init__(self, model: TextCNN | DPCNN):
        super().__init__(model)
        self.module = FoldedDPCNN(model) if isinstance(model, DPCNN) else FoldedTextCNN(model)

    def pooled_windows(self, ids: torch.Tensor, lengths: torch.Tensor
                       ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """A folded TextCNN's :meth:`FoldedTextCNN.pooled_windows` (read by the exact
        explanation, :mod:`textcnn.explain`)."""
        return self.module.pooled_windows(ids, lengths)
