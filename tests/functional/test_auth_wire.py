"""novalet verifies a request where oslo.messaging's server hands it to its
dispatcher (``get_rpc_server``'s ``server_cls``, ``dispatcher.dispatch(
incoming)``): this checks, over the fake driver and RabbitMQ, that what the
verifier reads there is exactly the message and context oslo.messaging's own
client built and its own ``RPCDispatcher`` dispatches, so an upgrade of the
library that moves them fails here, loudly; and that a captured request sent
again as it is, or changed, never reaches the endpoint."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import oslo_messaging as messaging
import pytest

from novalet import auth, context, exception, rpc
from novalet import conf as novalet_conf
from novalet import service as novalet_service
from novalet.objects import base as objects_base

#: What oslo.messaging's client puts in a message and its RPCDispatcher reads.
MESSAGE_KEYS = ("method", "args", "version", "namespace")


class _Echo:
    target = rpc.endpoint_target("1.3")

    def __init__(self) -> None:
        self.calls: list[Any] = []
        self.delivery_keys: list[Any] = []

    @rpc.expose
    def echo(self, ctxt: Any, value: Any, other: Any = None) -> Any:
        self.calls.append((ctxt.principal, value))
        self.delivery_keys.append(ctxt.delivery_key)
        return value


@pytest.fixture(params=["fake", "rabbit"])
def served(request: Any, conf: Any) -> Any:
    if request.param == "rabbit":
        conf("transport_url", request.getfixturevalue("rabbit_vhost").url)
    else:
        conf("transport_url", "fake://")
    rpc.init(novalet_conf.CONF)
    topic = "novalet-wire-%s" % uuid.uuid4().hex[:8]
    endpoint = _Echo()
    server = novalet_service.rpc_server(topic, [endpoint], server="s1", version="1.3")
    seen: list[tuple[Any, Any]] = []
    verify = server.verifier.verify_keyed

    def spy(message: Any, ctxt: Any) -> Any:
        seen.append(({k: auth.signing.wire_form(v) if k in MESSAGE_KEYS
                      else repr(v) for k, v in message.items()},
                     auth.signing.wire_form(ctxt)))
        return verify(message, ctxt)

    server.verifier.verify_keyed = spy  # type: ignore[method-assign]
    server.start()
    try:
        yield {"topic": topic, "endpoint": endpoint, "seen": seen,
               "server": server, "kind": request.param}
    finally:
        server.stop()
        server.wait()


def test_the_server_wraps_oslo_messagings_own_dispatcher(served: Any) -> None:
    dispatcher = served["server"]._server.dispatcher
    assert isinstance(dispatcher, rpc.server._VerifyingDispatcher)
    assert type(dispatcher._dispatcher) is messaging.RPCDispatcher


def test_the_verifier_reads_what_oslo_messaging_sent(served: Any) -> None:
    client = rpc.Client(served["topic"], "1.2", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    ctxt = context.get_admin_context()
    value = {"a": [1, 2.5, None, True], "b": "t\u00e9xt", "c": {"7": "x"}}
    assert client.call(ctxt, "echo", version="1.3", server="s1",
                       value=value) == value
    (message, received), = served["seen"]
    # What oslo.messaging's client builds (_make_message) and its
    # RPCDispatcher reads: method, args, version (no namespace).
    assert {k: message[k] for k in MESSAGE_KEYS if k in message} == {
        "method": "echo", "args": {"value": value}, "version": "1.3"}, message
    # The context as serialized, the signature in it, over a broker the
    # (signed) request for an authenticated reply, nothing else but what the
    # AMQP driver adds.
    sent = rpc.RequestContextSerializer().serialize_context(ctxt)
    extra = set(received) - set(sent) - {auth.signing.FIELD}
    if served["kind"] == "rabbit":
        assert received[auth.signing.REPLY_FIELD] == auth.signing.REPLY_VERSION
        extra.discard(auth.signing.REPLY_FIELD)
    assert extra <= auth.signing.TRANSPORT_KEYS, extra
    assert {k: received[k] for k in sent} == sent
    assert received[auth.signing.FIELD]["s"] == "s1"
    assert served["endpoint"].calls == [(auth.principal.admin(), value)]
    # What names this request however often the broker delivers it: the
    # verified principal and the signed nonce, from this server only.
    assert served["endpoint"].delivery_keys == [
        auth.delivery_key(auth.principal.admin(), received)]
    assert served["endpoint"].delivery_keys[0] is not None


def _raw_client(topic: str, server: str | None = "s1") -> Any:
    """oslo.messaging's own client, sending a context dict as it is."""
    return messaging.get_rpc_client(
        rpc.get_transport(), messaging.Target(topic=topic, server=server,
                                              version="1.3"),
        serializer=messaging.NoOpSerializer(), timeout=30)


def test_a_captured_request_is_refused_again_and_changed(served: Any) -> None:
    client = rpc.Client(served["topic"], "1.3", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    client.call(context.get_admin_context(), "echo", server="s1", value=1)
    message, ctxt = served["seen"][0]
    ctxt = {k: v for k, v in ctxt.items()
            if k not in auth.signing.TRANSPORT_KEYS}
    raw = _raw_client(served["topic"])
    with pytest.raises(exception.SignatureRefused, match="replayed"):
        raw.call(copy.deepcopy(ctxt), "echo", **message["args"])
    for change in ({"value": 2}, {"value": 1, "other": None}):
        with pytest.raises(exception.SignatureRefused, match="bad signature"):
            raw.call(copy.deepcopy(ctxt), "echo", **change)
    changed = copy.deepcopy(ctxt)
    last = changed["request_id"][-1]
    changed["request_id"] = changed["request_id"][:-1] + ("1" if last == "0"
                                                          else "0")
    with pytest.raises(exception.SignatureRefused, match="bad signature"):
        raw.call(changed, "echo", **message["args"])
    # The same signature to the topic (no server), or at another version.
    with pytest.raises(exception.SignatureRefused):
        _raw_client(served["topic"], None).call(copy.deepcopy(ctxt), "echo",
                                                **message["args"])
    with pytest.raises(exception.SignatureRefused, match="bad signature"):
        raw.prepare(version="1.2").call(copy.deepcopy(ctxt), "echo",
                                        **message["args"])
    assert len(served["endpoint"].calls) == 1
    assert served["server"].verifier.refused == 6


@pytest.fixture
def metrics() -> Any:
    from novalet.metrics import registry

    assert registry.current is None
    try:
        yield registry.enable()
    finally:
        registry.disable()


def test_unsigned_requests(served: Any, conf: Any, metrics: Any) -> None:
    def counts() -> list[float]:
        return [metrics.rpc_requests.labels(caller)._value.get()
                for caller in ("local", "refused", "unsigned")]

    raw = _raw_client(served["topic"])
    if served["kind"] == "fake":
        # In-process: a caller of this process, no principal.
        assert raw.call({}, "echo", value=3) == 3
        assert served["endpoint"].calls == [(None, 3)]
        assert counts() == [1, 0, 0]
        return
    with pytest.raises(exception.SignatureRefused, match="unsigned"):
        raw.call({"is_admin": True}, "echo", value=3)
    conf("enforce", False, "auth")
    assert raw.call({"is_admin": True}, "echo", value=4) == 4
    assert served["endpoint"].calls == [(auth.principal.UNSIGNED_PRINCIPAL, 4)]
    assert served["server"].verifier.unsigned_accepted == 1
    assert counts() == [0, 1, 1]
