"""Dependencies point down: a package imports none of the packages above it.

``LAYERS`` stacks every package and top-level module of novalet, bottom
up: a module imports nothing of a layer above its own. ``RULES`` adds the
bans below that line: a package and the packages its modules may not
import although they sit lower (``objects`` reaches the conductor only
through the indirection API it is handed, never through ``rpc``). Every ``.py`` file is parsed (not
imported) and every import in it counts: at module level, inside a
function, under ``TYPE_CHECKING``, relative, and
``importlib.import_module`` / ``__import__`` of a literal name. A
violation names the file, the line and the import.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

import novalet

#: package -> the packages none of its modules may import.
RULES: dict[str, tuple[str, ...]] = {
    "novalet.db": ("novalet.objects", "novalet.rpc", "novalet.conductor",
                   "novalet.compute"),
    # rpc takes its serializer and observer from its callers.
    "novalet.rpc": ("novalet.objects", "novalet.conductor", "novalet.compute",
                    "novalet.metrics", "novalet.indirection", "novalet.service",
                    "novalet.servicegroup", "novalet.cmd"),
    "novalet.objects": ("novalet.service", "novalet.conductor", "novalet.compute",
                        "novalet.cmd", "novalet.metrics", "novalet.rpc",
                        "novalet.servicegroup"),
    "novalet.auth": ("novalet.objects", "novalet.conductor", "novalet.compute",
                     "novalet.rpc", "novalet.indirection"),
}

#: Bottom up; a module may import its own layer and those below. Names
#: are ``novalet`` and its direct children (a package stands for all of it).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("novalet", "novalet.exception", "novalet.logs", "novalet.manager"),
    ("novalet.auth", "novalet.virt"),
    ("novalet.context",),
    ("novalet.rpc",),
    # An app is data: the objects register themselves with it (they tell
    # it each class they register), it imports none of them.
    ("novalet.app", "novalet.conf"),
    # The database takes the host-scoped tables of the loaded apps from
    # novalet.app, the core's from its own rules; the metrics watch its
    # engines through a hook.
    ("novalet.db", "novalet.upgrade"),
    ("novalet.objects", "novalet.novalet_app"),
    ("novalet.metrics", "novalet.testing"),
    ("novalet.conductor", "novalet.compute", "novalet.servicegroup"),
    ("novalet.indirection",),
    ("novalet.service",),
    ("novalet.cmd",),
)

ROOT = pathlib.Path(novalet.__file__).resolve().parent.parent


def _module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(module: str | None, level: int, importer: str,
             is_package: bool) -> str:
    """The absolute name of ``from <level dots><module> import ...``."""
    if level == 0:
        return module or ""
    base = importer.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


def imported_names(source: str, importer: str, is_package: bool = False
                   ) -> list[tuple[int, str, str]]:
    """``(line, imported name, the statement)`` of every import in
    ``source``: for ``from a import b``, both ``a`` and ``a.b`` (``b`` may be
    a module)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        text = ast.unparse(node) if isinstance(
            node, (ast.Import, ast.ImportFrom, ast.Call)) else ""
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name, text) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node.module, node.level, importer, is_package)
            found.append((node.lineno, base, text))
            found += [(node.lineno, "%s.%s" % (base, alias.name), text)
                      for alias in node.names if alias.name != "*"]
        elif isinstance(node, ast.Call) and node.args and isinstance(
                node.args[0], ast.Constant) and isinstance(
                node.args[0].value, str):
            func = node.func
            name = (func.attr if isinstance(func, ast.Attribute)
                    else func.id if isinstance(func, ast.Name) else "")
            if name in ("import_module", "__import__"):
                found.append((node.lineno, node.args[0].value, text))
    return found


def _forbidden(name: str, forbidden: tuple[str, ...]) -> str | None:
    for package in forbidden:
        if name == package or name.startswith(package + "."):
            return package
    return None


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    directory = ROOT.joinpath(*package.split("."))
    found = []
    for path in sorted(directory.rglob("*.py")):
        importer = _module_name(path)
        seen = set()
        for line, name, text in imported_names(
                path.read_text(), importer, path.name == "__init__.py"):
            hit = _forbidden(name, forbidden)
            if hit is not None and (line, text) not in seen:
                seen.add((line, text))
                found.append("%s:%d: %s (%s may not import %s)" % (
                    path.relative_to(ROOT), line, text, package, hit))
    return found


def layer_of(name: str) -> int | None:
    """The index in ``LAYERS`` of the module or package ``name`` (a name
    under ``novalet``), None for a name outside novalet or in no layer."""
    for index, layer in enumerate(LAYERS):
        if _unit(name) in layer:
            return index
    return None


def _units() -> set[str]:
    """``novalet`` and its direct children: packages and modules."""
    found = {"novalet"}
    for path in ROOT.joinpath("novalet").iterdir():
        if path.is_dir() and path.joinpath("__init__.py").is_file():
            found.add("novalet." + path.name)
        elif path.suffix == ".py" and path.name != "__init__.py":
            found.add("novalet." + path.stem)
    return found


