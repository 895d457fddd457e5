"""The documentation site: the config reference lists every key of every config section (the
keys read here from configs the code builds, not from a list), and `mkdocs build --strict`
passes where the docs extra is installed."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from conftest import ROOT
from textcnn.config import MODEL_CONFIGS, TaskConfig, from_dict, section_names
from textcnn.config_reference import markdown, page

TASK = {"t": {"dataset": "sst2"}}


def sections_of_page(text: str) -> dict[str, dict[str, list[str]]]:
    """{section: {key: [cells]}} from the page's tables."""
    sections, current = {}, None
    for line in text.splitlines():
        if heading := re.fullmatch(r"## `(\w+)`", line):
            current = sections.setdefault(heading.group(1), {})
        elif line.startswith("| `") and current is not None:
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
            current.setdefault(cells[0].strip("`"), []).append(cells)
    return sections


def expected_keys() -> dict[str, dict[str, set[str]]]:
    """{section: {key: models taking it}} from the configs the code builds and writes out."""
    built = from_dict({"tasks": TASK}).to_dict(keep_defaults=True)
    keys = {name: {f"{name}.{key}": set() for key in value}
            for name, value in built.items() if name not in ("tasks", "model")}
    keys["tasks"] = {f"tasks.<name>.{key}": set() for key in dataclasses.asdict(TaskConfig())}
    keys["model"] = {}
    for name in MODEL_CONFIGS:  # every field, those config.json leaves out at their default too
        model = from_dict({"tasks": TASK, "model": {"name": name}}).model
        for key in ["name", *dataclasses.asdict(model)]:
            keys["model"].setdefault(f"model.{key}", set()).add(name)
    return keys


def test_the_config_page_lists_every_key_of_every_section():
    on_page, expected = sections_of_page(markdown()), expected_keys()
    assert list(on_page) == section_names()  # every section, in order
    assert section_names() == ["tasks", "tokenizer", "model", "train", "teacher", "distill"]
    for section, keys in expected.items():
        assert set(on_page[section]) == set(keys), section
        for key, rows in on_page[section].items():
            assert all(len(cells) == len(rows[0]) and cells[4] for cells in rows), key  # a why
    models = {key: {m.strip() for cells in rows for m in cells[5].split(",")}
              for key, rows in on_page["model"].items()}
    assert models.pop("model.name") == {"all"}
    assert models == {k: v for k, v in expected["model"].items() if k != "model.name"}


@pytest.mark.parametrize("section, key, default", [
    ("train", "train.epochs", "`25`"), ("train", "train.threads", "`0`"),
    ("tokenizer", "tokenizer.kind", "`word`"), ("model", "model.kernel_sizes", "`[3, 4, 5]`"),
    ("distill", "distill.teachers", "`{}`"), ("tasks", "tasks.<name>.dataset", "`''`"),
])
def test_a_key_shows_its_default_and_rule(section, key, default):
    (cells,) = sections_of_page(markdown())[section][key]
    assert cells[2] == default
    built = from_dict({"tasks": TASK})
    if section == "train":
        assert cells[2] == f"`{json.dumps(getattr(built.train, key.split('.')[1]))}`"


def test_the_site_nav_names_every_page_of_docs_and_the_generated_ones():
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    pages = {next(iter(item.values())) for item in nav}
    on_disk = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert on_disk <= pages and pages - on_disk == {"index.md", "config.md", "benchmarks.md"}


def test_the_config_page_starts_with_its_title():
    assert page().startswith("# Config keys\n") and page().endswith(markdown())


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in
                            ("mkdocs", "material", "mkdocstrings_handlers")),
                    reason="the docs extra is not installed (pip install -e '.[docs]')")
def test_mkdocs_build_strict_passes(tmp_path):
    site = tmp_path / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir",
                           str(site)], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, done.stderr
    config_page = (site / "config" / "index.html").read_text(encoding="utf-8")
    for keys in expected_keys().values():
        assert all(key.replace("<", "&lt;").replace(">", "&gt;") in config_page for key in keys)
    assert 'id="textcnn.TextClassifier.predict"' in (site / "api" / "index.html").read_text()
    assert "A 30-second tour" in (site / "index.html").read_text(encoding="utf-8")
