"""MkDocs hooks (mkdocs.yml's ``hooks:``): the pages built from the repository's own files.

``index.md`` is the README with its links turned into site links, ``config.md`` is generated
from the config fields (:mod:`textcnn.config_reference`), so it lists every key with its
default, rule and why, and ``benchmarks.md`` is BENCHMARKS.md as it stands.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.structure.files import File

from textcnn.config_reference import page

ROOT = Path(__file__).resolve().parent.parent


def site_home(readme: str) -> str:
    """The README as the site's home page: ``docs/X.md`` links become ``X.md``."""
    return (readme.replace("](docs/", "](")
            .replace("](BENCHMARKS.md)", "](benchmarks.md)")
            .replace("- Config keys:", "- [Config keys](config.md):"))


def on_files(files, config):
    """Add the generated pages to the site's files."""
    read = lambda name: (ROOT / name).read_text(encoding="utf-8")  # noqa: E731
    for name, content in (("index.md", site_home(read("README.md"))), ("config.md", page()),
                          ("benchmarks.md", read("BENCHMARKS.md"))):
        files.append(File.generated(config, name, content=content))
    return files
