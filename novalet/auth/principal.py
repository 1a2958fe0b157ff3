"""Who a request comes from, as its receiver verified it.

A ``Principal`` is made by the receiver only (``novalet.auth.signing``), from
a signature it checked, and put on the request context
(``RequestContext.principal``); it never comes from the wire.

* ``admin``: signed with the master key (conductors, ``novalet-manage``);
  unscoped.
* ``host``: signed with one host's key; may write only that host's rows.
* ``unsigned``: no signature, accepted because ``[auth] enforce`` is false
  (a rolling upgrade from release 2); unscoped, as release 2 was.

A context with no principal at all was made in this process (the ``direct``
and ``inprocess`` indirections, the in-process ``fake://`` transport without
keys): it is local and unscoped.
"""

from __future__ import annotations

import dataclasses

ADMIN = "admin"
HOST = "host"
UNSIGNED = "unsigned"


@dataclasses.dataclass(frozen=True)
class Principal:
    """A verified caller, as app code sees it on ``context.principal``:
    ``kind`` is ``"admin"``, ``"host"`` or ``"unsigned"`` (the constants
    ``ADMIN``, ``HOST``, ``UNSIGNED``); ``host`` is the caller's canonical
    host name for a host, None otherwise. Immutable."""

    kind: str
    host: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.kind == ADMIN

    @property
    def scoped_host(self) -> str | None:
        """The host whose rows alone this caller may write, or None
        (unscoped)."""
        return self.host if self.kind == HOST else None

    def __str__(self) -> str:
        if self.kind == HOST:
            return "host %s" % self.host
        return self.kind

    def wire_name(self) -> str:
        """How a signature names this principal: ``admin`` or ``host:NAME``."""
        return "%s:%s" % (HOST, self.host) if self.kind == HOST else self.kind


def admin() -> Principal:
    return _ADMIN


def host(name: str) -> Principal:
    return Principal(HOST, name)


_ADMIN = Principal(ADMIN)
UNSIGNED_PRINCIPAL = Principal(UNSIGNED)


def scoped_host(context: object) -> str | None:
    """The host a context's writes are confined to (None: unscoped)."""
    principal = getattr(context, "principal", None)
    if principal is None:
        return None
    return principal.scoped_host  # type: ignore[no-any-return]


def describe(context: object) -> str:
    """The caller of ``context`` in words, for a log line or an error."""
    principal = getattr(context, "principal", None)
    return "a local caller" if principal is None else str(principal)
