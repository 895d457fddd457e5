"""``textcnn compare``: one conv core, text vs images, in one report folder.

Trains a text model (SST-2) and an image model (digits, or MNIST) with the same core settings,
then writes ``report.md``, ``results.json`` and PNG figures: learning curves side by side; a table
of parameters, FLOPs per example, training and inference examples/second and accuracy; the
learned first-layer filters (2D kernels as images, 1D filters as the n-grams that excite them
most); and the measured max differences of the parity checks below. A missing dataset leaves
its half out and the report says what is missing.

The parity checks are those of :mod:`textcnn.parity` (and ``tests/test_parity.py``).

Example
-------
>>> run("compare-report")  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import json
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .config import TaskConfig, from_dict
from .data import data_dir_from, load_raw
from .errors import DataError
from .experiment import fit, prepare
from .fileio import write_json, write_text
from .images import load_images
from .inference import predict_logits, set_threads
from .models import min_input_length
from .parity import TOLERANCE, parity_checks
from .training import train_batches

# The same core settings on both sides where the two can share them: the conv block, width 3
# first, 64 channels into the global max-pool, dropout 0.5, AdamW 1e-3, batch 50, max-norm 3.
TEXT_MODEL = {"name": "textcnn", "embedding_dim": 128, "kernel_sizes": [3, 4, 5],
              "channels": 64, "dropout": 0.5}
IMAGE_MODEL = {"name": "imagecnn", "blocks": [32, 64], "kernel_size": 3, "pool": 2,
               "norm": "batch", "dropout": 0.5}
SPEED_SECONDS = 3.0  # how long training speed is measured per side
REPORT_FILES = ("report.md", "results.json", "curves.png", "image_filters.png",
                "text_filters.png")
TRAIN = {"batch_size": 50, "optimizer": "adamw", "lr": 0.001, "max_norm": 3.0, "seed": 0}


# -- measurements ---------------------------------------------------------------------------------
def flops_per_example(model: nn.Module, inputs: tuple) -> int:
    """Multiply-adds x 2 of every conv and linear layer for one example, from their shapes."""
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


def train_speed(model: nn.Module, split, head: str, seconds: float | None = None) -> float:
    """Training examples/second (forward, backward, AdamW step) on a copy of ``model``."""
    model = copy.deepcopy(model).train()
    opt = torch.optim.AdamW(model.parameters(), lr=TRAIN["lr"], fused=True)  # as the Trainer
    min_len = min_input_length(model)
    batches = train_batches(split.lengths, TRAIN["batch_size"], 50, np.random.default_rng(0))
    seen, start = 0, time.perf_counter()
    for idx in batches:
        loss = nn.functional.cross_entropy(model(*split.batch(idx, min_len))[head],
                                           torch.from_numpy(split.labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        seen += len(idx)
        if time.perf_counter() - start > (seconds or SPEED_SECONDS):
            break
    return seen / (time.perf_counter() - start)


def infer_speed(model: nn.Module, split) -> float:
    """Inference examples/second of ``predict_logits`` (best of 3 passes)."""
    best = 0.0
    for _ in range(3):
        start = time.perf_counter()
        predict_logits(model, split)
        best = max(best, len(split) / (time.perf_counter() - start))
    return best


# -- the two sides --------------------------------------------------------------------------------
def _side_config(model: dict, tasks: dict, epochs: int, threads: int, **extra) -> dict:
    return {"tasks": tasks, "model": model, **extra,
            "train": {**TRAIN, "epochs": epochs, "patience": max(2, epochs // 3),
                      "threads": threads}}


def _read_history(folder: Path) -> list[dict]:
    path = folder / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _train_side(name: str, data: dict, raws: dict, out: Path, log) -> dict:
    """Train one side into ``out/<name>-model`` and measure it."""
    config = from_dict(data)
    head = next(iter(config.tasks))
    folder = out / f"{name}-model"
    start = time.perf_counter()
    clf, metrics = fit(config, raws, folder, log=log)
    seconds = time.perf_counter() - start
    prep = prepare(  # the splits the model saw (cheap: the tokenizer is reused)
        config, raws, 0, getattr(clf, "tokenizer", None))
    train, test = prep.data[head]["train"], prep.data[head].get("test")
    if name == "text":
        length = int(round(float(np.mean(train.lengths))))
        inputs = (torch.randint(2, prep.input_size, (1, length)), torch.tensor([length]))
    else:
        inputs = train.batch(np.arange(1))
    model = clf.model
    return {
        "clf": clf, "config": config, "head": head, "prep": prep, "folder": folder,
        "history": _read_history(folder), "seconds": seconds,
        "sizes": {s: len(d) for s, d in prep.data[head].items()},
        "params": sum(p.numel() for p in model.parameters()),
        "embedding_params": sum(p.numel() for n, p in model.named_parameters()
                                if n.startswith("embedding")),
        "flops": flops_per_example(model, inputs),
        "flops_at": f"{inputs[1].item()} tokens" if name == "text" else "x".join(
            map(str, inputs[0].shape[1:])),
        "train_speed": train_speed(model, train, head),
        "infer_speed": infer_speed(model, test if test is not None else train),
        "metrics": metrics[head],
    }


def load_text_side(dataset: str, data_dir, train_size: int, seed: int = 0):
    """SST-2 (or ``dataset``) from the local data dir only: ``(raws, None)`` or ``(None, why)``."""
    path = Path(dataset)
    if not path.exists():
        root = data_dir_from(data_dir)
        if root is None or not (root / dataset / "dataset.json").is_file():
            where = root / dataset if root else "no data dir (set --data-dir or $TEXTCNN_DATA_DIR)"
            return None, f"text dataset '{dataset}' not found: looked in {where}"
    try:
        raw = load_raw(TaskConfig(dataset=dataset), data_dir)
    except DataError as exc:
        return None, f"text dataset '{dataset}': {exc}"
    if "train" in raw.splits and 0 < train_size < len(raw.splits["train"]):
        rng = np.random.default_rng(seed)  # a random sample, never the first rows
        idx = np.sort(rng.choice(len(raw.splits["train"]), train_size, replace=False))
        raw.splits["train"] = raw.splits["train"].subset(idx)
    return {"sentiment": raw}, None


def load_image_side(dataset: str, data_dir):
    """Digits, MNIST or an IDX folder: ``(raws, None)`` or ``(None, why)``."""
    try:
        return {"digit": load_images(TaskConfig(dataset=dataset), data_dir)}, None
    except DataError as exc:
        return None, f"image dataset '{dataset}': {exc}"


# -- filters --------------------------------------------------------------------------------------
def first_conv(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d)))


@torch.no_grad()
def top_ngrams(side: dict, n_filters: int = 8, per_filter: int = 3) -> list[dict]:
    """For the narrowest 1D filters that weigh most in the head: the n-grams of the training
    texts that activate them most (conv output before the activation, padding masked)."""
    model, clf, head = side["clf"].model.eval(), side["clf"], side["head"]
    train = side["prep"].data[head]["train"]
    branch = int(np.argmin(model.core.kernel_sizes))  # the narrowest width
    conv = model.core.blocks[branch].conv
    k = model.core.kernel_sizes[branch]
    channels = conv.out_channels
    span = slice(branch * channels, (branch + 1) * channels)  # the branch's pooled features
    weights = model.heads.layers[head].weight[:, span]  # (classes, channels)
    names = clf.heads[head]
    per_class = max(1, n_filters // len(names))
    favoured = weights.argmax(0)  # (channels,) the class each filter votes for most
    strength = weights.max(0).values - weights.mean(0)
    chosen = []
    for c in range(len(names)):  # the strongest filters of each class, in turn
        mine = [f for f in strength.argsort(descending=True).tolist() if favoured[f] == c]
        chosen += mine[:per_class]
    rows = []
    sample = np.random.default_rng(0).permutation(len(train))[:3000]
    ids, lengths = train.batch(sample, k)
    act = conv(model.embedding(ids).transpose(1, 2))  # (n, channels, positions)
    valid = torch.arange(act.shape[2])[None, :] < (lengths - k + 1)[:, None]
    act = act.masked_fill(~valid[:, None, :], float("-inf"))
    for f in chosen[:n_filters]:
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


# -- figures --------------------------------------------------------------------------------------
def _pyplot():
    from .metrics import _pyplot as get

    return get()


def plot_curves_side_by_side(sides: dict, path: Path, dpi: int = 100) -> bool:
    plt = _pyplot()
    if plt is None:
        return False
    fig, axes = plt.subplots(1, len(sides), figsize=(4.6 * len(sides), 3.3), squeeze=False)
    for ax, (name, side) in zip(axes[0], sides.items()):
        hist = side["history"]
        epochs = [r["epoch"] for r in hist]
        head = side["head"]
        ax.plot(epochs, [r["train_loss"] for r in hist], "o-", label="train loss")
        ax.plot(epochs, [r["validation"][head]["loss"] for r in hist], "s-",
                label="validation loss")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.set(xlabel="epoch", ylabel="cross-entropy",
               title=f"{name}: {side['dataset']} ({side['config'].model.name})")
        acc = ax.twinx()
        acc.plot(epochs, [r["validation"][head]["accuracy"] for r in hist], "^-", color="C2",
                 label="validation accuracy")
        acc.set(ylabel="accuracy", ylim=(0, 1.02))
        lines = ax.get_lines() + acc.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], fontsize=8, loc="center right")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return True


def plot_image_filters(model: nn.Module, path: Path, n: int = 32, dpi: int = 100) -> bool:
    """The first block's 2D kernels (input channel 0), one tile each, in a single image."""
    plt = _pyplot()
    if plt is None:
        return False
    w = first_conv(model).weight.detach()[:n, 0].numpy()  # (n, kh, kw)
    cols = min(8, len(w))
    rows = -(-len(w) // cols)
    kh, kw = w.shape[1:]
    mosaic = np.full((rows * (kh + 1) - 1, cols * (kw + 1) - 1), np.nan)  # NaN: gaps
    for i, kernel in enumerate(w):
        r, c = divmod(i, cols)
        mosaic[r * (kh + 1):r * (kh + 1) + kh, c * (kw + 1):c * (kw + 1) + kw] = kernel
    lim = float(np.abs(w).max())
    fig, ax = plt.subplots(figsize=(0.75 * cols + 0.5, 0.75 * rows + 0.5))
    ax.imshow(mosaic, cmap="RdBu_r", vmin=-lim, vmax=lim)
    ax.axis("off")
    ax.set_title(f"first-layer {kh}x{kw} kernels (red +, blue -)", fontsize=9)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return True


def plot_text_filters(rows: list[dict], path: Path, dpi: int = 100) -> bool:
    plt = _pyplot()
    if plt is None or not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.42 * len(rows) + 0.7))
    ax.axis("off")
    cells = [[f"#{r['filter']} (→ {r['favours']})", "  |  ".join(g for g, _ in r["ngrams"])]
             for r in rows]
    table = ax.table(cells, colLabels=[f"1D filter (width {rows[0]['width']})",
                                       "n-grams that activate it most"],
                     loc="center", cellLoc="left", colWidths=[0.25, 0.75])
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    table.scale(1, 1.3)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return True


