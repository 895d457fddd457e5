"""Why a text model decided: per head, the token windows that drove the predicted label's logit.

For Kim's TextCNN the answer is exact. Each pooled filter ``f`` takes the maximum over the
windows of its width, so its feature is the activation of one window, and the head is linear::

    logit(label) = bias + sum_f w_f * relu(max_t conv_f(window_t))

Each term ``w_f * feature_f`` is credited to the window filter ``f`` pooled; terms of filters that
pooled the same window add up. The window contributions plus the bias are the logit, and so are
the per-token attributions (each window's contribution spread evenly over its tokens) plus the
bias (to float rounding; tested to 1e-5). This holds for every embedding mode, shared-private
multi-task filters, batch norm in the conv blocks (at inference it is per-filter affine, applied
before the pool) and the folded backend (which is read directly: its precomputed window sums).
The ``onnx`` backend is explained with the torch network it was exported from.

Other models (DPCNN: pooling between layers mixes windows) get integrated gradients over the
input embeddings (:data:`IG_STEPS` midpoint steps from the all-padding input), marked
``"exact": false``: there ``bias`` is the logit of the all-padding input of the same length and
the token attributions sum to ``logit - bias`` only approximately; the windows are the spans of
1 to 3 tokens with the largest summed attribution, not overlapping.

Example
-------
>>> import textcnn
>>> clf = textcnn.load(model_dir)
>>> row = clf.explain(["a gorgeous, witty film"], top_k=2)[0]
>>> answer = row["heads"]["sentiment"]
>>> answer["exact"], len(answer["windows"]) <= 2, len(answer["token_attributions"])
(True, True, 5)
>>> bool(abs(answer["bias"] + sum(answer["token_attributions"]) - answer["logit"]) < 1e-5)
True
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import InputError
from .heads import softmax
from .models import TextCNN
from .tokenizer import encode_with_offsets

IG_STEPS = 32  # integrated-gradients steps of the approximate explanation
IG_BATCH = 8  # texts per integrated-gradients pass (each runs IG_STEPS copies)
FALLBACK_WIDTHS = (1, 2, 3)  # window widths the approximate explanation reports
DIGITS = 8  # decimals kept in the output (far below the 1e-5 the sums are checked to)


@dataclass
class Attribution:
    """One text's explanation for one head, before it is written out.

    ``windows`` maps ``(start, end)`` token positions to a contribution to ``logits[label]``;
    ``tokens`` is the per-token attribution.
    """

    label: int
    logits: np.ndarray
    bias: float
    windows: dict[tuple[int, int], float]
    tokens: np.ndarray
    exact: bool


def _label_weights(model: TextCNN, head: str, labels: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's head weights over *all* pooled features (zero where a head does not read a
    task-private filter) and bias, for that row's label: ``(rows, features)``, ``(rows,)``."""
    heads = model.heads
    layer = heads.layers[head]
    weight = layer.weight[labels]  # (rows, columns the head reads)
    if heads.select is None:
        return weight, layer.bias[labels]
    full = weight.new_zeros(len(labels), model.core.out_features)
    full[:, heads.select[list(heads.layers).index(head)]] = weight
    return full, layer.bias[labels]


