"""The shape of the package: modules that each say their one job, and a documented public API.

A module is as long as its one idea needs: structure is judged by the direction of imports,
not by line counts."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import textcnn

PACKAGE = Path(textcnn.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))


def _ids(paths):
    return [str(p.relative_to(PACKAGE)) for p in paths]


@pytest.mark.parametrize("path", MODULES, ids=_ids(MODULES))
def test_every_module_says_its_job(path):
    source = path.read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source))
    assert doc and len(doc.split()) >= 4, f"{path.name} needs a docstring saying its one job"


def test_text_and_image_differ_only_in_the_modality_layer():
    for path in MODULES:
        if path.name != "modality.py":
            assert "is_image" not in path.read_text(encoding="utf-8"), path


@pytest.mark.parametrize("name", textcnn.__all__)
def test_every_public_object_has_a_runnable_example(name):
    doc = inspect.getdoc(getattr(textcnn, name)) or ""
    assert ">>>" in doc, f"textcnn.{name} needs an example in its docstring"


def test_no_submodule_shadows_a_public_name():
    for name in textcnn.__all__:
        assert not (PACKAGE / f"{name}.py").exists() and not (PACKAGE / name).is_dir(), name
