"""Which methods of an object class are remotable: the one lookup the
conductor dispatches by and its metrics label by.

A name is an instance method (``@remotable``: ``object_action``) or a class
method (``@classmethod`` over ``@remotable_classmethod``:
``object_class_action_versions``), read from the class itself
(``inspect.getattr_static``: nothing of an instance, no descriptor runs).
Each class is read once; a name a caller makes up grows nothing.
"""

from __future__ import annotations

import inspect
import threading
from typing import Any

INSTANCE = "instance"
CLASS = "class"

_lock = threading.Lock()
#: class -> {name: INSTANCE or CLASS} of its remotable methods.
_kinds: dict[type, dict[str, str]] = {}


def _read(cls: type) -> dict[str, str]:
    kinds = {}
    for name in dir(cls):
        if name.startswith(("_", "obj_")):
            continue  # private and framework names are never dispatched
        static = inspect.getattr_static(cls, name, None)
        if isinstance(static, classmethod):
            if getattr(static.__func__, "remotable", False):
                kinds[name] = CLASS
        elif isinstance(static, staticmethod):
            continue  # never dispatched
        elif getattr(static, "remotable", False):
            kinds[name] = INSTANCE
    return kinds


def methods(cls: type) -> dict[str, str]:
    """``{name: INSTANCE or CLASS}`` of ``cls``'s remotable methods (the
    same mapping each call: do not change it)."""
    kinds = _kinds.get(cls)
    if kinds is None:
        kinds = _read(cls)
        with _lock:
            _kinds[cls] = kinds
    return kinds


def kind(cls: type, name: Any) -> str | None:
    """``INSTANCE``, ``CLASS`` or None (``name`` is not a remotable method
    of ``cls``, or not a string)."""
    if type(name) is not str:
        return None
    return methods(cls).get(name)


def forget(cls: type) -> None:
    """Drop what was read of ``cls`` (a class registered again)."""
    with _lock:
        _kinds.pop(cls, None)


__all__ = ["CLASS", "INSTANCE", "forget", "kind", "methods"]
