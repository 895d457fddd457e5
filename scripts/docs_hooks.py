"""MkDocs hooks (mkdocs.yml's ``hooks:``): the pages built from the repository's own files.

``config.md`` is generated from the config fields (:mod:`textcnn.config_reference`), so it lists
every key with its default, rule and why; ``benchmarks.md`` is BENCHMARKS.md as it stands.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

from textcnn.config_reference import page

ROOT = Path(__file__).resolve().parent.parent


def on_files(files, config):
    """Add the generated pages to the site's files."""
    files.append(File.generated(config, "config.md", content=page()))
    benchmarks = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
    files.append(File.generated(config, "benchmarks.md", content=benchmarks))
    return files
