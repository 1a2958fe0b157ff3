"""Request context: who is asking, carried through RPC and the database layer."""

from __future__ import annotations

from typing import Any

from oslo_context import context as oslo_context
from oslo_db.sqlalchemy import enginefacade


@enginefacade.transaction_context_provider
class RequestContext(oslo_context.RequestContext):
    """A request context that oslo.db's enginefacade can carry a session on."""

    def to_dict(self) -> dict[str, Any]:
        return super().to_dict()

    @classmethod
    def from_dict(cls, values: dict[str, Any], **kwargs: Any) -> RequestContext:
        return super().from_dict(values, **kwargs)  # type: ignore[return-value]

    def elevated(self) -> RequestContext:
        ctxt = self.__class__.from_dict(self.to_dict())
        ctxt.is_admin = True
        if "admin" not in ctxt.roles:
            ctxt.roles.append("admin")
        return ctxt


def get_admin_context() -> RequestContext:
    """A context with admin rights and no user, for services and tools."""
    return RequestContext(is_admin=True, overwrite=False)


__all__ = ["RequestContext", "get_admin_context"]
