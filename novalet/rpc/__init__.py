"""The one package that knows oslo.messaging (``errors``: how errors
cross; ``startup``: the start-up checks of the transport).

It owns the transport (``[DEFAULT] transport_url``), the serializer that puts
objects and the request context on the wire, RPC clients and servers on the
threading executor, and the list of exception modules allowed to cross: an
error from ``novalet.exception`` raised by a server is re-raised by the caller
as the same class; anything else, Python's builtins included, arrives as
``oslo_messaging.RemoteError`` (see ``novalet.exception``). A timeout or an
undeliverable call leaves a client as ``RPCTimeout`` / ``RPCUnavailable``.

Requests are signed by a client whose process holds a key and verified by
every server before any argument is rebuilt (``novalet.auth``): the client
serializes the arguments and the context itself, signs them as they travel,
and hands oslo.messaging the wire form (``_Signed``); the server's dispatcher
is wrapped (``get_rpc_server``'s public ``server_cls``: a server whose
dispatcher verifies first) and the verified principal reaches the request
context through ``RequestContextSerializer.deserialize_context``.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import kombu.exceptions
import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging
from oslo_messaging.rpc import server as messaging_server

from novalet import auth, exception
from novalet import context as novalet_context
from novalet.metrics import conductor as conductor_metrics
from novalet.metrics import rpc as rpc_metrics
from novalet.objects import base as objects_base
from novalet.rpc import errors
from novalet.rpc.errors import (  # the package's public names
    errors_as_on_the_wire as errors_as_on_the_wire,
)
from novalet.rpc.errors import (
    remote_form as remote_form,
)
from novalet.rpc.errors import (
    wire_roundtrip as wire_roundtrip,
)
from novalet.rpc.startup import IN_PROCESS_TRANSPORTS
from novalet.rpc.startup import (  # the package's public names
    STARTUP_CHECK_TOPIC as STARTUP_CHECK_TOPIC,
)
from novalet.rpc.startup import (
    check_auth as check_auth,
)
from novalet.rpc.startup import (
    check_broker as check_broker,
)
from novalet.rpc.startup import (
    is_in_process as is_in_process,
)
from novalet.rpc.startup import (
    masked_transport_url as masked_transport_url,
)

LOG = logging.getLogger(__name__)

ALLOWED_EXMODS = errors.ALLOWED_EXMODS

_lock = threading.Lock()
_transport: Any = None
_transport_name: str | None = None
_local = threading.local()


@contextlib.contextmanager
def call_timeout(seconds: float) -> Iterator[None]:
    """Calls made by this thread inside the block wait at most ``seconds``
    (e.g. a heartbeat: an answer older than the next beat is worthless)."""
    previous = getattr(_local, "timeout", None)
    _local.timeout = seconds
    try:
        yield
    finally:
        _local.timeout = previous


def init(conf: cfg.ConfigOpts) -> None:
    """Create the process's transport from ``conf.transport_url`` and read
    its keys (``novalet.auth.configure``: raises ``AuthKeyError`` or
    ``ConfigurationError`` for a key file that cannot be used)."""
    global _transport, _transport_name
    auth.configure(conf)
    with _lock:
        if _transport is None:
            _transport = messaging.get_rpc_transport(
                conf, allowed_remote_exmods=ALLOWED_EXMODS)
            _transport_name = messaging.TransportURL.parse(
                conf, conf.transport_url).transport


def cleanup() -> None:
    """Close the transport (at stop, and between tests)."""
    global _transport
    with _lock:
        transport, _transport = _transport, None
    auth.reset()
    if transport is not None:
        transport.cleanup()


def _in_process_transport() -> bool:
    """Whether the process's transport runs in this process (``fake://``)."""
    return _transport_name in IN_PROCESS_TRANSPORTS


def get_transport() -> Any:
    if _transport is None:
        raise exception.ConfigurationError(
            reason="novalet.rpc.init(conf) was not called")
    return _transport


