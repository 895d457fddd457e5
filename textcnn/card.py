"""The model card: a folder's ``README.md`` in the Hugging Face model-card format.

YAML front matter (``library_name: textcnn``, tags, datasets, metrics and a ``model-index``
holding every score of ``metrics.json``: one result per head and split), then the data, the
config in short, the metrics table per head and split (and when the best epoch ended), the
fold table of a ``cv`` run, the command that trained it, intended use and limits, and the
textcnn version. Everything comes from
the folder's own files (``config.json`` or ``cv_config.json``, ``metrics.json``,
``cv_metrics.json``), so ``textcnn card MODEL_DIR`` can rewrite a card at any time; the training
command is kept from the card being replaced when none is given. A field those files lack
(``best_epoch``, say) leaves out the line that would show it.

What the files hold is shown, never run: label and head names are escaped for Markdown and HTML
(``<script>`` stays text, a newline is written ``\\n`` and cannot start a heading), config values
and dataset names are code spans, and the command sits in a code fence longer than any run of
backticks inside it.

Example
-------
>>> path = write_card(model_dir, command="textcnn train configs/kim2014/sst2.yaml")
>>> front = read_front_matter(path)
>>> metrics = json.loads((model_dir / "metrics.json").read_text())
>>> front["library_name"], card_metrics(front) == {"sentiment": metrics["sentiment"]}
('textcnn', True)
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from pathlib import Path

import yaml

from ._version import __version__
from .errors import ModelFolderError
from .fileio import write_text

CARD = "README.md"
CV_CONFIG = "cv_config.json"  # what `textcnn cv` ran (a cv folder has no config.json)
# metrics.json key -> Hugging Face metric type (and its args)
METRIC_TYPES = {"accuracy": ("accuracy", None), "macro_f1": ("f1", {"average": "macro"}),
                "micro_f1": ("f1", {"average": "micro"}), "loss": ("loss", None)}
TRAIN_KEYS = ("epochs", "min_steps", "batch_size", "optimizer", "lr", "schedule", "seed",
              "patience", "select_metric", "class_weight")
# metrics.json "stopped" -> what ended the run, as the card says it
STOPPED = {"epochs": "epoch cap (`train.epochs`, or more for `train.min_steps`)",
           "patience": "patience (`train.patience` epochs without a better validation score)",
           "time budget": "time budget (`train.time_budget`)"}
_COMMAND = re.compile(r"## How it was trained\n\n(`{3,})bash\n(.*?)\n\1\n", re.S)
_MARKUP = re.compile(r"([\\`*_\[\]|~#])")  # Markdown's inline syntax, escaped with a backslash


class _Markdown(str):
    """Text already written as Markdown (a table cell that is not escaped again)."""


def _one_line(text: str) -> str:
    """``text`` with each control or line-separator character as its escape (``\\n``)."""
    return "".join(json.dumps(ch)[1:-1] if unicodedata.category(ch) in ("Cc", "Zl", "Zp")
                   else ch for ch in text)


def _text(value) -> _Markdown:
    """``value`` as Markdown that shows it literally, on one line: HTML and Markdown syntax
    escaped (``<script>`` is text, ``|`` cannot end a table cell, a newline shows as ``\\n``)."""
    return _Markdown(_MARKUP.sub(r"\\\1", _one_line(html.escape(str(value), quote=False))))


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall("`+", text)), default=0)


def _fence(text: str) -> str:
    """A code fence for ``text``: a run of backticks longer than any inside it (at least 3)."""
    return "`" * max(3, _longest_backticks(text) + 1)


def _code(value, in_table: bool = False) -> _Markdown:
    """``value`` as a code span on one line (shown literally, HTML included); in a table, its
    ``|`` is escaped (a table splits cells before it reads code spans)."""
    text = _one_line(str(value))
    ticks = "`" * (_longest_backticks(text) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    if in_table:
        text = text.replace("|", "\\|")
    return _Markdown(f"{ticks}{pad}{text}{pad}{ticks}")


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
    except ValueError as exc:
        raise ModelFolderError(f"corrupt {path}: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise ModelFolderError(f"corrupt {path}: expected a JSON object, got "
                               f"{type(data).__name__}")
    return data


def _dicts(data: dict) -> dict:
    """The entries of ``data`` whose values are JSON objects (a malformed entry is left out)."""
    return {k: v for k, v in data.items() if isinstance(v, dict)}


def folder_facts(folder: str | Path) -> dict:
    """What a card says, read from ``folder``: config, heads, kind, version, metrics, cv."""
    folder = Path(folder)
    config = _read_json(folder / "config.json") or _read_json(folder / CV_CONFIG)
    if config is None:
        raise ModelFolderError(f"{folder} has neither config.json (a model folder) nor "
                               f"{CV_CONFIG} (a `textcnn cv` folder): nothing to describe")
    kind = config.get("kind") or ("image" if "image" in config else "text")
    metrics = _read_json(folder / "metrics.json") or {}
    heads = config.get("heads")
    return {"name": folder.resolve().name, "config": config, "kind": kind,
            "heads": heads if isinstance(heads, dict) else {h: [] for h in _dicts(config).get(
                "tasks", {})},
            "version": config.get("textcnn_version", __version__),
            # heads map to {split: scores}; the run's timing (best_epoch, seconds...) are numbers
            "metrics": {k: _dicts(v) for k, v in _dicts(metrics).items()
                        if k not in ("teacher", "candidates")},
            "teacher": _dicts(_dicts(metrics).get("teacher", {})),  # distill.teacher's runs
            "candidates": _dicts(metrics).get("candidates", {}),  # the default recipe's choice
            "timing": {k: v for k, v in metrics.items() if _is_number(v)},
            # the metric that chose the best epoch, what stopped the run (strings)
            "selection": {k: v for k, v in metrics.items()
                          if k in ("select_metric", "stopped") and isinstance(v, str)},
            "cv": _dicts(_read_json(folder / "cv_metrics.json") or {})}


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _hub_name(dataset: str) -> str | None:
    """The Hub id a task's dataset stands for, or None for a local path."""
    from .data import KNOWN, looks_like_hub_id

    if dataset in KNOWN:
        return KNOWN[dataset].hub_id
    if looks_like_hub_id(dataset) and not Path(dataset).expanduser().exists():
        return dataset
    return None