# -- the report -----------------------------------------------------------------------------------
def _fmt(n: float) -> str:
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n:.0f}"


def _settings(side: dict) -> str:
    m = side["config"].to_dict()["model"]
    return ", ".join(f"{k} {v}" for k, v in m.items() if k not in ("residual", "separable"))


def write_report(out: Path, sides: dict, missing: list[str], parity: dict, figures: dict,
                 filters: list[dict], threads: int, command: str, seconds: float) -> Path:
    lines = ["# Image vs text: one conv core", "",
             f"`{command}`: {seconds:.0f} s on {platform.machine()} with torch "
             f"{torch.__version__}, {threads} thread(s). Both models are built from "
             "`textcnn.core.ConvBlock` (text: 1D, images: 2D), trained by the same Trainer and "
             "scored by the same metrics; each side's model folder is next to this file.", ""]
    if missing:
        lines += ["## Missing", ""] + [f"- **not run**: {m}" for m in missing] + [""]
    if sides:
        shared = ", ".join(f"{k} {v}" for k, v in TRAIN.items())
        lines += ["## Results", "", f"Shared training settings: {shared}.", "",
                  "| | " + " | ".join(f"{n} ({s['dataset']})" for n, s in sides.items()) + " |",
                  "|---|" + "---|" * len(sides)]
        rows = [
            ("model settings", lambda s: _settings(s)),
            ("train / validation / test", lambda s: " / ".join(
                str(s["sizes"].get(k, "-")) for k in ("train", "validation", "test"))),
            ("parameters (of which embedding)", lambda s: f"{s['params']:,} "
                                                          f"({s['embedding_params']:,})"),
            ("FLOPs per example (conv + linear)", lambda s: f"{_fmt(s['flops'])}"
                                                            f" at {s['flops_at']}"),
            ("training examples/s", lambda s: f"{s['train_speed']:,.0f}"),
            ("inference examples/s", lambda s: f"{s['infer_speed']:,.0f}"),
            ("epochs (best)", lambda s: f"{len(s['history'])} ({max(s['history'], key=lambda r: r['validation_accuracy'])['epoch']})"),  # noqa: E501
            ("training seconds (fit, with validation)", lambda s: f"{s['seconds']:.1f}"),
            ("validation accuracy", lambda s: f"{s['metrics']['validation']['accuracy']:.4f}"),
            ("test accuracy", lambda s: f"{s['metrics'].get('test', {}).get('accuracy', 0):.4f}"),
        ]
        for label, cell in rows:
            lines.append(f"| {label} | " + " | ".join(cell(s) for s in sides.values()) + " |")
        lines += ["", "FLOPs count 2 x multiply-adds of every conv and linear layer, from their "
                  "shapes (text: one sentence of the mean training length; the embedding lookup "
                  "is free). Speeds: training = forward + backward + AdamW step in batches of "
                  f"{TRAIN['batch_size']} (length-bucketed for text); inference = "
                  "`predict_logits` on the test split, batches of 500.", ""]
    if figures.get("curves"):
        lines += ["## Learning curves", "", "![learning curves](curves.png)", ""]
    if figures.get("image_filters") or filters:
        lines += ["## First-layer filters", ""]
    if figures.get("image_filters"):
        lines += ["2D kernels of the image model's first block:", "",
                  "![image filters](image_filters.png)", ""]
    if filters:
        also = " (also drawn in `text_filters.png`)" if figures.get("text_filters") else ""
        lines += [f"1D filters of width {filters[0]['width']} that weigh most in the text head, "
                  f"each with the training n-grams that activate it most{also}:", "",
                  "| filter | favours | top n-grams (activation) |", "|---|---|---|"]
        for r in filters:
            grams = ", ".join(f"`{g}` ({a:.2f})" for g, a in r["ngrams"])
            lines.append(f"| {r['filter']} | {r['favours']} | {grams} |")
        lines.append("")
    lines += ["## Parity checks", "", f"Max absolute difference, float32, random weights and "
              f"inputs (pass: < {TOLERANCE:g}); the same checks run in `tests/test_parity.py`.",
              "", "| check | max difference | |", "|---|---|---|"]
    for name, diff in parity.items():
        lines.append(f"| {name} | {diff:.2e} | {'pass' if diff < TOLERANCE else 'FAIL'} |")
    lines.append("")
    return write_text(out / "report.md", "\n".join(lines))


