"""The config reference: every key of every config section, with its type, default, rule and
why, read from the dataclass fields themselves (:func:`textcnn.fields.param`), so the
documentation site's "Config keys" page cannot drift from the code.

Example
-------
>>> rows = {row.key: row for row in reference_rows()}
>>> rows["train.epochs"].default, rows["train.epochs"].rule
('25', 'must be > 0')
>>> rows["model.depth"].models, rows["tasks.<name>.dataset"].kind
(('dpcnn',), 'str')
>>> "| `train.threads` |" in markdown()
True
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any

from .config import MODEL_CONFIGS, SECTIONS, Config, section_names


@dataclass(frozen=True)
class KeyRow:
    """One config key: its dotted key, type, default, rule, why, and (``model.*``) the
    ``model.name`` values that take it."""

    key: str
    kind: str
    default: str
    rule: str
    why: str
    models: tuple[str, ...] = ()


def _type_name(tp: Any) -> str:
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    return str(tp).replace("typing.", "")


def _default(f: dataclasses.Field) -> str:
    value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return f"'{value}'" if value == "" else value if isinstance(value, str) else json.dumps(value)


def _rows_of(cls: type, prefix: str) -> list[KeyRow]:
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rule = f.metadata.get("check")
        rows.append(KeyRow(f"{prefix}.{f.name}", _type_name(hints[f.name]), _default(f),
                           f"must {rule.must}" if rule else "", f.metadata.get("why", "")))
    return rows


def _model_rows() -> list[KeyRow]:
    """``model.name`` first, then each model key with the models that take it (a key whose
    default or why differs between models gets a row per variant)."""
    names = tuple(MODEL_CONFIGS)
    rows: dict[tuple, KeyRow] = {("model.name",): KeyRow(
        "model.name", "str", names[0], f"must be one of {names}",
        "the architecture; each takes only its own model keys")}
    for name, cls in MODEL_CONFIGS.items():
        for row in _rows_of(cls, "model"):
            seen = rows.get(same := (row.key, row.kind, row.default, row.rule, row.why))
            rows[same] = dataclasses.replace(seen or row, models=(seen or row).models + (name,))
    return list(rows.values())


def sections() -> list[tuple[str, list[KeyRow]]]:
    """Each top-level section of :class:`textcnn.config.Config`, in order, with its keys
    (``tasks`` holds one entry per task, so its keys read ``tasks.<name>.KEY``)."""
    hints = typing.get_type_hints(Config)
    out = []
    for name in section_names():
        tp = SECTIONS[name].cls if name in SECTIONS else hints[name]  # a registered section's
        if typing.get_origin(tp) is dict:  # tasks: {name: TaskConfig}
            out.append((name, _rows_of(typing.get_args(tp)[1], f"{name}.<name>")))
        elif name == "model":  # one settings class per model.name
            out.append((name, _model_rows()))
        else:
            out.append((name, _rows_of(tp, name)))
    return out


def reference_rows() -> list[KeyRow]:
    """Every key of every section, in the page's order."""
    return [row for _, rows in sections() for row in rows]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown() -> str:
    """The reference as Markdown: one table per section (key, type, default, rule, why)."""
    lines = []
    for section, rows in sections():
        lines += [f"## `{section}`", ""]
        models = section == "model"
        head = "| key | type | default | rule | why |" + (" models |" if models else "")
        lines += [head, "|---" * (6 if models else 5) + "|"]
        for row in rows:
            cells = [f"`{row.key}`", f"`{row.kind}`", f"`{row.default}`", row.rule, row.why]
            if models:
                cells.append(", ".join(row.models) or "all")
            lines.append("| " + " | ".join(_cell(cell) for cell in cells) + " |")
        lines.append("")
    return "\n".join(lines)


_INTRO = """\
# Config keys

A config is YAML with the sections below (`textcnn train CONFIG.yaml`), or the default recipe
(`textcnn train --dataset NAME`, `textcnn/recipes/default.yaml`) with `--set KEY=VALUE`
overrides. Unknown keys, keys of another model, wrong types and values that break a key's rule
fail naming the dotted key (exit code 2). A key left out takes the default shown here; the
default recipe sets its own values for some of them.

This page is generated from the config's fields (`textcnn.config_reference`), so it lists every
key the code reads, with the reason it exists.
"""


def page() -> str:
    """The whole "Config keys" page: a short introduction, then :func:`markdown`."""
    return _INTRO + "\n" + markdown()