def _metric_entries(scores: dict, suffix: str = "") -> list[dict]:
    entries = []
    for key, value in scores.items():
        if not _is_number(value):
            continue
        kind, args = METRIC_TYPES.get(key, (key, None))
        entry = {"type": kind, "value": value, "name": key + suffix}
        entries.append({**entry, "args": dict(args)} if args else entry)
    return entries


def _result(facts: dict, head: str, split: str, metrics: list[dict]) -> dict:
    dataset = facts["config"].get("tasks", {}).get(head, {}).get("dataset", "")
    task = "image-classification" if facts["kind"] == "image" else "text-classification"
    return {"task": {"type": task, "name": head},
            "dataset": {"name": dataset, "type": _hub_name(dataset) or "local", "split": split},
            "metrics": metrics}


def front_matter(facts: dict) -> dict:
    """The card's YAML front matter: library, tags, datasets, metrics and the model-index.

    The model-index holds one result per head and split of ``metrics.json`` (task ``name`` is
    the head, dataset ``split`` the split, each metric's ``name`` its ``metrics.json`` key) and,
    for a cv run, one per head with split ``cv`` holding the fold means.
    """
    results = [_result(facts, head, split, _metric_entries(scores))
               for head, splits in facts["metrics"].items() for split, scores in splits.items()]
    results += [_result(facts, head, "cv", _metric_entries(_dicts(cv).get("mean", {}), "_mean"))
                for head, cv in facts["cv"].items()]
    tasks = facts["config"].get("tasks", {})
    datasets = sorted({n for t in tasks.values() if (n := _hub_name(t.get("dataset", "")))})
    model = facts["config"].get("model", {}).get("name", "textcnn")
    kind_tags = (["image-classification"] if facts["kind"] == "image"
                 else ["text-classification"])
    tags = list(dict.fromkeys(["textcnn", model, "cnn", *kind_tags]))
    front = {"library_name": "textcnn", "tags": tags,
             "pipeline_tag": kind_tags[0]}
    if datasets:
        front["datasets"] = datasets
    front["metrics"] = sorted({m["type"] for r in results for m in r["metrics"]})
    front["model-index"] = [{"name": facts["name"], "results": results}]
    return front


