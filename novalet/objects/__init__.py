"""novalet's versioned objects.

Nothing is registered on import: ``register_all()`` imports the object modules,
whose classes register with ``NovaletObjectRegistry`` and appear here as
``novalet.objects.Service`` and so on (the newest version of each).
"""

from __future__ import annotations

import importlib
from typing import Any

_MODULES = (
    "novalet.objects.pci_device_pool",
    "novalet.objects.monitor_metric",
    "novalet.objects.service",
    "novalet.objects.compute_node",
    "novalet.objects.instance",
    "novalet.objects.migration",
)


def register_all() -> None:
    """Import and register every novalet object class."""
    for module in _MODULES:
        importlib.import_module(module)


def __getattr__(name: str) -> Any:
    if name[:1].isupper():
        raise AttributeError(
            "novalet.objects.%s is not registered; call "
            "novalet.objects.register_all() first" % name)
    raise AttributeError(name)
