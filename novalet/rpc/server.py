"""RPC servers: endpoints of ``@expose``d methods on the threading
executor, every request verified before it is dispatched."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import oslo_messaging as messaging
from oslo_log import log as logging
from oslo_messaging.rpc import server as messaging_server
from oslo_serialization import jsonutils

from novalet import auth, exception
from novalet import context as novalet_context
from novalet.rpc import errors, internals, serializer, transport

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def expose(fn: F) -> F:
    """Mark a manager method callable over RPC; returns it unchanged.

    Only marked methods are reachable: the managers' lifecycle hooks and
    periodic tasks are not endpoints.
    """
    fn.novalet_rpc_exposed = True  # type: ignore[attr-defined]
    return fn


class _ExpectedErrors:
    """Endpoint proxy: exposes the ``@expose`` methods only; their errors
    leave as ``_server_errors`` says: novalet errors go back to the caller
    without a traceback in the server's log (they are the caller's fault or
    an answer, not a server bug); anything else is logged once, by
    oslo.messaging, with its traceback, and reaches the caller as
    ``RemoteError``."""

    def __init__(self, endpoint: Any, in_process: bool) -> None:
        self._endpoint = endpoint
        self._in_process = in_process
        self.target = getattr(endpoint, "target", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name.startswith("oslo_"):
            raise AttributeError(name)
        attr = getattr(self._endpoint, name, None)
        in_process = self._in_process
        if not getattr(attr, "novalet_rpc_exposed", False):
            endpoint = type(self._endpoint).__name__

            def refuse(*args: Any, **kwargs: Any) -> Any:
                with errors.server_errors(in_process):
                    raise exception.MethodNotRemotable(objname=endpoint,
                                                       method=name)

            return refuse
        assert attr is not None  # not exposed: refused above

        def call(*args: Any, **kwargs: Any) -> Any:
            with errors.server_errors(in_process):
                return attr(*args, **kwargs)

        return call


class Observer:
    """What a server tells its caller about each request (the services'
    metrics): ``verified(principal)`` before it is dispatched,
    ``refused()`` when its signature was not accepted."""

    def verified(self, principal: Any) -> None:
        """One request whose caller verified as ``principal``."""

    def refused(self) -> None:
        """One request refused before dispatch (its signature)."""


class Server:
    """An RPC server on the threading executor; ``start``/``stop``/``wait``.

    ``novalet.exception`` errors raised by the endpoints are expected:
    returned to the caller as their class, never logged as tracebacks.
    ``entities`` rebuilds what arrives (novalet's services pass the objects'
    serializer; the conductor's one runs the objects locally, never asking
    an indirection API); ``observer`` hears of every request.
    """

    def __init__(self, topic: str, endpoints: Sequence[Any], *,
                 server: str, version: str = "1.0",
                 entities: messaging.Serializer | None = None,
                 observer: Observer | None = None, conf: Any = None) -> None:
        target = messaging.Target(topic=topic, server=server, version=version)
        rpc_transport = transport.get_transport()
        in_process = transport.in_process()
        wrapped = [_ExpectedErrors(e, in_process) for e in endpoints]
        #: Verifies every request before it is dispatched (novalet.auth).
        self.verifier = auth.verifier(
            conf if conf is not None else rpc_transport.conf, topic=topic,
            server=server, in_process=in_process)
        verifier = self.verifier
        seen = observer if observer is not None else Observer()

        def server_cls(transport: Any, target: Any, dispatcher: Any,
                       executor: Any) -> Any:
            return messaging_server.RPCServer(
                transport, target,
                _VerifyingDispatcher(dispatcher, verifier, seen, in_process),
                executor)

        self._server = messaging.get_rpc_server(
            rpc_transport, target, wrapped,
            serializer=serializer.RequestContextSerializer(
                entities, expected_errors=True),
            access_policy=messaging.DefaultRPCAccessPolicy,
            server_cls=server_cls)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def wait(self) -> None:
        self._server.wait()


class _VerifyingDispatcher:
    """Wraps the server's ``RPCDispatcher``: every incoming request is
    verified (``novalet.auth``) before the dispatcher looks at it, so a
    refused one never reaches the serializer or an endpoint; the verified
    principal travels to ``deserialize_context`` with the request's context
    (``serializer.VerifiedContext``), and the arguments are rebuilt once,
    after the check. A signed call that asks for an authenticated reply
    gets its result or error sealed with the key its request verified with
    (``_sealed``; ``novalet.auth.signing``).

    (oslo.messaging's servers call ``dispatcher.dispatch(incoming)``, whose
    ``message`` and ``ctxt`` are what its ``RPCDispatcher`` reads;
    tests/functional/test_auth_wire.py checks both against the library.)"""

    def __init__(self, dispatcher: Any, verifier: Any, observer: Observer,
                 in_process: bool) -> None:
        self._dispatcher = dispatcher
        self._verifier = verifier
        self._observer = observer
        #: The server's transport runs in this process (``fake://``).
        self._in_process = in_process

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dispatcher, name)

    def dispatch(self, incoming: Any) -> Any:
        with errors.server_errors(self._in_process):
            check_shape(incoming.message, incoming.ctxt)
            try:
                principal, key = self._verifier.verify_keyed(
                    incoming.message, incoming.ctxt)
            except exception.SignatureRefused:
                self._observer.refused()
                raise
        self._observer.verified(principal)
        nonce = (auth.signing.reply_nonce(incoming.ctxt)
                 if key is not None else None)
        incoming.ctxt = serializer.VerifiedContext(
            incoming.ctxt, principal, auth.delivery_key(principal, incoming.ctxt))
        if nonce is None:
            return self._dispatcher.dispatch(incoming)
        assert key is not None
        return _sealed(key, nonce, lambda: self._dispatcher.dispatch(incoming))


def _sealed(key: bytes, nonce: str, dispatch: Callable[[], Any]) -> Any:
    """The reply to a call that asked for an authenticated one
    (``novalet.auth.signing``): its result or its error, sealed with the
    key its request verified with. An error that is no novalet answer is
    logged with its traceback here, as oslo.messaging's server would have."""
    signing = auth.signing
    try:
        result = dispatch()
    except messaging.ExpectedException as e:
        failure = e.exc_info
    except Exception:
        failure = sys.exc_info()
        LOG.exception("Exception during message handling")
    else:
        return signing.seal_reply(key, nonce, signing.REPLY_OK,
                                  jsonutils.dumps(result))
    try:
        return signing.seal_reply(key, nonce, signing.REPLY_ERROR,
                                  internals.serialize_remote_exception(failure))
    finally:
        del failure


#: How deep a request's message may nest lists and dicts. An object's
#: primitive takes three levels and its nested objects three more each;
#: nothing novalet sends comes near, and rebuilding a deeper one recursively
#: would run out of stack (RecursionError) before any check saw it.
MAX_NESTING = 32


def check_shape(message: Any, ctxt: Any) -> None:
    """What any request must be before it is verified or rebuilt: a message
    nested at most ``MAX_NESTING`` deep (walked without recursion) and a
    context of the right types (``novalet.context.check_wire``). Raises
    ``MalformedRequest``."""
    novalet_context.check_wire(ctxt)
    if not isinstance(message, (dict, list, tuple)):
        return
    pending: list[tuple[Any, int]] = [(message, 0)]
    while pending:
        value, depth = pending.pop()
        if depth >= MAX_NESTING:
            raise exception.MalformedRequest(
                reason="arguments nested deeper than %d" % MAX_NESTING)
        # (oslo.messaging's messages are dict subclasses: not type() is.)
        for item in value.values() if isinstance(value, dict) else value:
            if isinstance(item, (dict, list, tuple)):
                pending.append((item, depth + 1))


def endpoint_target(version: str) -> Any:
    """The ``target`` attribute an endpoint class carries."""
    return messaging.Target(version=version)