class _NoAliases(yaml.SafeDumper):
    """Writes repeated values out in full (no ``&id001`` anchors in a card)."""

    def ignore_aliases(self, data):
        return True


def _table(header: list[str], rows: list[list]) -> str:
    def cell(v):  # a number, Markdown, or text (escaped)
        return f"{v:.4f}" if isinstance(v, float) else v if isinstance(v, _Markdown) else (
            str(v) if _is_number(v) else _text(v))

    lines = ["| " + " | ".join(map(cell, header)) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows])


def _short(section: dict, keys=None) -> str:
    keys = keys or [k for k in section if k != "name"]
    return _code(", ".join(f"{k}={json.dumps(section[k])}" for k in keys if k in section))


def _data_section(facts: dict) -> str:
    tasks = facts["config"].get("tasks", {})
    rows = [[head, _code(_dicts(tasks).get(head, {}).get("dataset", "?"), in_table=True),
             _Markdown(", ".join(map(_text, names if isinstance(names, list) else [names])))
             or _Markdown("(see `cv_metrics.json`)")] for head, names in facts["heads"].items()]
    return ("## Data\n\nEach head learns one task: its dataset (a known name, a Hugging Face Hub "
            "id or a local path, as given in the config) and its labels.\n\n"
            + _table(["head", "dataset", "labels"], rows))


def _config_section(facts: dict) -> str:
    config = _dicts(facts["config"])
    lines = [f"- model {_code(config.get('model', {}).get('name', '?'))}: "
             + _short(config.get("model", {}))]
    if "tokenizer" in config:
        lines.append("- tokenizer: " + _short(config["tokenizer"]))
    lines.append("- train: " + _short(config.get("train", {}), TRAIN_KEYS))
    where = "config.json" if "heads" in config else CV_CONFIG
    return "## Config in short\n\n" + "\n".join(lines) + f"\n\nThe full config is `{where}`."


def _metrics_section(facts: dict) -> str:
    if not facts["metrics"]:
        return ""
    keys = list(dict.fromkeys(k for splits in facts["metrics"].values()
                              for scores in splits.values() for k in scores))
    rows = [[head, split, *[scores.get(k, "") for k in keys]]
            for head, splits in facts["metrics"].items() for split, scores in splits.items()]
    train = _dicts(facts["config"]).get("train", {})
    metric = facts["selection"].get("select_metric") or train.get("select_metric", "accuracy")
    return (f"## Results\n\nThe best epoch (by validation {_code(metric)}, "
            "`train.select_metric`) scored on each split (`metrics.json`; macro_f1 is the "
            "unweighted mean of per-label F1):\n\n" + _table(["head", "split", *keys], rows)
            + _when(facts["timing"], facts["selection"].get("stopped"),
                    train.get("class_weight") == "balanced"))


def _when(t: dict, stopped: str | None = None, balanced: bool = False) -> str:
    """The sentences on when the best epoch ended and what stopped the run, from what
    ``metrics.json`` holds of it, and on the class weights (``balanced``)."""
    weighted = (" Each class's training loss was weighted n_rows / (n_classes x its rows) "
                "(`train.class_weight: balanced`)." if balanced else "")
    if "best_epoch" not in t:
        return "\n\n" + weighted.lstrip() if weighted else ""
    of = f" of {t['epochs']}" if "epochs" in t else ""
    seconds = (f", {t['seconds_to_best']:.1f} s into a {t['seconds']:.1f} s run"
               if "seconds_to_best" in t and "seconds" in t else "")
    stop = f" The run stopped at its {STOPPED.get(stopped) or _code(stopped)}." if stopped else ""
    return f"\n\nEpoch {t['best_epoch']}{of} was the best{seconds}.{stop}{weighted}"


