"""Dependencies point down: a package imports none of the packages above it.

``RULES`` maps a package to the packages its modules may not import. Every
``.py`` file under the package is parsed (not imported) and every import in
it counts: at module level, inside a function, under ``TYPE_CHECKING``,
relative, and ``importlib.import_module`` / ``__import__`` of a literal
name. A violation names the file, the line and the import.
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
