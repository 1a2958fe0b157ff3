"""Request context: who is asking, carried through RPC and the database layer."""

from __future__ import annotations

import functools
from typing import Any

from oslo_context import context as oslo_context
from oslo_db.sqlalchemy import enginefacade

from novalet import exception


@enginefacade.transaction_context_provider
class RequestContext(oslo_context.RequestContext):
    """A request context that oslo.db's enginefacade can carry a session on.

    ``principal`` is who the request verifiably comes from
    (``novalet.auth.Principal``), set by the RPC server that verified its
    signature (``set_principal``) and by nothing else: it is not part of
    ``to_dict()``/``to_wire()`` and ``from_dict()`` never reads it, so no
    caller can claim one. None: a context made in this process (local).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._principal: Any = None
        #: Set with the principal by the server that verified the request
        #: (``novalet.auth.delivery_key``), never from the wire.
        self.delivery_key: str | None = None
        #: Seconds an RPC call made with this context waits for its answer
        #: (None: the client's timeout); never on the wire.
        self.call_timeout: float | None = None

    @property
    def principal(self) -> Any:
        """Who this request verifiably comes from: a
        ``novalet.auth.Principal`` with ``kind`` ``"admin"`` (signed with the
        master key), ``"host"`` (signed with one host's key; ``host`` names
        it) or ``"unsigned"`` (accepted because ``[auth] enforce`` is
        false), or None for a call made in this process (``direct``,
        ``inprocess``, ``fake://`` without keys). Public to app code: a
        remotable method reads ``self._context.principal`` (or its
        ``context`` argument's) to decide for itself; the writes of a host
        principal to host-scoped tables are confined by novalet either way
        (``App.host_scoped``). Read-only: only the RPC server that verified
        the request sets it."""
        return self._principal

    def set_principal(self, principal: Any) -> None:
        """The receiver's verified caller (None: a local one). A context
        claims no more than its principal: only an admin principal's may say
        ``is_admin`` or carry the ``admin`` role (a host's never does,
        whatever the request said); an unsigned one (``[auth] enforce``
        false) keeps what it said, as before release 3."""
        from novalet.auth import principal as principal_mod

        self._principal = principal
        if principal is None or principal.kind == principal_mod.UNSIGNED:
            return
        if not principal.is_admin:
            self.is_admin = False
            self.roles = [role for role in self.roles if role != "admin"]

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict()

    def get_logging_values(self) -> dict[str, Any]:
        """What oslo.log's format strings read (``%(request_id)s``,
        ``%(user_identity)s``...), every text escaped to one line
        (``novalet.logs.escape``): a caller's context cannot write a line
        of its own into the log."""
        from novalet import logs

        return {key: logs.escape_value(value)
                for key, value in super().get_logging_values().items()}

    def to_wire(self) -> dict[str, Any]:
        """``to_dict()`` less the entries ``from_dict()`` restores by itself
        (a value equal to what it gives a missing key, and ``user_identity``'s
        default, which ``to_dict()`` derives): what goes on the RPC wire.
        ``from_dict(ctxt.to_wire()).to_dict() == ctxt.to_dict()``."""
        defaults = _wire_defaults()
        return {key: value for key, value in self.to_dict().items()
                if not (key in defaults and type(value) is type(defaults[key])
                        and value == defaults[key])}

    @classmethod
    def from_dict(cls, values: dict[str, Any], **kwargs: Any) -> RequestContext:
        return super().from_dict(values, **kwargs)  # type: ignore[return-value]

    def with_call_timeout(self, seconds: float | None) -> RequestContext:
        """A copy of this context whose RPC calls wait at most ``seconds``
        (e.g. a heartbeat: an answer older than the next beat is worthless)."""
        ctxt = self.__class__.from_dict(self.to_dict())
        ctxt._principal = self._principal
        ctxt.delivery_key = self.delivery_key
        ctxt.call_timeout = seconds
        return ctxt

    def elevated(self) -> RequestContext:
        ctxt = self.__class__.from_dict(self.to_dict())
        ctxt._principal = self._principal  # elevated, never unscoped
        ctxt.delivery_key = self.delivery_key
        ctxt.call_timeout = self.call_timeout
        ctxt.is_admin = True
        if "admin" not in ctxt.roles:
            ctxt.roles.append("admin")
        return ctxt


#: The context entries ``from_dict`` reads, by the type each must have on
#: the wire (None is always allowed): text (with its longest length),
#: flags, and the list of roles.
_TEXT, _FLAG, _ROLES = "text", "flag", "roles"
MAX_WIRE_TEXT = 255
MAX_TOKEN_TEXT = 8192
MAX_ROLES = 100
_WIRE_KINDS: dict[str, tuple[str, int]] = {
    **dict.fromkeys(("user", "project_id", "domain", "user_domain",
                     "project_domain", "request_id", "global_request_id",
                     "resource_uuid", "user_name", "project_name",
                     "domain_name", "user_domain_name", "project_domain_name",
                     "system_scope", "user_identity", "project"),
                    (_TEXT, MAX_WIRE_TEXT)),
    "auth_token": (_TEXT, MAX_TOKEN_TEXT),
    **dict.fromkeys(("is_admin", "read_only", "show_deleted",
                     "is_admin_project"), (_FLAG, 0)),
    "roles": (_ROLES, MAX_ROLES),
}


def _bad_wire(reason: str) -> exception.MalformedRequest:
    return exception.MalformedRequest(reason="request context: " + reason)


def check_wire(values: Any) -> None:
    """A context as it arrived: a dict whose entries ``from_dict`` reads
    have their types (text without NUL and within ``MAX_WIRE_TEXT``,
    booleans, ``roles`` a list of at most ``MAX_ROLES`` texts); raises
    ``MalformedRequest`` naming the entry. Other entries are not read."""
    if not isinstance(values, dict):
        raise _bad_wire("a %s, not a dict" % type(values).__name__)
    for key, value in values.items():
        if value is None:
            continue
        kind = _WIRE_KINDS.get(key)
        if kind is None:
            continue
        if kind[0] is _TEXT:
            if type(value) is not str:
                raise _bad_wire("%s is a %s, not text"
                                % (key, type(value).__name__))
            if len(value) > kind[1] or "\0" in value:
                raise _bad_wire("%s is longer than %d or holds a NUL"
                                % (key, kind[1]))
        elif kind[0] is _FLAG:
            if type(value) is not bool:
                raise _bad_wire("%s is a %s, not a boolean"
                                % (key, type(value).__name__))
        else:
            if type(value) is not list or len(value) > MAX_ROLES or not all(
                    type(role) is str and len(role) <= MAX_WIRE_TEXT
                    and "\0" not in role for role in value):
                raise _bad_wire("roles must be a list of at most %d texts of "
                                "at most %d characters" % (MAX_ROLES,
                                                           MAX_WIRE_TEXT))


@functools.cache
def _wire_defaults() -> dict[str, Any]:
    """What ``from_dict({})`` fills in, key by key (not ``request_id``:
    a missing one is made up anew)."""
    defaults = RequestContext.from_dict({}, overwrite=False).to_dict()
    defaults.pop("request_id")
    return defaults


def get_admin_context() -> RequestContext:
    """A context with admin rights and no user, for services and tools."""
    return RequestContext(is_admin=True, overwrite=False)


__all__ = ["RequestContext", "check_wire", "get_admin_context"]