def _teacher_section(facts: dict) -> str:
    """The teachers the student learned from (``metrics.json``'s ``teacher``), if any."""
    rows = [[head, _code(str(t.get("teacher", "?")), in_table=True), t.get("epochs", ""),
             t.get("best_epoch", ""), _dicts(t).get("validation", {}).get("accuracy", ""),
             t.get("seconds", "")] for head, t in facts.get("teacher", {}).items()]
    return ("## Teacher\n\nThe student learned from the labels and the soft targets of a "
            "transformer fine-tuned on the same training rows (`distill.teacher`; it scored "
            "them, augmented copies of them and any `distill.unlabeled` texts). Its score on "
            "the validation rows, which neither model trained on:\n\n"
            + _table(["head", "teacher", "epochs", "best epoch", "validation accuracy",
                      "seconds"], rows)) if rows else ""


def _candidates_section(facts: dict) -> str:
    """The candidate recipes the default recipe compared (``metrics.json``'s ``candidates``)."""
    entry = facts.get("candidates") or {}
    table = [r for r in entry.get("candidates", []) if isinstance(r, dict)]
    if not table:
        return ""
    def settings(row: dict) -> str:
        given = row.get("settings")
        return " ".join(f"{k}={json.dumps(v)}" for k, v in given.items()) \
            if isinstance(given, dict) else ""

    rows = [[_text(str(r.get("name", "?"))), _code(settings(r) or "-", in_table=True),
             ", ".join(f"{v:.4f}" for v in r.get("validation", []) if _is_number(v))
             or _text(str(r.get("skipped", ""))), r.get("mean", ""),
             "kept" if r.get("name") == entry.get("chosen") else ""] for r in table]
    return (f"## Candidates\n\nThe default recipe trained these candidates and kept "
            f"{_text(str(entry.get('chosen', '?')))}: {_text(str(entry.get('why', '')))}. Each "
            "was scored on validation rows carved from the training rows (never the test "
            "split; the mean weighs each carve by its rows):\n\n"
            + _table(["candidate", "settings", f"validation {entry.get('metric', '')}", "mean",
                      ""], rows))


def _cv_section(facts: dict) -> str:
    parts = []
    for head, cv in facts["cv"].items():
        folds = [f for f in cv.get("folds", []) if isinstance(f, dict)]
        keys = [k for k in (folds[0] if folds else {}) if k != "loss"]
        seconds = cv.get("seconds", [])
        rows = [[i + 1, *[f.get(k, "") for k in keys],
                 seconds[i] if i < len(seconds) else ""] for i, f in enumerate(folds)]
        mean, std = _dicts(cv).get("mean", {}), _dicts(cv).get("std", {})
        if all(_is_number(mean.get(k)) and _is_number(std.get(k)) for k in keys):
            rows.append(["mean ± std", *[f"{mean[k]:.4f} ± {std[k]:.4f}" for k in keys], ""])
        parts.append(f"### {_text(head)}: {len(folds)} folds (test fold held out, "
                     "`cv_metrics.json`)\n\n" + _table(["fold", *keys, "seconds"], rows))
    return "## Cross-validation\n\n" + "\n\n".join(parts) if parts else ""


def _usage_section(facts: dict) -> str:
    if facts["kind"] == "image":
        call = "clf.predict(pixels)  # raw pixels, shaped as config.json's image entry"
        cli = "textcnn evaluate MODEL_DIR --dataset digits"
    else:
        call = 'clf.predict(["a gorgeous, witty film"], top_k=2)'
        cli = 'textcnn predict MODEL_DIR "a gorgeous, witty film"\ntextcnn serve MODEL_DIR'
    return (f"## Use it\n\n```python\nimport textcnn\n\nclf = textcnn.load(\"MODEL_DIR\")\n"
            f"{call}\n```\n\n```bash\n{cli}\n```")


