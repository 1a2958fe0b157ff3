"""What goes on the wire: the request context as a dict, everything else
through the entity serializer the caller gives (the objects' serializer for
every novalet client and server; ``rpc`` knows no object)."""

from __future__ import annotations

import json
from typing import Any

import oslo_messaging as messaging

from novalet import auth, exception
from novalet import context as novalet_context
from novalet.rpc import errors, internals, transport


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
    caller's context (results are rebuilt with it), the wire form of the
    context, signature included (``ClientSerializer``), and, for a call
    that asked for an authenticated reply, what opens it (``reply``)."""

    __slots__ = ("context", "wire", "reply")

    def __init__(self, context: Any, wire: dict[str, Any],
                 reply: ExpectedReply | None = None) -> None:
        self.context = context
        self.wire = wire
        self.reply = reply


class RemoteFailure:
    """An authenticated reply that carries the server's error: the caller
    (``client.Client.call``) raises ``error``."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException) -> None:
        self.error = error


class ExpectedReply:
    """What a call that asked for an authenticated reply checks its reply
    with: the key and nonce it was signed with; ``plain_allowed`` says
    whether a reply without a MAC (a release 3 server's) is accepted
    (``[auth] require_reply_auth`` false)."""

    __slots__ = ("key", "nonce", "topic", "method", "plain_allowed")

    def __init__(self, key: bytes, nonce: str, topic: str, method: str,
                 plain_allowed: bool) -> None:
        self.key = key
        self.nonce = nonce
        self.topic = topic
        self.method = method
        self.plain_allowed = plain_allowed

    def refuse(self, reason: str) -> exception.ReplyRefused:
        """The error for a refused reply, logged (one line per kind and
        interval)."""
        _REFUSALS.warn("reply %s.%s: %s" % (self.topic, self.method,
                                            reason.split(" (")[0]),
                       "Refused the reply to %s.%s: %s", self.topic,
                       self.method, reason)
        return exception.ReplyRefused(topic=self.topic, method=self.method,
                                      reason=reason)

    def plain(self, what: str) -> None:
        """A reply without a MAC arrived: accepted (logged) while plain
        replies are allowed, else raises ``ReplyRefused``."""
        if not self.plain_allowed:
            raise self.refuse("not authenticated (%s without a MAC; "
                              "[auth] require_reply_auth is true)" % what)
        _REFUSALS.warn("plain reply %s.%s" % (self.topic, self.method),
                       "Accepted an unauthenticated reply "
                       "to %s.%s ([auth] require_reply_auth is false)",
                       self.topic, self.method)

    def open(self, entity: Any) -> tuple[str, Any]:
        """(kind, parsed body) of the reply ``entity``; raises
        ``ReplyRefused``. A plain reply comes back as (``REPLY_OK``, itself)
        when allowed."""
        signing = auth.signing
        if not signing.is_sealed(entity):
            self.plain("a result")
            return signing.REPLY_OK, entity
        try:
            kind, body = signing.open_reply(self.key, self.nonce, entity)
        except ValueError as e:
            raise self.refuse(str(e))
        if kind == signing.REPLY_ERROR:
            return kind, body
        return kind, json.loads(body)


#: The clients' log of refused and accepted-plain replies.
_REFUSALS = auth.signing.RefusalLog()


class ClientSerializer(RequestContextSerializer):
    """A client's serializer: a signed request arrives already serialized
    (``Signed``: it was serialized to be signed) and passes as it is; the
    reply to one that asked for an authenticated reply is checked before
    anything in it is rebuilt (an error in it comes back as a
    ``RemoteFailure``)."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is Signed:
            return entity
        return super().serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is Signed:
            expected = ctxt.reply
            ctxt = ctxt.context
            if expected is not None:
                kind, entity = expected.open(entity)
                if kind == auth.signing.REPLY_ERROR:
                    return RemoteFailure(internals.deserialize_remote_exception(
                        entity, errors.ALLOWED_EXMODS))
        return super().deserialize_entity(ctxt, entity)

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        if type(ctxt) is Signed:
            return ctxt.wire
        return super().serialize_context(ctxt)