class RequestContextSerializer(messaging.Serializer):
    """Objects via ``NovaletObjectSerializer``; contexts as dicts.

    With ``expected_errors`` (servers), an error in what arrives is marked
    expected, so the server replies with it without logging a traceback.
    """

    def __init__(self, expected_errors: bool = False,
                 objects_local: bool = False) -> None:
        self._base = objects_base.NovaletObjectSerializer()
        self._expected_errors = expected_errors
        self._objects_local = objects_local

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        return self._base.serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if self._base.is_plain(entity):
            return entity
        try:
            if self._objects_local:
                # The conductor itself: an object too new is refused here,
                # never sent back out for a backport.
                with objects_base.run_locally():
                    return self._base.deserialize_entity(ctxt, entity)
            return self._base.deserialize_entity(ctxt, entity)
        except Exception as e:
            if self._objects_local and isinstance(e, exception.NovaletException):
                # the conductor refuses the call
                conductor_metrics.refused_before_dispatch(
                    entity, objects_base.NovaletObject.OBJ_SERIAL_NAMESPACE)
            if not self._expected_errors:
                raise
            with errors.server_errors(_in_process_transport()):
                raise

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        if isinstance(ctxt, novalet_context.RequestContext):
            return ctxt.to_wire()
        return ctxt.to_dict()  # type: ignore[no-any-return]

    def deserialize_context(self, ctxt: dict[str, Any]) -> Any:
        verified = getattr(_verified, "principal", _NOT_VERIFIED)
        if not isinstance(ctxt, dict):
            context = novalet_context.get_admin_context()
        else:
            context = novalet_context.RequestContext.from_dict(ctxt)
        if verified is not _NOT_VERIFIED:
            # What this server's dispatcher verified: the only source of a
            # principal (the wire's is_admin and roles are not believed).
            context.set_principal(verified)
            context.delivery_key = getattr(_verified, "delivery", None)
        return context


class _Signed:
    """A signed request's context as oslo.messaging carries it: the
    caller's context (results are rebuilt with it) and the wire form of the
    context, signature included (``_ClientSerializer``)."""

    __slots__ = ("context", "wire")

    def __init__(self, context: Any, wire: dict[str, Any]) -> None:
        self.context = context
        self.wire = wire


class _ClientSerializer(RequestContextSerializer):
    """A client's serializer: a signed request arrives already serialized
    (``_Signed``) and passes as it is."""

    def serialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is _Signed:
            return entity
        return super().serialize_entity(ctxt, entity)

    def deserialize_entity(self, ctxt: Any, entity: Any) -> Any:
        if type(ctxt) is _Signed:
            ctxt = ctxt.context
        return super().deserialize_entity(ctxt, entity)

    def serialize_context(self, ctxt: Any) -> dict[str, Any]:
        if type(ctxt) is _Signed:
            return ctxt.wire
        return super().serialize_context(ctxt)


#: The principal the dispatcher of this thread verified for the request it
#: is dispatching (``_VerifyingDispatcher``).
_verified = threading.local()
_NOT_VERIFIED: Any = object()


def send_retries(conf: Any, timeout: float) -> int | None:
    """How many reconnect attempts a call may make to *send* within
    ``timeout`` seconds (oslo.messaging's ``retry``; None: no limit).

    oslo.messaging bounds only the wait for the reply by the timeout; with
    every broker node down, sending retries forever (``retry=None``) and the
    call hangs. The rabbit driver sleeps ``kombu_reconnect_delay`` plus
    ``rabbit_retry_interval`` (growing by ``rabbit_retry_backoff`` up to
    ``rabbit_interval_max``) between attempts: this counts the attempts whose
    sleeps fit in ``timeout``, at least one.
    """
    try:
        if messaging.TransportURL.parse(
                conf, conf.transport_url).transport != "rabbit":
            return None
        rabbit = conf.oslo_messaging_rabbit
        delay = float(rabbit.kombu_reconnect_delay)
        interval = float(rabbit.rabbit_retry_interval)
        step = float(rabbit.rabbit_retry_backoff)
        longest = float(rabbit.rabbit_interval_max)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError,
            messaging.InvalidTransportURL):
        return None
    attempts, slept = 0, 0.0
    while attempts < 1000:
        slept += delay + min(interval + attempts * step, longest)
        if slept > timeout:
            break
        attempts += 1
    return max(1, attempts)


