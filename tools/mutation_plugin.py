"""pytest plugin for tools/mutation.sh: forget novalet's memoized results
before every test.

mutmut runs, for each mutant, only the tests that called the mutated
function in its first (stats) run. A function whose result is memoized
(``functools`` caches, the remotable methods found per class:
``novalet.objects.remotable``) is
called by the first test that needs it only, so the later tests that rely
on it would never be run against its mutants. Cleared before each test,
each test calls what it uses.
"""

from __future__ import annotations

import sys
from typing import Any


def _clear() -> None:
    for name, module in list(sys.modules.items()):
        if not name.startswith("novalet") or module is None:
            continue
        for value in list(vars(module).values()):
            cache_clear = getattr(value, "cache_clear", None)
            if callable(cache_clear) and hasattr(value, "cache_info"):
                cache_clear()
    remotable = sys.modules.get("novalet.objects.remotable")
    if remotable is not None:
        with remotable._lock:
            remotable._kinds.clear()


def pytest_runtest_setup(item: Any) -> None:
    _clear()
