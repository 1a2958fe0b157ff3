"""The database layer. Only the objects' local path and the conductor use it.

``block_access`` is the switch a process without database rights (a compute
agent) throws at start: from then on every transaction of
``novalet.db.engine`` (so every query function of the table modules) raises
``DBNotAllowed``. It lives here, not in ``engine``, so throwing it imports no
database code.

``reader`` and ``writer`` (``novalet.db.engine``'s, imported on first use)
are the transactions apps' remotable methods use; the switch covers them too.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from novalet import exception

_blocked_for: str | None = None
_local = threading.local()


def block_access(binary: str) -> None:
    """Forbid database use in this process; ``binary`` names who we are."""
    global _blocked_for
    _blocked_for = binary


def allow_access() -> None:
    """Lift ``block_access`` (tests, and processes switching to direct)."""
    global _blocked_for
    _blocked_for = None


def access_blocked() -> bool:
    return _blocked_for is not None


class _ConductorAccess:
    """Re-entrant; the depth is per thread. A class, not a generator: the
    conductor enters it for every argument of every call."""

    __slots__ = ()

    def __enter__(self) -> None:
        _local.depth = getattr(_local, "depth", 0) + 1

    def __exit__(self, *exc_info: object) -> None:
        _local.depth -= 1


_CONDUCTOR_ACCESS = _ConductorAccess()


def conductor_access() -> _ConductorAccess:
    """``with conductor_access():`` this thread is dispatching for a
    conductor: it may use the database even in a blocked process (the
    ``inprocess`` indirection)."""
    return _CONDUCTOR_ACCESS


def dispatching() -> bool:
    """Whether this thread is inside ``conductor_access()``: dispatching
    for a conductor (the one per-thread depth: the objects' indirection
    switch reads it too)."""
    return bool(getattr(_local, "depth", 0))


def check_access(function: str) -> None:
    """Raise ``DBNotAllowed`` naming ``function`` and its caller if blocked."""
    if _blocked_for is None or dispatching():
        return
    caller = "?"
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("novalet.db"):
            caller = "%s:%d (%s)" % (module, frame.f_lineno,
                                     frame.f_code.co_name)
            break
        frame = frame.f_back  # type: ignore[assignment]
    raise exception.DBNotAllowed(binary=_blocked_for, function=function,
                                 caller=caller)


if TYPE_CHECKING:
    from novalet.db.engine import reader, writer


def __getattr__(name: str) -> Any:
    # ``reader`` and ``writer`` on first use: ``import novalet.db`` (to
    # throw the switch) imports no database code.
    if name in ("reader", "writer"):
        from novalet.db import engine

        return getattr(engine, name)
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


__all__ = ["access_blocked", "allow_access", "block_access", "check_access",
           "conductor_access", "dispatching", "reader", "writer"]
