"""Request context: who is asking, carried through RPC and the database layer."""

from __future__ import annotations

import functools
from typing import Any

from oslo_context import context as oslo_context
from oslo_db.sqlalchemy import enginefacade


@enginefacade.transaction_context_provider
class RequestContext(oslo_context.RequestContext):
    """A request context that oslo.db's enginefacade can carry a session on."""

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict()

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

    def elevated(self) -> RequestContext:
        ctxt = self.__class__.from_dict(self.to_dict())
        ctxt.is_admin = True
        if "admin" not in ctxt.roles:
            ctxt.roles.append("admin")
        return ctxt


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


__all__ = ["RequestContext", "get_admin_context"]
