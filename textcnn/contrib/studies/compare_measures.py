"""What ``textcnn compare`` measures of a trained model: FLOPs, speeds and what its filters see.

Example
-------
>>> flops_per_example(model, (ids, lengths))  # doctest: +SKIP
1210368
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from torch import nn

from ...inference import predict_logits
from ...models import min_input_length
from ...training import train_batches


def flops_per_example(model: nn.Module, inputs: tuple) -> int:
    """Multiply-adds x 2 of every conv and linear layer for one example, from their shapes.

    Parameters
    ----------
    model : nn.Module
        Run once in eval mode on ``inputs``.
    inputs : tuple
        The model's positional inputs for a batch of one example.
    """
    total = [0]

    def hook(module, _, out):
        if isinstance(module, (nn.Conv1d, nn.Conv2d)):
            per_output = module.in_channels // module.groups * int(np.prod(module.kernel_size))
        else:
            per_output = module.in_features
        total[0] += 2 * per_output * out[0].numel()  # out[0]: the first example's outputs

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        with torch.inference_mode():
            model.eval()(*inputs)
    finally:
        for handle in handles:
            handle.remove()
    return total[0]


def train_speed(model: nn.Module, split, head: str, seconds: float = 3.0, batch_size: int = 50,
                lr: float = 1e-3) -> float:
    """Training examples/second (forward, backward, AdamW step) on a copy of ``model``.

    Parameters
    ----------
    model : nn.Module
        Left untouched: a deep copy is trained.
    split
        An encoded split (``lengths``, ``labels``, ``batch(idx, min_len)``).
    head : str
        The output head whose cross-entropy is minimised.
    seconds : float
        How long to train, at least one batch.
    batch_size : int
        Examples per batch (length-bucketed, as the Trainer's).
    lr : float
        AdamW's learning rate.
    """
    model = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, fused=True)  # as the Trainer
    min_len = min_input_length(model)
    batches = train_batches(split.lengths, batch_size, 50, np.random.default_rng(0))
    seen, start = 0, time.perf_counter()
    for idx in batches:
        loss = nn.functional.cross_entropy(model(*split.batch(idx, min_len))[head],
                                           torch.from_numpy(split.labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(idx)
        if time.perf_counter() - start > seconds:
            break
    return seen / (time.perf_counter() - start)


def infer_speed(model: nn.Module, split) -> float:
    """Inference examples/second of ``predict_logits`` over ``split`` (best of 3 passes)."""
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        predict_logits(model, split)
        best = max(best, len(split) / (time.perf_counter() - start))
    return best


def _strongest_filters(weights: torch.Tensor, n_filters: int) -> list[int]:
    """Filters that weigh most in the head, ``n_filters // classes`` per class in turn.

    ``weights`` (classes, channels): the head's weights on one branch's pooled features.
    """
    classes = weights.shape[0]
    per_class = max(1, n_filters // classes)
    favoured = weights.argmax(0)  # (channels,) the class each filter votes for most
    strength = weights.max(0).values - weights.mean(0)
    chosen = []
    for c in range(classes):
        mine = [f for f in strength.argsort(descending=True).tolist() if favoured[f] == c]
        chosen += mine[:per_class]
    return chosen[:n_filters]


@torch.no_grad()
def top_ngrams(side: dict, n_filters: int = 8, per_filter: int = 3) -> list[dict]:
    """The training n-grams that activate the text model's strongest narrowest filters most.

    Parameters
    ----------
    side : dict
        A trained text side of ``textcnn compare``: ``clf``, ``head`` and ``prepared``.
    n_filters : int
        How many filters of the narrowest width (those that weigh most in the head).
    per_filter : int
        Distinct n-grams per filter.

    Returns
    -------
    list of dict
        Per filter: ``filter``, ``width``, ``favours`` (its class) and ``ngrams``
        (``(text, activation)`` pairs; the conv output before the activation, padding masked).
    """
    clf, head = side["clf"], side["head"]
    model = clf.model.eval()
    train = side["prepared"].splits[head]["train"]
    branch = int(np.argmin(model.core.kernel_sizes))  # the narrowest width
    conv = model.core.blocks[branch].conv
    k = model.core.kernel_sizes[branch]
    channels = conv.out_channels
    span = slice(branch * channels, (branch + 1) * channels)  # the branch's pooled features
    weights = model.heads.layers[head].weight[:, span]  # (classes, channels)
    names = clf.heads[head]
    sample = np.random.default_rng(0).permutation(len(train))[:3000]
    ids, lengths = train.batch(sample, k)  # ids (n, T)
    act = conv(model.embedding(ids).transpose(1, 2))  # (n, channels, positions)
    valid = torch.arange(act.shape[2])[None, :] < (lengths - k + 1)[:, None]
    act = act.masked_fill(~valid[:, None, :], float("-inf"))
    rows = []
    for f in _strongest_filters(weights, n_filters):
        flat = act[:, f].flatten()
        grams, seen = [], set()
        for pos in flat.argsort(descending=True)[:200].tolist():
            row, start = divmod(pos, act.shape[2])
            gram = " ".join(clf.tokenizer.id_to_token(int(t)) for t in ids[row, start:start + k])
            if gram not in seen:
                seen.add(gram)
                grams.append((gram, float(flat[pos])))
            if len(grams) == per_filter:
                break
        rows.append({"filter": f, "width": k, "favours": names[int(weights[:, f].argmax())],
                     "ngrams": grams})
    return rows
