"""The wide branch: a TF-IDF bag of hashed token-id n-grams and a linear layer, added to the heads.

A text model with ``model.ngram_buckets > 0`` (wide and deep) adds to each head's CNN logits a
linear model over the text's n-grams, trained jointly with the CNN by the same optimizer. It reads
the token ids the model already receives, so every backend (torch, folded, ONNX), serving,
explanations and multi-task heads see the same input. For a text of length ``L`` and every order
``n`` in ``ngram_orders`` (by default uni- and bi-grams), the n-gram at position ``t`` (``t + n <=
L``; padding is never read) falls in bucket::

    h = (n * SALT + sum_j ids[t + j] * PRIMES[j]) mod buckets          (int64 arithmetic)

Its TF-IDF weight is scikit-learn's ``TfidfVectorizer(sublinear_tf=True)``'s on the buckets:
``(1 + log tf) * idf[h]``, L2-normalised per text, with ``idf = log((1 + N) / (1 + df)) + 1``
fitted on the training split before training (:meth:`NgramBranch.fit_idf`; a bucket no training
text has gets idf 0: it is ignored, as a vocabulary ignores unseen words). ``idf`` is a buffer,
saved with the weights. The logits are ``scale * sum_b x_b * weight[b]``, where ``weight`` is
``(buckets, sum of the heads' classes)`` and head ``i`` reads its own columns. Everything is
sort, cumulative sum, scatter and gather on the text's own positions: no (batch, buckets) tensor
is made, the graph exports to ONNX, and a text's logits never depend on its batch's padding.

Example
-------
>>> import torch
>>> branch = NgramBranch(1000, {"topic": 3}, orders=(1, 2))
>>> ids = torch.tensor([[5, 6, 5, 6, 0, 0], [5, 6, 5, 6, 9, 9]])
>>> branch.fit_idf([(ids, torch.tensor([4, 6]))])  # texts read
2
>>> x = branch.tfidf(ids, torch.tensor([4, 6]))[1]  # (batch, positions): each n-gram's share
>>> int(x[0].eq(0).sum())  # the first text's padding: unigrams 4, 5 and bigrams 3, 4
4
>>> round(float(branch.norms(ids, torch.tensor([4, 6]))[0]), 4)
1.0
>>> branch(ids, torch.tensor([4, 6]))["topic"].shape
torch.Size([2, 3])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .fields import Rule, non_negative, param, positive

MAX_ORDER = 4  # longest n-gram: one prime per token of the window
PRIMES = (1_000_003, 999_983, 998_117, 997_013)  # odd, < 2**20: ids up to 2**40 stay in int64
SALT = 1_234_577  # keeps the orders apart: a bigram and a unigram rarely share a bucket

_WHY_NGRAM_BUCKETS = ("wide and deep: hashed buckets of a TF-IDF bag of token n-grams whose "
                      "linear logits add to every head's (textcnn.ngrams); 0 = off")
_WHY_NGRAM_ORDERS = "the wide branch's n-gram lengths (1 = unigrams, 2 = bigrams; at most 4)"
_WHY_NGRAM_SCALE = "multiplies the wide branch's logits: with Adam, its effective learning rate"
_WHY_NGRAM_L2 = ("L2 penalty on the wide branch's weights in training (as on its logits' scale; "
                 "LinearSVC's 1 / (C * training rows): about 1e-4 for 10,000 documents)")
_WHY_NGRAM_PUNCTUATION = ("false: the wide branch skips tokens with no letter or digit "
                          "(punctuation, symbols) and the tokenizer's special tokens, its n-grams "
                          "joining the words around them, as scikit-learn's word tokens do (long "
                          "documents)")
_WHY_CONV_TOKENS = ("the convolutions read only the first N tokens (the wide branch reads all, up "
                    "to tokenizer.max_length): long documents at a short text's cost; 0 = all")
_ngram_lengths = Rule(lambda value: bool(value) and all(1 <= n <= MAX_ORDER for n in value),
                      "be a non-empty list of n-gram lengths from 1 to 4")


@dataclass
class WideAndDeep:
    """The text models' settings of the wide branch and of the convolutions' token budget
    (the ``model`` keys every text model takes; :class:`~textcnn.networks.Network` reads them)."""

    ngram_buckets: int = param(0, _WHY_NGRAM_BUCKETS, non_negative)
    ngram_orders: list[int] = param([1, 2], _WHY_NGRAM_ORDERS, _ngram_lengths)
    ngram_scale: float = param(1.0, _WHY_NGRAM_SCALE, positive)
    ngram_l2: float = param(0.0, _WHY_NGRAM_L2, non_negative)
    ngram_punctuation: bool = param(True, _WHY_NGRAM_PUNCTUATION, saved_at_default=False)
    conv_tokens: int = param(0, _WHY_CONV_TOKENS, non_negative)
    deep: bool = param(True, "false = the wide branch alone (no CNN logits; an ablation: a TF-IDF "
                       "linear model trained by the same loop); needs ngram_buckets")


class NgramBranch(nn.Module):
    """Hashed uni-/bi-gram TF-IDF features of the token ids and one linear map per head.

    Parameters
    ----------
    buckets : int
        Hash buckets (rows of ``weight``).
    heads : dict
        ``{head name: number of classes}``; head ``i`` reads its slice of ``weight``'s columns.
    orders : sequence of int
        n-gram lengths, each 1 to :data:`MAX_ORDER`.
    scale : float
        Multiplies the logits (under Adam, the branch's effective learning rate).
    l2 : float
        In training, the gradient of ``l2 / 2 * ||scale * weight||^2`` joins ``weight``'s (an
        L2 penalty on the mean loss, at the logits' scale; :class:`_L2`): a LinearSVC's
        regularisation, which a linear model over many rare n-grams needs to generalise.
    vocab : int
        With ``vocab > 0``, the branch skips some token ids: ``skip`` is a ``(vocab,)`` buffer,
        1 for an id the n-grams pass over (:meth:`skip_ids` sets it, e.g. to punctuation), so
        they join the tokens around it; the n-grams' spans still name the text's own tokens.
    """

    def __init__(self, buckets: int, heads: dict[str, int], orders: Sequence[int] = (1, 2),
                 scale: float = 1.0, l2: float = 0.0, vocab: int = 0):
        super().__init__()
        if not orders or not all(1 <= n <= MAX_ORDER for n in orders):
            raise ValueError(f"n-gram orders must be 1 to {MAX_ORDER}, got {list(orders)}")
        self.buckets, self.orders, self.scale = int(buckets), tuple(int(n) for n in orders), scale
        self.l2 = float(l2)
        self.sizes = list(heads.values())
        self.names = list(heads)
        self.weight = nn.Parameter(torch.zeros(self.buckets, sum(self.sizes)))
        self.register_buffer("idf", torch.ones(self.buckets))
        # (vocab,) 1 where the n-grams pass over the id; None: they read every token
        self.register_buffer("skip", torch.zeros(int(vocab), dtype=torch.uint8) if vocab else None)

    @torch.no_grad()
    def skip_ids(self, ids: Iterable[int]) -> int:
        """Make the n-grams pass over the token ``ids`` (a branch built with ``vocab``); returns
        how many ids are skipped."""
        if self.skip is None:
            raise ValueError("this wide branch reads every token: build it with vocab > 0")
        self.skip.zero_()
        ids = torch.as_tensor(sorted(set(ids)), dtype=torch.long)
        self.skip[ids[(ids >= 0) & (ids < len(self.skip))]] = 1
        return int(self.skip.sum())

    def _kept(self, ids: torch.Tensor, lengths: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(ids, lengths, where)``: each text's tokens that are not skipped, moved to its
        front in order, and ``where[b, i]``, the position in the text of its ``i``-th kept token
        (scatter by a running count: no sort, so the graph exports to ONNX)."""
        positions = torch.arange(ids.shape[1], device=ids.device)
        inside = positions[None, :] < lengths[:, None]
        keep = inside & (self.skip[ids.clamp(0, len(self.skip) - 1)] == 0)
        kept = keep.long().cumsum(1)
        n = kept[:, -1:] if ids.shape[1] else torch.zeros_like(lengths[:, None])
        # kept tokens go to 0 .. n - 1 in order, the others after them
        to = torch.where(keep, kept - 1, n + (~keep).long().cumsum(1) - 1)
        where = torch.zeros_like(ids).scatter(1, to, positions.expand_as(ids).contiguous())
        return torch.zeros_like(ids).scatter(1, to, ids), n.squeeze(1), where

    def hashes(self, ids: torch.Tensor, lengths: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(bucket, inside, start, end)`` of every n-gram position, each ``(batch,
        positions)``: the bucket (int64), 1.0 where the n-gram lies inside the text (else 0.0)
        and its token span ``start .. end - 1``; the orders follow each other along the
        positions."""
        ids = ids.long()
        lengths = lengths.to(ids.device).long()
        where = None
        if self.skip is not None:
            ids, lengths, where = self._kept(ids, lengths)
        parts, inside, starts = [], [], []
        for n in self.orders:
            h = torch.zeros_like(ids[:, n - 1:]) + n * SALT
            for j in range(n):  # ids[:, j : j - n + 1]: constant slice ends, dynamic time
                h = h + ids[:, j:(j - n + 1) or None] * PRIMES[j]
            start = torch.arange(h.shape[1], device=ids.device)
            parts.append(h % self.buckets)
            inside.append((start[None, :] + n <= lengths[:, None]).to(torch.float32))
            starts.append(start.expand_as(h))
        start = torch.cat(starts, 1)
        widths = torch.cat([torch.full_like(h, n) for h, n in zip(parts, self.orders)], 1)
        end = start + widths
        if where is not None:  # spans over the text's own tokens, skipped ones inside them
            last = where.shape[1] - 1
            start = where.gather(1, start.clamp(max=last))
            end = where.gather(1, (end - 1).clamp(max=last)) + 1
        return torch.cat(parts, 1), torch.cat(inside, 1), start, end

    def tfidf(self, ids: torch.Tensor, lengths: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(bucket, weight, start, end)`` per n-gram position: ``weight`` is the share of the
        text's L2-normalised TF-IDF vector each occurrence carries (0 outside the text), so a
        bucket's TF-IDF value is the sum of its occurrences' weights."""
        h, inside, start, end = self.hashes(ids, lengths)
        tf = _counts(torch.where(inside > 0, h, torch.full_like(h, self.buckets)))
        tf = tf.clamp(min=1.0)
        idf = self.idf[h]
        share = inside * (1.0 + torch.log(tf)) / tf * idf  # (1 + log tf) idf spread over tf
        norm = (share * share * tf).sum(1, keepdim=True).sqrt().clamp(min=1e-12)
        return h, share / norm, start, end

    def norms(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Each text's TF-IDF vector's L2 norm (1, or 0 for a text with no known n-gram)."""
        h, weight, _, _ = self.tfidf(ids, lengths)
        dense = torch.zeros(h.shape[0], self.buckets).scatter_add(1, h, weight)
        return dense.norm(dim=1)

    def flat_logits(self, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """``(batch, sum of classes)``: every head's logits side by side."""
        h, weight, _, _ = self.tfidf(ids, lengths)
        table = self.weight
        if self.training and self.l2 and torch.is_grad_enabled():
            table = _L2.apply(table, self.l2 * self.scale ** 2)
        rows = nn.functional.embedding(h, table)  # (batch, positions, classes)
        return self.scale * torch.bmm(weight.unsqueeze(1), rows).squeeze(1)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor) -> dict[str, torch.Tensor]:
        flat = self.flat_logits(ids, lengths)
        return dict(zip(self.names, flat.split(self.sizes, dim=1)))

    def head_columns(self, head: str) -> slice:
        """The columns of ``weight`` that ``head`` reads."""
        i = self.names.index(head)
        return slice(sum(self.sizes[:i]), sum(self.sizes[:i + 1]))

    @torch.no_grad()
    def fit_idf(self, splits: Iterable[tuple[torch.Tensor, torch.Tensor]],
                chunk: int = 256) -> int:
        """Set ``idf`` from training texts given as ``(ids, lengths)`` pairs (every head's
        training split); returns the number of texts. Buckets no text has get idf 0."""
        df = torch.zeros(self.buckets, dtype=torch.float64)
        n = 0
        for ids, lengths in splits:
            ids, lengths = torch.as_tensor(ids), torch.as_tensor(lengths)
            for lo in range(0, len(lengths), chunk):
                h, inside, _, _ = self.hashes(ids[lo:lo + chunk], lengths[lo:lo + chunk])
                h = torch.where(inside > 0, h, torch.full_like(h, self.buckets)).sort(1).values
                first = torch.ones_like(h, dtype=torch.bool)
                first[:, 1:] = h[:, 1:] != h[:, :-1]
                seen = h[first & (h < self.buckets)]
                df.index_add_(0, seen, torch.ones(len(seen), dtype=torch.float64))
            n += len(lengths)
        idf = torch.log((1.0 + n) / (1.0 + df)) + 1.0
        self.idf.copy_(torch.where(df > 0, idf, torch.zeros_like(idf)).float())
        return n


class _L2(torch.autograd.Function):
    """Identity forward; backward adds ``l2 * weight`` to the incoming gradient, once per
    forward: the gradient of ``l2 / 2 * ||weight||^2`` on the step's (mean) loss.

    >>> w = torch.ones(2, requires_grad=True)
    >>> (_L2.apply(w, 0.5) * torch.tensor([1.0, 2.0])).sum().backward()
    >>> w.grad.tolist()
    [1.5, 2.5]
    """

    @staticmethod
    def forward(ctx, weight: torch.Tensor, l2: float) -> torch.Tensor:
        ctx.save_for_backward(weight)
        ctx.l2 = l2
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (weight,) = ctx.saved_tensors
        return grad + ctx.l2 * weight, None


def _counts(h: torch.Tensor) -> torch.Tensor:
    """How often each position's value occurs in its row, ``(batch, positions)`` float, by sort,
    run lengths and scatter (no (batch, buckets) tensor)."""
    sorted_h, order = h.sort(dim=1)
    new_run = torch.ones_like(sorted_h)
    new_run = torch.cat([new_run[:, :1], (sorted_h[:, 1:] != sorted_h[:, :-1]).long()], 1)
    run = new_run.cumsum(1) - 1  # (batch, positions): which run each sorted position is in
    ones = torch.ones(h.shape, dtype=torch.float32, device=h.device)
    run_length = torch.zeros_like(ones).scatter_add(1, run, ones).gather(1, run)
    return torch.zeros_like(ones).scatter(1, order, run_length)

