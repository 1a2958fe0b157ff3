"""What goes on the wire: the request context as a dict, everything else
through the entity serializer the caller gives (the objects' serializer for
every novalet client and server; ``rpc`` knows no object)."""

from __future__ import annotations

from typing import Any

import oslo_messaging as messaging

from novalet import context as novalet_context
from novalet.rpc import errors, transport


class VerifiedContext(dict):  # type: ignore[type-arg]
    """A request's context as it arrived, after this server verified the
    request (``server._VerifyingDispatcher``): the principal and delivery
    key travel with it to ``deserialize_context``. What the wire gives is a
    plain ``dict``, never this: no caller can claim a principal."""

    __slots__ = ("principal", "delivery")

    def __init__(self, ctxt: dict[str, Any], principal: Any,
                 delivery: str | None) -> None:
        super().__init__(ctxt)
        self.principal = principal
        self.delivery = delivery


class RequestContextSerializer(messaging.Serializer):
    """Contexts as dicts (``RequestContext.to_wire``); entities through
    ``entities`` (default: unchanged, for calls carrying no object).

    With ``expected_errors`` (servers), an error in what arrives is marked
    expected, so the server replies with it without logging a traceback.
    """

    def __init__(self, entities: messaging.Serializer | None = None, *,
                 expected_errors: bool = False) -> None:
        self._entities = entities if entities is not None else (
            messaging.NoOpSerializer())
        self._expected_errors = expected_errors

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return self._entities.serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if not self._expected_errors:
            return self._entities.deserialize_entity(ctxt, entity)
        try:
            return self._entities.deserialize_entity(ctxt, entity)
        except Exception:
            with errors.server_errors(transport.in_process()):
                raise

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        if isinstance(ctxt, novalet_context.RequestContext):
            return ctxt.to_wire()
        return ctxt.to_dict()  # type: ignore[no-any-return]

    def deserialize_context(self, ctxt: dict[str, Any]) -> Any:
        if not isinstance(ctxt, dict):
            return novalet_context.get_admin_context()
        context = novalet_context.RequestContext.from_dict(ctxt)
        if type(ctxt) is VerifiedContext:
            # What this server verified: the only source of a principal
            # (the wire's is_admin and roles are not believed).
            context.set_principal(ctxt.principal)
            context.delivery_key = ctxt.delivery
        return context


class Signed:
    """A signed request's context as oslo.messaging carries it: the
    caller's context (results are rebuilt with it) and the wire form of the
    context, signature included (``ClientSerializer``)."""

    __slots__ = ("context", "wire")

    def __init__(self, context: Any, wire: dict[str, Any]) -> None:
        self.context = context
        self.wire = wire


class ClientSerializer(RequestContextSerializer):
    """A client's serializer: a signed request arrives already serialized
    (``Signed``: it was serialized to be signed) and passes as it is."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is Signed:
            return entity
        return super().serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is Signed:
            ctxt = ctxt.context
        return super().deserialize_entity(ctxt, entity)

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        if type(ctxt) is Signed:
            return ctxt.wire
        return super().serialize_context(ctxt)