def _limits_section(facts: dict) -> str:
    text = facts["kind"] == "text"
    lines = [
        "- Intended use: classifying inputs like the training data into the labels above; a "
        "baseline or a fast, inspectable model to serve on a CPU.",
        "- It knows only these labels and always picks one of them; inputs from other domains "
        "get confident answers that the metrics above do not vouch for.",
        "- The metrics are from one run with one seed; expect about a point of spread across "
        "seeds.",
    ]
    tokenizer = _dicts(facts["config"]).get("tokenizer", {})
    if text:
        lines.append(f"- Texts past {_text(tokenizer.get('max_length'))} tokens are truncated.")
    if tokenizer.get("kind") == "word":
        lines.append("- The word tokenizer cuts at spaces and punctuation and splits English "
                     "clitics (do + n't): it suits English; languages written without spaces "
                     "between words need the char or a subword tokenizer.")
    lines.append("- Not for decisions about people without human review: it inherits the "
                 "biases of its training data.")
    return "## Intended use and limits\n\n" + "\n".join(lines)


def model_card(folder: str | Path, command: str | None = None) -> str:
    """The text of ``folder``'s card (see the module docstring).

    Parameters
    ----------
    folder : str or Path
        A model folder, or the output folder of ``textcnn cv``.
    command : str, optional
        The command that trained it (default: the one in the folder's current card, if any).
    """
    facts = folder_facts(folder)
    if command is None:
        old = Path(folder) / CARD
        found = _COMMAND.search(old.read_text(encoding="utf-8")) if old.is_file() else None
        command = found.group(2) if found else "(not recorded: trained through the Python API)"
    model = _dicts(facts["config"]).get("model", {}).get("name", "textcnn")
    heads = ", ".join(map(_text, facts["heads"])) or "?"
    version = _text(facts["version"])
    intro = (f"# {_text(facts['name'])}\n\nA {_code(model)} {_text(facts['kind'])} classifier "
             f"trained with textcnn {version}; heads: {heads}.")
    fence = _fence(command)
    sections = [intro, _data_section(facts), _config_section(facts), _metrics_section(facts),
                _teacher_section(facts), _candidates_section(facts), _cv_section(facts),
                f"## How it was trained\n\n{fence}bash\n{command}\n{fence}",
                _usage_section(facts), _limits_section(facts),
                f"## Versions\n\ntextcnn {version} wrote this folder; textcnn "
                f"{__version__} wrote this card (`textcnn card` rewrites it)."]
    front = yaml.dump(front_matter(facts), Dumper=_NoAliases, sort_keys=False,
                      allow_unicode=True)
    return f"---\n{front}---\n\n" + "\n\n".join(s for s in sections if s) + "\n"


def write_card(folder: str | Path, command: str | None = None) -> Path:
    """Write ``folder/README.md`` (atomically) and return its path; see :func:`model_card`."""
    return write_text(Path(folder) / CARD, model_card(folder, command))


def read_front_matter(card: str | Path) -> dict:
    """The YAML front matter of a card file (a ``README.md``) as data."""
    text = Path(card).read_text(encoding="utf-8")
    match = re.match(r"---\n(.*?\n)---\n", text, re.S)
    if match is None:
        raise ModelFolderError(f"{card} has no YAML front matter")
    return yaml.safe_load(match.group(1))


def card_metrics(front: dict) -> dict:
    """``{head: {split: {metric: value}}}`` from a card's model-index (cv means left out): the
    shape of ``metrics.json``."""
    out: dict = {}
    for result in front["model-index"][0]["results"]:
        split = result["dataset"]["split"]
        if split != "cv":
            out.setdefault(result["task"]["name"], {})[split] = {
                m["name"]: m["value"] for m in result["metrics"]}
    return out