def _pooled(clf, ids: torch.Tensor, lengths: torch.Tensor
            ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """``(features (rows, F), [which window each filter of width k pooled (rows, F_k)])``, read
    from the backend in use (the folded tables, else the torch network)."""
    values, where = [], []
    if clf.backend == "folded":
        for best, at in clf.engine.pooled_windows(ids, lengths):  # (rows, F_k) each
            values.append(best)
            where.append(at)
    else:
        model = clf.model
        ids, lengths = model.conv_view(ids, lengths)
        for y in model.core.window_maps(model.embed(ids), lengths):  # (rows, F_k, positions)
            best, at = y.max(dim=2)
            values.append(best)
            where.append(at)
    return torch.cat(values, dim=1), where


def exact_attributions(clf, ids: np.ndarray, lengths: np.ndarray, heads: list[str]
                       ) -> list[dict[str, Attribution]]:
    """The exact explanation of a Kim TextCNN for a batch of encoded texts (see the module)."""
    model = clf.model
    ids_t, lengths_t = torch.as_tensor(ids).long(), torch.as_tensor(lengths)
    with torch.inference_mode():
        features, where = _pooled(clf, ids_t, lengths_t)
        logits = model.add_wide(model.heads(features) if model.deep else None, ids_t, lengths_t)
        starts, ends = _filter_spans(model.core.kernel_sizes, where, lengths)
        out: list[dict[str, Attribution]] = [{} for _ in range(len(ids))]
        for head in heads:
            labels = logits[head].argmax(dim=1)
            weight, bias = _label_weights(model, head, labels)
            if not model.deep:  # the wide branch alone: no CNN term, no head bias
                weight, bias = weight * 0.0, bias * 0.0
            terms = (weight * features).double().numpy()  # (rows, F): one term per filter
            first, last, terms = _with_wide(model, head, labels, ids_t, lengths_t,
                                            (starts, ends, terms))
            for row, answers in enumerate(out):
                windows = _by_window(first[row], last[row], terms[row])
                answers[head] = Attribution(
                    int(labels[row]), logits[head][row].double().numpy(), float(bias[row]),
                    windows, _spread(windows, int(lengths[row])), True)
    return out


def _with_wide(model, head: str, labels: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor,
               cnn: tuple[np.ndarray, np.ndarray, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The CNN's ``(starts, ends, terms)`` (rows, F) followed by the wide branch's (one term per
    n-gram occurrence: its TF-IDF share times its bucket's weight for the row's label), when the
    model has one: the wide logit is the sum of these terms, exactly."""
    wide = getattr(model, "wide", None)
    if wide is None:
        return cnn
    h, share, start, end = wide.tfidf(ids, lengths)
    columns = wide.weight[:, wide.head_columns(head)]  # (buckets, classes)
    terms = wide.scale * share * columns[h, labels[:, None]]  # (rows, positions)
    return tuple(np.concatenate([a, b.numpy()], axis=1).astype(a.dtype) for a, b in
                 zip(cnn, (start, end, terms.double())))


def _filter_spans(kernel_sizes, where: list[torch.Tensor], lengths: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` (rows, F): the token span each filter pooled, clipped to the text (a
    text shorter than a kernel is read with padding after it)."""
    starts = torch.cat(where, dim=1).numpy()
    widths = np.concatenate([np.full(at.shape[1], k) for k, at in zip(kernel_sizes, where)])
    length = np.asarray(lengths)[:, None]
    return np.minimum(starts, length), np.minimum(starts + widths, length)


def _by_window(starts: np.ndarray, ends: np.ndarray, terms: np.ndarray
               ) -> dict[tuple[int, int], float]:
    """The non-zero ``terms`` of one text summed per ``(start, end)`` window."""
    keep = terms != 0.0
    base = int(ends.max(initial=0)) + 1
    keys, which = np.unique(starts[keep] * base + ends[keep], return_inverse=True)
    sums = np.bincount(which, weights=terms[keep], minlength=len(keys))
    return {(int(key // base), int(key % base)): float(v) for key, v in zip(keys, sums)}


def _spread(windows: dict[tuple[int, int], float], length: int) -> np.ndarray:
    """Per-token attribution: each window's contribution shared evenly by its tokens."""
    steps = np.zeros(length + 1)  # share added at a window's start, taken back at its end
    for (start, end), value in windows.items():
        if end > start:
            share = value / (end - start)
            steps[start] += share
            steps[end] -= share
    return np.cumsum(steps)[:length]


def gradient_attributions(model: torch.nn.Module, ids: np.ndarray, lengths: np.ndarray,
                          heads: list[str], steps: int = IG_STEPS
                          ) -> list[dict[str, Attribution]]:
    """Integrated gradients of each head's predicted logit with respect to the input
    embeddings, from the all-padding input (approximate; any text model with ``embed``)."""
    ids_t, lengths_t = torch.as_tensor(ids).long(), torch.as_tensor(lengths)
    rows = len(ids)
    out: list[dict[str, Attribution]] = [{} for _ in range(rows)]
    with torch.inference_mode(False), torch.no_grad():
        logits = model(ids_t, lengths_t)
        baseline = model(torch.zeros_like(ids_t), lengths_t)
    scale = ((torch.arange(steps) + 0.5) / steps).repeat_interleave(rows)[:, None, None]
    for head in heads:
        labels = logits[head].argmax(dim=1)
        tokens = _integrated(model, ids_t.repeat(steps, 1), lengths_t.repeat(steps), scale,
                             head, labels.repeat(steps))
        tokens = tokens.view(steps, rows, -1).mean(dim=0).double().numpy()  # (rows, time)
        for row in range(rows):
            label, length = int(labels[row]), int(lengths[row])
            attr = tokens[row, :length]
            out[row][head] = Attribution(
                label, logits[head][row].double().numpy(), float(baseline[head][row, label]),
                _best_spans(attr), attr, False)
    return out


def _integrated(model, ids: torch.Tensor, lengths: torch.Tensor, scale: torch.Tensor,
                head: str, labels: torch.Tensor) -> torch.Tensor:
    """``(rows, time)``: input x gradient at ``scale * input``, summed over embedding channels."""
    captured: list[tuple[torch.Tensor, torch.Tensor]] = []

    def scaled(module, inputs, output):  # the embedding lookup, scaled and made a leaf
        point = (output.detach() * scale).requires_grad_(True)
        captured.append((output.detach(), point))
        return point

    tables = [t for t in (model.embedding, getattr(model, "static", None)) if t is not None]
    hooks = [t.register_forward_hook(scaled) for t in tables]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            target = model(ids, lengths)[head].gather(1, labels[:, None]).sum()
            grads = torch.autograd.grad(target, [point for _, point in captured])
    finally:
        for hook in hooks:
            hook.remove()
    return sum((x * g).sum(dim=2) for (x, _), g in zip(captured, grads))


def _best_spans(tokens: np.ndarray, widths=FALLBACK_WIDTHS) -> dict[tuple[int, int], float]:
    """Non-overlapping spans of ``widths`` tokens with the largest summed attribution."""
    n = len(tokens)
    candidates = sorted(((float(tokens[s:s + w].sum()), s, s + w)
                         for w in widths for s in range(max(n - w + 1, 0))), reverse=True)
    taken, spans = np.zeros(n, dtype=bool), {}
    for value, start, end in candidates:
        if not taken[start:end].any():
            taken[start:end] = True
            spans[(start, end)] = value
    return spans


def explain(clf, texts: list[str], head: str | None = None, top_k: int | None = 5
            ) -> list[dict]:
    """Explain a text classifier's prediction for each text (``TextClassifier.explain``).

    Parameters
    ----------
    clf : TextClassifier
    texts : list of str
    head : str, optional
        Only this head (default: every head).
    top_k : int or None
        Windows listed per head, largest contribution first (None: all).

    Returns
    -------
    list of dict
        One per text: ``{"text", "tokens": [{"text", "start", "end"}] (character offsets),
        "heads": {head: {"label", "score", "logit", "bias", "exact", "method", "windows":
        [{"start", "end", "char_start", "char_end", "text", "contribution"}],
        "token_attributions": [one per token]}}}``.
    """
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int)
                              or top_k < 1):
        raise InputError(f"top_k must be a positive integer, got {top_k!r}")
    texts, heads = clf.admit(texts), clf.select_heads(head)
    for h in heads:  # a contribution to a logit is one to a label only when they pair up
        kind, labels = clf.head_objects[h], len(clf.heads[h])
        if kind.outputs(labels) != labels:
            raise InputError(f"explain attributes logits to labels; head '{h}' "
                             f"({kind.name}) has {kind.outputs(labels)} logits for {labels} "
                             "labels")
    ids, lengths, offsets = encode_with_offsets(clf.tokenizer, texts)
    exact = isinstance(clf.model, TextCNN)
    step = clf.config.train.eval_batch_size if exact else IG_BATCH
    rows = []
    for first in range(0, len(texts), step):
        part = slice(first, first + step)
        width = max(int(lengths[part].max(initial=0)), 1)
        args = (ids[part, :width], lengths[part], heads)
        found = exact_attributions(clf, *args) if exact else gradient_attributions(clf.model,
                                                                                   *args)
        rows.extend(found)
    out = []
    for text, spans, answers in zip(texts, offsets, rows):
        out.append({"text": text,
                    "tokens": [{"text": text[s:e], "start": s, "end": e} for s, e in spans],
                    "heads": {h: _answer(a, clf.heads[h], text, spans, top_k, softmax)
                              for h, a in answers.items()}})
    return out


def _answer(a: Attribution, names: list[str], text: str, spans: list[tuple[int, int]],
            top_k: int | None, softmax) -> dict:
    """One head's explanation as written out."""
    best = sorted(a.windows.items(), key=lambda item: -item[1])[:top_k]
    return {
        "label": names[a.label],
        "score": round(float(softmax(a.logits[None])[0, a.label]), DIGITS),
        "logit": round(float(a.logits[a.label]), DIGITS),
        "bias": round(a.bias, DIGITS),
        "exact": a.exact,
        "method": "max-pool windows" if a.exact else f"integrated gradients ({IG_STEPS} steps)",
        "windows": [_window(start, end, value, text, spans) for (start, end), value in best],
        "token_attributions": [round(float(v), DIGITS) for v in a.tokens],
    }


def _window(start: int, end: int, value: float, text: str, spans: list[tuple[int, int]]
            ) -> dict:
    """A window of tokens ``start .. end - 1`` with the characters it covers."""
    char_start = spans[start][0] if end > start else 0
    char_end = spans[end - 1][1] if end > start else 0
    return {"start": start, "end": end, "char_start": char_start, "char_end": char_end,
            "text": text[char_start:char_end], "contribution": round(value, DIGITS)}


def render(row: dict, color: bool = True) -> str:
    """One explained text for a terminal: per head the label, the text with each token's
    background coloured by its attribution (green for, red against), and the top windows.

    Examples
    --------
    >>> row = {"text": "a good film", "tokens": [{"text": "good", "start": 2, "end": 6}],
    ...        "heads": {"s": {"label": "pos", "score": 0.9, "logit": 2.0, "bias": 0.5,
    ...                        "exact": True, "token_attributions": [1.5], "windows": [
    ...                            {"text": "good", "start": 1, "end": 2, "contribution": 1.5}]}}}
    >>> print(render(row, color=False))
    s: pos 0.900 (logit 2.000 = bias 0.500 + 1.500, exact)
      a good film
      +1.500  "good"  (tokens 1-1)
    """
    lines = []
    for head, a in row["heads"].items():
        kind = "exact" if a["exact"] else "approximate"
        rest = a["logit"] - a["bias"]
        lines.append(f"{head}: {a['label']} {a['score']:.3f} (logit {a['logit']:.3f} = bias "
                     f"{a['bias']:.3f} {'+' if rest >= 0 else '-'} {abs(rest):.3f}, {kind})")
        lines.append("  " + _coloured(row["text"], row["tokens"], a["token_attributions"],
                                      color))
        lines.extend(f"  {w['contribution']:+.3f}  \"{w['text']}\"  (tokens {w['start']}-"
                     f"{w['end'] - 1})" for w in a["windows"])
    return "\n".join(lines)


def _coloured(text: str, tokens: list[dict], values: list[float], color: bool) -> str:
    """``text`` with each token on a background as strong as its share of the largest |value|."""
    if not color:
        return text
    top = max((abs(v) for v in values), default=0.0) or 1.0
    out, at = [], 0
    for token, value in zip(tokens, values):
        strength = int(200 * min(abs(value) / top, 1.0))
        rgb = (55, 55 + strength, 55) if value >= 0 else (55 + strength, 55, 55)
        out.append(text[at:token["start"]])
        red, green, blue = rgb
        out.append(f"\x1b[48;2;{red};{green};{blue}m{text[token['start']:token['end']]}\x1b[0m")
        at = token["end"]
    return "".join(out) + text[at:]
