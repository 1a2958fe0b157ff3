"""Test apps, and the registry isolation their tests run in."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from novalet import testing


@contextlib.contextmanager
def isolated_registry(*module_prefixes: str) -> Iterator[None]:
    """``novalet.testing.isolated_registry()``, and the modules named by
    ``module_prefixes`` dropped after it (imported again, so registered
    again, by the next test)."""
    try:
        with testing.isolated_registry():
            yield
    finally:
        for name in [m for m in sys.modules if m.startswith(module_prefixes)]:
            del sys.modules[name]
