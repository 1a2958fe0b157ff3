"""Database error and reconnect counters, from SQLAlchemy's engine events.

``watch(engine)`` is called for every engine of the process once metrics
are on (``watch_engines()``, from ``endpoint.setup()``: the database
layer's engine hook); the listeners count only while metrics are on. An
error's kind is ``disconnect`` when the driver lost the connection, else
the PEP 249 class it derives from (``integrity``, ``operational``, ...),
else ``other``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from novalet.db import engine as db_engine
from novalet.metrics import registry

#: PEP 249 exception classes, most specific first, and their label.
_KINDS = (("IntegrityError", "integrity"), ("OperationalError", "operational"),
          ("ProgrammingError", "programming"), ("DataError", "data"),
          ("InternalError", "internal"), ("NotSupportedError", "not_supported"),
          ("InterfaceError", "interface"), ("DatabaseError", "database"))


def error_kind(error: BaseException | None, is_disconnect: bool) -> str:
    if is_disconnect:
        return "disconnect"
    names = {cls.__name__ for cls in type(error).__mro__} if error else set()
    for name, kind in _KINDS:
        if name in names:
            return kind
    return "other"


def _on_error(context: Any) -> None:
    m = registry.current
    if m is not None:
        kind = error_kind(context.original_exception, bool(context.is_disconnect))
        m.child(m.database_errors, kind).inc()


def _on_invalidate(dbapi_connection: Any, record: Any, error: Any) -> None:
    m = registry.current
    if m is not None and error is not None:  # None: closed on purpose
        m.database_reconnects.inc()


def watch(engine: sa.engine.Engine) -> None:
    """Count ``engine``'s errors and broken connections."""
    sa.event.listen(engine, "handle_error", _on_error)
    sa.event.listen(engine, "invalidate", _on_invalidate)


def watch_engines() -> None:
    """``watch`` every engine of this process: those the database layer
    made already and each one it makes from now on."""
    db_engine.add_engine_hook(watch)