def upward_imports(source: str, importer: str, is_package: bool = False
                   ) -> list[str]:
    """The imports in ``source`` (of module ``importer``) that reach a
    layer above the importer's, as ``line: statement (why)`` (layers
    counted from 1 at the bottom)."""
    own = layer_of(importer)
    assert own is not None, "%s is in no layer of LAYERS" % importer
    found = []
    for line, name, text in imported_names(source, importer, is_package):
        other = layer_of(name)
        if other is not None and other > own:
            entry = "%d: %s (%s, layer %d, may not import %s, layer %d)" % (
                line, text, _unit(importer), own + 1, _unit(name), other + 1)
            if entry not in found:
                found.append(entry)
    return found


def test_every_module_has_a_layer() -> None:
    """A new package or module is placed in ``LAYERS`` (else nothing holds
    it down), and every name there exists."""
    placed = [name for layer in LAYERS for name in layer]
    assert len(placed) == len(set(placed)), "a name in two layers"
    assert set(placed) == _units()


def test_no_module_imports_a_layer_above_its_own() -> None:
    found = []
    for path in sorted(ROOT.joinpath("novalet").rglob("*.py")):
        found += ["%s:%s" % (path.relative_to(ROOT), entry)
                  for entry in upward_imports(path.read_text(),
                                              _module_name(path),
                                              path.name == "__init__.py")]
    assert not found, "\n".join(["imports up the layers:"] + found)


def _unit(name: str) -> str:
    return ".".join(name.split(".")[:2])


def test_no_circle_between_packages() -> None:
    """Not even within a layer: the packages and top-level modules import
    each other in no loop (``app``, ``objects`` and ``db`` once did)."""
    graph: dict[str, set[str]] = {unit: set() for unit in _units()}
    for path in ROOT.joinpath("novalet").rglob("*.py"):
        importer = _module_name(path)
        for _, name, _ in imported_names(path.read_text(), importer,
                                         path.name == "__init__.py"):
            if _unit(name) in graph and _unit(name) not in (
                    "novalet", _unit(importer)):
                graph[_unit(importer)].add(_unit(name))
    done: set[str] = set()

    def visit(unit: str, path: list[str]) -> None:
        if unit in path:
            loop = path[path.index(unit):] + [unit]
            pytest.fail("import circle: " + " -> ".join(loop))
        if unit not in done:
            for other in sorted(graph[unit]):
                visit(other, path + [unit])
            done.add(unit)

    for unit in sorted(graph):
        visit(unit, [])


@pytest.mark.parametrize(("importer", "source"), [
    # The imports this layering took out, each put back where it was.
    ("novalet.app", "def f():\n    from novalet.objects import base"),
    ("novalet.app", "def f():\n    from novalet.objects import codec"),
    ("novalet.db.scope", "def f():\n    from novalet import novalet_app"),
    ("novalet.db.engine", "from novalet.metrics import database as db_metrics"),
    ("novalet.upgrade.caps", "import novalet.objects.fields"),
    ("novalet.rpc.server", "from ..conf import CONF"),
    ("novalet.auth.keys", "import importlib\n"
                          "importlib.import_module('novalet.context')"),
])
def test_the_layer_check_sees_an_import_up(importer: str, source: str) -> None:
    assert upward_imports(source, importer, False), source


@pytest.mark.parametrize(("importer", "source"), [
    ("novalet.db.scope", "from novalet import app, exception"),
    ("novalet.novalet_app", "from novalet.db import scope"),
    ("novalet.metrics.database", "from novalet.db import engine"),
    ("novalet.objects.base", "from novalet import app, db"),
    ("novalet.app", "from novalet.rpc import errors"),
    ("novalet.db.engine", "from . import statements"),
    ("novalet.cmd.manage", "import oslo_config"),
])
def test_the_layer_check_lets_imports_down_pass(importer: str,
                                                source: str) -> None:
    assert not upward_imports(source, importer, False), source


@pytest.mark.parametrize("package", sorted(RULES))
def test_package_imports_nothing_above_it(package: str) -> None:
    found = violations(package, RULES[package])
    assert not found, "\n".join(["imports against the layering:"] + found)


def test_every_package_named_in_the_rules_exists() -> None:
    """A misspelt name would make its rule pass vacuously (a package, or
    a module such as ``novalet.service``)."""
    for package, forbidden in RULES.items():
        for name in (package, *forbidden):
            path = ROOT.joinpath(*name.split("."))
            assert path.is_dir() or path.with_suffix(".py").is_file(), name


@pytest.mark.parametrize("source", [
    "from novalet.objects import fields",
    "from novalet import objects",
    "import novalet.rpc.client",
    "def f():\n    from novalet.conductor import manager",
    "class C:\n    def m(self):\n        import novalet.compute",
    "if TYPE_CHECKING:\n    from novalet.objects.base import NovaletObject",
    "from ..objects import fields",
    "import importlib\nimportlib.import_module('novalet.objects.service')",
])
def test_the_checker_sees_every_kind_of_import(source: str) -> None:
    names = [name for _, name, _ in imported_names(
        source, "novalet.db.scope")]
    assert any(_forbidden(name, RULES["novalet.db"]) for name in names), names


@pytest.mark.parametrize("source", [
    "from novalet.db import models",
    "from . import models",
    "from novalet import exception, objectsx",
    "import novalet.rpcx",
])
def test_the_checker_lets_allowed_imports_pass(source: str) -> None:
    names = [name for _, name, _ in imported_names(
        source, "novalet.db.scope")]
    assert not any(_forbidden(name, RULES["novalet.db"]) for name in names), names