def _clear(out: Path) -> None:
    """Remove what an earlier run wrote here, so a missing half leaves nothing stale."""
    out.mkdir(parents=True, exist_ok=True)
    for name in REPORT_FILES:
        (out / name).unlink(missing_ok=True)
    for name in ("text-model", "image-model"):
        if (out / name / "config.json").is_file():
            shutil.rmtree(out / name)


def run(output: str | Path = "compare-report", image_dataset: str = "digits",
        text_dataset: str = "sst2", data_dir=None, threads: int = 0, text_train_size: int = 0,
        text_epochs: int = 4, image_epochs: int = 12, log=None) -> dict:
    """Train both sides and write the report folder; returns the numbers of ``results.json``."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    start = time.perf_counter()
    out = Path(output)
    _clear(out)
    threads = set_threads(threads)
    command = "textcnn compare " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["compare"] \
        else f"textcnn.compare.run(output={str(output)!r})"
    sides, missing = {}, []
    text_raws, why = load_text_side(text_dataset, data_dir, text_train_size)
    image_raws, why_image = load_image_side(image_dataset, data_dir)
    missing += [w for w in (why, why_image) if w]
    if text_raws is not None:
        log(f"text: {text_dataset}")
        data = _side_config(TEXT_MODEL, {"sentiment": {"dataset": text_dataset}}, text_epochs,
                            threads, tokenizer={"kind": "word", "max_length": 64})
        sides["text"] = {**_train_side("text", data, text_raws, out, log), "dataset": text_dataset}
    if image_raws is not None:
        log(f"image: {image_dataset}")
        data = _side_config(IMAGE_MODEL, {"digit": {"dataset": image_dataset}}, image_epochs,
                            threads)
        sides["image"] = {**_train_side("image", data, image_raws, out, log),
                          "dataset": image_dataset}
    log("parity checks")
    parity = parity_checks()
    figures = {"curves": sides and plot_curves_side_by_side(sides, out / "curves.png")}
    if "image" in sides:
        figures["image_filters"] = plot_image_filters(sides["image"]["clf"].model,
                                                      out / "image_filters.png")
    filters = top_ngrams(sides["text"]) if "text" in sides else []
    figures["text_filters"] = plot_text_filters(filters, out / "text_filters.png")
    seconds = time.perf_counter() - start
    write_report(out, sides, missing, parity, figures, filters, threads, command, seconds)
    keep = ("dataset", "sizes", "params", "embedding_params", "flops", "train_speed",
            "infer_speed", "seconds", "metrics")
    results = {"threads": threads, "missing": missing, "parity": parity,
               "sides": {n: {k: s[k] for k in keep} for n, s in sides.items()},
               "filters": filters}
    write_json(out / "results.json", results)
    log(f"report: {out / 'report.md'}")
    if not sides:
        raise DataError("compare: no dataset found (" + "; ".join(missing) + ")")
    return results


def main(args) -> int:
    """The ``textcnn compare`` verb."""
    start = time.perf_counter()
    run(args.output, args.image_dataset, args.text_dataset, args.data_dir, args.threads,
        args.text_train_size, args.text_epochs, args.image_epochs)
    print(f"compare: {time.perf_counter() - start:.0f}s; report in {args.output}/report.md",
          file=sys.stderr)
    return 0