class _Prepared:
    """One oslo.messaging client (one version cap) and what was prepared
    from it: replaced as a whole when the cap changes, so a call never
    mixes the old cap's answers with the new client."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.conf = client.transport.conf
        self.contexts: dict[tuple[Any, ...], Any] = {}
        self.sendable: dict[str, bool] = {}

    def context(self, version: str | None, server: str | None,
                timeout: float | None) -> Any:
        key = (version, server, timeout)
        prepared = self.contexts.get(key)
        if prepared is None:
            if len(self.contexts) >= 64:  # a few (version, server, timeout)
                self.contexts.clear()     # are in use; never unbounded
            kwargs: dict[str, Any] = {}
            if version is not None:
                kwargs["version"] = version
            if server is not None:
                kwargs["server"] = server
            if timeout is not None:
                kwargs["timeout"] = timeout
            retry = send_retries(
                self.conf, timeout or self.client.timeout
                or self.conf.rpc_response_timeout)
            if retry is not None:
                kwargs["retry"] = retry
            prepared = self.contexts[key] = (
                self.client.prepare(**kwargs) if kwargs else self.client)
        return prepared

    def can_send_version(self, version: str) -> bool:
        # oslo.messaging prepares a new call context to answer.
        sendable = self.sendable.get(version)
        if sendable is None:
            sendable = self.sendable[version] = bool(
                self.client.can_send_version(version))
        return sendable


class Client:
    """An RPC client for one topic; oslo.messaging errors leave as novalet ones."""

    def __init__(self, topic: str, version: str, *, server: str | None = None,
                 version_cap: str | None = None,
                 timeout: float | None = None) -> None:
        self.topic = topic
        self.timeout = timeout
        self._target = messaging.Target(topic=topic, version=version,
                                        server=server)
        self._serializer = _ClientSerializer()
        self._prepared = self._make(version_cap)

    def _make(self, version_cap: str | None) -> _Prepared:
        return _Prepared(messaging.get_rpc_client(
            get_transport(), self._target, version_cap=version_cap,
            serializer=self._serializer, timeout=self.timeout))

    def _sign(self, ctxt: Any, method: str, version: str | None,
              server: str | None, kwargs: dict[str, Any]
              ) -> tuple[Any, dict[str, Any]]:
        """The context and arguments to hand oslo.messaging: as they are
        when this process does not sign, else their signed wire form."""
        signer = auth.signer()
        if signer is None:
            return ctxt, kwargs
        ser = self._serializer
        wire_ctxt = auth.signing.wire_form(ser.serialize_context(ctxt))
        wire_args = auth.signing.wire_form(
            {k: ser.serialize_entity(ctxt, v) for k, v in kwargs.items()})
        wire_ctxt[auth.signing.FIELD] = signer.sign(
            method=method, version=version or self._target.version,
            namespace=self._target.namespace, topic=self.topic,
            server=server if server is not None else self._target.server,
            args=wire_args, context=wire_ctxt)
        return _Signed(ctxt, wire_ctxt), wire_args

    @property
    def version_cap(self) -> str | None:
        return self._prepared.client.version_cap  # type: ignore[no-any-return]

    def set_version_cap(self, version_cap: str | None) -> None:
        """Change the cap (rolling upgrades: the peers' versions changed)."""
        if version_cap != self.version_cap:
            self._prepared = self._make(version_cap)

    def can_send_version(self, version: str) -> bool:
        return self._prepared.can_send_version(version)

    def call(self, ctxt: Any, method: str, *, version: str | None = None,
             server: str | None = None, timeout: float | None = None,
             **kwargs: Any) -> Any:
        if timeout is None:
            timeout = getattr(_local, "timeout", None)
        cctxt = self._prepared.context(version, server, timeout)
        ctxt, kwargs = self._sign(ctxt, method, version, server, kwargs)
        try:
            return cctxt.call(ctxt, method, **kwargs)
        except messaging.MessagingTimeout:
            raise exception.RPCTimeout(topic=self.topic, method=method,
                                       timeout=timeout or self.timeout)
        except (messaging.MessageDeliveryFailure,
                kombu.exceptions.OperationalError) as e:
            # (kombu's: a new pooled connection that could not be made within
            # the call's bounded send retries, see send_retries)
            raise exception.RPCUnavailable(topic=self.topic, method=method,
                                           reason=e)
        except messaging.RemoteError as e:
            if e.exc_type == "UnsupportedVersion":
                # The server's dispatcher refused the version before any
                # endpoint saw the call: nothing ran.
                raise exception.UnsupportedRPCVersion(
                    topic=self.topic, method=method,
                    version=version or self._target.version)
            raise

    def cast(self, ctxt: Any, method: str, *, version: str | None = None,
             server: str | None = None, **kwargs: Any) -> None:
        cctxt = self._prepared.context(version, server, None)
        ctxt, kwargs = self._sign(ctxt, method, version, server, kwargs)
        try:
            cctxt.cast(ctxt, method, **kwargs)
        except (messaging.MessageDeliveryFailure,
                kombu.exceptions.OperationalError) as e:
            raise exception.RPCUnavailable(topic=self.topic, method=method,
                                           reason=e)


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

    def __init__(self, endpoint: Any) -> None:
        self._endpoint = endpoint
        self.target = getattr(endpoint, "target", None)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name.startswith("oslo_"):
            raise AttributeError(name)
        attr = getattr(self._endpoint, name, None)
        in_process = _in_process_transport()
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


class Server:
    """An RPC server on the threading executor; ``start``/``stop``/``wait``.

    ``novalet.exception`` errors raised by the endpoints are expected:
    returned to the caller as their class, never logged as tracebacks.
    ``objects_local`` (the conductor): objects arriving are rebuilt without
    asking any indirection API, even if this process has one.
    """

    def __init__(self, topic: str, endpoints: Sequence[Any], *,
                 server: str, version: str = "1.0",
                 objects_local: bool = False, conf: Any = None) -> None:
        target = messaging.Target(topic=topic, server=server, version=version)
        wrapped = [_ExpectedErrors(e) for e in endpoints]
        transport = get_transport()
        #: Verifies every request before it is dispatched (novalet.auth).
        self.verifier = auth.verifier(
            conf if conf is not None else transport.conf, topic=topic,
            server=server, in_process=_in_process_transport())
        verifier = self.verifier

        def server_cls(transport: Any, target: Any, dispatcher: Any,
                       executor: Any) -> Any:
            return messaging_server.RPCServer(
                transport, target, _VerifyingDispatcher(dispatcher, verifier),
                executor)

        self._server = messaging.get_rpc_server(
            transport, target, wrapped,
            serializer=RequestContextSerializer(expected_errors=True,
                                                objects_local=objects_local),
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
    principal is handed to ``deserialize_context`` in this thread.

    (oslo.messaging's servers call ``dispatcher.dispatch(incoming)``, whose
    ``message`` and ``ctxt`` are what its ``RPCDispatcher`` reads;
    tests/functional/test_auth_wire.py checks both against the library.)"""

    def __init__(self, dispatcher: Any, verifier: Any) -> None:
        self._dispatcher = dispatcher
        self._verifier = verifier

    def __getattr__(self, name: str) -> Any:
        return getattr(self._dispatcher, name)

    def dispatch(self, incoming: Any) -> Any:
        in_process = _in_process_transport()
        with errors.server_errors(in_process):
            try:
                principal = self._verifier.verify(incoming.message,
                                                  incoming.ctxt)
            except exception.SignatureRefused:
                rpc_metrics.refused()
                raise
        rpc_metrics.verified(principal)
        _verified.principal = principal
        _verified.delivery = auth.delivery_key(principal, incoming.ctxt)
        try:
            return self._dispatcher.dispatch(incoming)
        finally:
            _verified.principal = _NOT_VERIFIED
            _verified.delivery = None


def endpoint_target(version: str) -> Any:
    """The ``target`` attribute an endpoint class carries."""
    return messaging.Target(version=version)

