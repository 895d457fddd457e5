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


# -- rules of direction ------------------------------------------------------------------------
CONTRIB = PACKAGE / "contrib"
# the composition root: the one module of the core that plugs the research edge in
COMPOSITION_ROOT = PACKAGE / "__init__.py"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """``(line, absolute module, names taken from it)`` of every import in ``path`` (a
    relative import resolved against the module's package)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, []) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            found.append((node.lineno, base, [alias.name for alias in node.names]))
    return found


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _imported_modules(path: Path) -> set[str]:
    """Every ``textcnn`` module ``path`` imports, and each one a ``from`` import names (a
    submodule taken from its package)."""
    modules = set()
    for _, module, names in _imports(path):
        modules.add(module)
        modules.update(f"{module}.{n}" for n in names)
    return {m for m in modules if m == "textcnn" or m.startswith("textcnn.")}


def test_the_core_never_imports_the_research_edge():
    """Nothing in the core imports ``textcnn.contrib`` (distillation, the studies): they plug in
    through the core's hooks; the package's ``__init__`` alone installs them."""
    core = [p for p in MODULES if CONTRIB not in p.parents and p != COMPOSITION_ROOT]
    assert len(core) > 40  # the walk found the package
    bad = [f"{p.relative_to(PACKAGE)}:{line} imports {module}" for p in core
           for line, module, names in _imports(p)
           for target in [module, *(f"{module}.{n}" for n in names)]
           if target == "textcnn.contrib" or target.startswith("textcnn.contrib.")]
    assert not bad, "\n".join(sorted(set(bad)))
    assert any(m.startswith("textcnn.contrib") for m in _imported_modules(COMPOSITION_ROOT))


def _private_uses(path: Path) -> list[str]:
    """``from textcnn.x import _name`` and ``x._name`` (``x`` bound to a textcnn module by an
    import) in ``path``, outside the module that defines ``_name``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = _module_name(path)
    bad = [f"{path.name}:{line} imports {module}.{n}" for line, module, names in _imports(path)
           if module.startswith("textcnn") and module != here
           for n in names if _is_private(n)]
    bound = {}  # local name -> the textcnn module it is bound to
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("textcnn"):
                    bound[alias.asname or alias.name.split(".")[0]] = \
                        alias.name if alias.asname else alias.name.split(".")[0]
    for _, module, names in _imports(path):
        for n in names:
            if f"{module}.{n}" in _all_module_names():
                bound[n] = f"{module}.{n}"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_private(node.attr):
            chain, value = [node.attr], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if isinstance(value, ast.Name) and value.id in bound:
                owner = ".".join([bound[value.id], *reversed(chain[1:])])
                if owner != here:
                    bad.append(f"{path.name}:{node.lineno} uses {owner}.{node.attr}")
    return bad


def _all_module_names() -> set[str]:
    return {_module_name(p) for p in MODULES}


def test_no_private_name_is_used_outside_its_module():
    """A name with a leading underscore belongs to its module: no other module of the package,
    script or test imports it or reads it as ``module._name``."""
    root = PACKAGE.parent
    files = [*MODULES, *sorted((root / "scripts").glob("*.py")),
             *sorted((root / "tests").glob("*.py"))]
    bad = [use for path in files for use in _private_uses(path)]
    assert not bad, "\n".join(bad)


def test_the_private_name_rule_can_fail(tmp_path):
    """The rule above sees both forms (a check that finds nothing proves nothing)."""
    probe = PACKAGE / "cli.py"
    uses = _private_uses(probe)
    assert uses == []
    fake = tmp_path / "probe.py"
    fake.write_text('"""A probe."""\nfrom textcnn.cli import _decode\nimport textcnn.cli\n'
                    "textcnn.cli._argument_texts\n", encoding="utf-8")
    original = _module_name
    try:
        globals()["_module_name"] = lambda path: "probe" if path == fake else original(path)
        found = _private_uses(fake)
    finally:
        globals()["_module_name"] = original
    assert found == ["probe.py:2 imports textcnn.cli._decode",
                     "probe.py:4 uses textcnn.cli._argument_texts"]


# the network and its heads: what any door (training, serving, prediction) builds on
NETWORK = ("textcnn.networks", "textcnn.models", "textcnn.layers", "textcnn.core",
           "textcnn.ngrams", "textcnn.heads")
# what builds on the network, which it must never import
ABOVE_THE_NETWORK = ("textcnn.training", "textcnn.serve", "textcnn.inference", "textcnn.runs",
                     "textcnn.backends", "textcnn.classifier", "textcnn.cli", "textcnn.explain",
                     "textcnn.folder", "textcnn.chunked", "textcnn.estimator", "textcnn.contrib")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _reached(module: str) -> set[str]:
    """Every package module ``module`` imports, directly or through others."""
    paths = {_module_name(p): p for p in MODULES}
    seen, todo = set(), [module]
    while todo:
        for dep in _imported_modules(paths[todo.pop()]) & paths.keys():
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_network_imports_nothing_from_training_serving_or_prediction():
    network = [m for m in _all_module_names() if _within(m, NETWORK)]
    assert {"textcnn.networks.network", "textcnn.heads.ordinal"} <= set(network)
    bad = {m: sorted(d for d in _reached(m) if _within(d, ABOVE_THE_NETWORK)) for m in network}
    assert not {m: d for m, d in bad.items() if d}
    # the rule can fail: the trainer reaches both the network and what builds on it
    assert _within("textcnn.inference", ABOVE_THE_NETWORK)
    assert any(_within(d, NETWORK) for d in _reached("textcnn.training.trainer"))


def _import_graph() -> dict[str, set[str]]:
    """Package module -> the package modules it imports, wherever the import stands (top level,
    in a function, under ``TYPE_CHECKING``); ``from X import n`` is an edge to ``X.n`` when that
    is a module, else to ``X``."""
    names = _all_module_names()
    graph = {}
    for path in MODULES:
        here, deps = _module_name(path), set()
        for _, module, imported in _imports(path):
            targets = [f"{module}.{n}" if f"{module}.{n}" in names else module
                       for n in imported] or [module]
            deps.update(t for t in targets if t in names)
        graph[here] = deps - {here}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that import each other (strongly connected components of two or
    more), each sorted (Tarjan's algorithm, without recursion)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_import_cycle_between_modules():
    """Imports point one way: no two modules of the package reach each other, even through a
    deferred import inside a function (which would only hide the knot)."""
    graph = _import_graph()
    assert graph["textcnn.classifier"] >= {"textcnn.folder", "textcnn.backends"}
    assert not _cycles(graph), "\n".join(" <-> ".join(g) for g in _cycles(graph))


def test_the_cycle_rule_can_fail():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"x": {"y"}, "y": {"x"}, "z": {"x"}}) == [["x", "y"]]
