"""Test apps, and the registry isolation their tests run in."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from novalet import testing


@contextlib.contextmanager
def isolated_registry(*module_prefixes: str) -> Iterator[None]:
    """``novalet.testing.isolated_registry()``, and the modules named by
    ``module_prefixes`` dropped before and after it (imported again, so
    registered again, by this test and the next, whatever ran before in
    this process)."""
    for name in [m for m in sys.modules if m.startswith(module_prefixes)]:
        del sys.modules[name]
    try:
        with testing.isolated_registry():
            yield
    finally:
        for name in [m for m in sys.modules if m.startswith(module_prefixes)]:
            del sys.modules[name]


ROOT = Path(__file__).resolve().parents[2]


def install_app(directory: Path, dist: str, entry_points: str,
                modules: dict[str, str] | None = None) -> None:
    """A distribution ``dist`` "installed" in ``directory`` (a dist-info
    with ``entry_points`` in group ``novalet.apps``, and ``modules`` as
    files): what pip would leave, for processes started with
    ``app_environment(directory)``."""
    info = directory / ("%s-1.0.dist-info" % dist)
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: %s\nVersion: 1.0\n" % dist)
    (info / "entry_points.txt").write_text("[novalet.apps]\n" + entry_points)
    for name, text in (modules or {}).items():
        (directory / ("%s.py" % name)).write_text(text)


def app_environment(directory: Path) -> dict[str, str]:
    """This test run's environment with the apps installed in ``directory``
    and every installed app loaded (tests/conftest.py restricts the others
    to the core)."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(directory), str(ROOT)]))
    env.pop("OS_DEFAULT__APPS", None)
    return env


@contextlib.contextmanager
def appr_release2_loaded() -> Iterator[Any]:
    """Release 2 of the test app appr loaded beside the core (its module
    is yielded); forgotten after the block."""
    from novalet import app, objects

    with isolated_registry("tests.apps.appr_"):
        objects.register_all(["novalet"])
        from tests.apps import appr_release2

        app.register(appr_release2.APP)
        try:
            yield appr_release2
        finally:
            app.unload("appr")
