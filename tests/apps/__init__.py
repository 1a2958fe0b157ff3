"""Test apps, and the registry isolation their tests run in."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from oslo_versionedobjects import base as ovo_base

from novalet import app
from novalet.objects import codec


@contextlib.contextmanager
def isolated_registry(*module_prefixes: str) -> Iterator[None]:
    """Whatever is registered or loaded inside the block is forgotten after
    it: novalet's registry, oslo.versionedobjects' registry, the loaded
    apps, and the modules named by ``module_prefixes`` (imported again, so
    registered again, by the next test)."""
    by_key = {k: list(v) for k, v in codec._by_key.items()}
    ovo = ovo_base.VersionedObjectRegistry.obj_classes()
    ovo_saved = {k: list(v) for k, v in ovo.items()}
    loaded = app._loaded.copy()
    try:
        yield
    finally:
        codec._by_key.clear()
        codec._by_key.update(by_key)
        ovo.clear()
        ovo.update(ovo_saved)
        app._loaded.clear()
        app._loaded.update(loaded)
        codec.registry_changed()
        for name in [m for m in sys.modules if m.startswith(module_prefixes)]:
            del sys.modules[name]
