"""``novalet.rpc.Client`` reuses its prepared call contexts and version
checks, and a new version cap replaces them."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, rpc
from novalet.objects import base as objects_base


@pytest.fixture
def fake_transport(conf):
    conf("transport_url", "fake://")
    rpc.init(novalet_conf.CONF)
    yield
    rpc.cleanup()


def test_prepared_contexts_are_kept_until_the_cap_changes(fake_transport):
    client = rpc.Client("novalet-unit", "1.1", timeout=5,
                        entities=objects_base.NovaletObjectSerializer())
    first = client._prepared.context("1.1", None, None)
    assert client._prepared.context("1.1", None, None) is first
    assert client._prepared.context("1.0", None, None) is not first
    assert client._prepared.context("1.1", None, 2.0).timeout == 2.0
    assert client.can_send_version("1.1")
    client.set_version_cap("1.0")
    assert not client.can_send_version("1.1")
    assert client.can_send_version("1.0")
    capped = client._prepared.context("1.1", None, None)
    assert capped is not first
    with pytest.raises(messaging.RPCVersionCapError):
        capped.call(context.get_admin_context(), "anything")


def test_sending_retries_only_as_long_as_the_call_may_wait(conf):
    """oslo.messaging retries a send forever (the call hangs with every
    broker node down); novalet allows the reconnects whose sleeps fit in the
    call's timeout."""
    conf("transport_url", "rabbit://guest:guest@127.0.0.1:1/")
    rpc.init(novalet_conf.CONF)  # the rabbit driver registers its options
    try:
        for name, value in (("kombu_reconnect_delay", 0.5),
                            ("rabbit_retry_interval", 1),
                            ("rabbit_retry_backoff", 1),
                            ("rabbit_interval_max", 2)):
            conf(name, value, "oslo_messaging_rabbit")
        # Sleeps 1.5, 2.5, 2.5, ...: three fit in 7 s, one in 2 s.
        assert rpc.send_retries(novalet_conf.CONF, 7) == 3
        assert rpc.send_retries(novalet_conf.CONF, 2) == 1
        assert rpc.send_retries(novalet_conf.CONF, 0.1) == 1
        client = rpc.Client("novalet-unit", "1.0", timeout=7,
                        entities=objects_base.NovaletObjectSerializer())
        assert client._prepared.context(None, None, None).retry == 3
        assert client._prepared.context(None, None, 2.0).retry == 1
    finally:
        rpc.cleanup()


def test_no_retry_bound_on_other_drivers(fake_transport):
    assert rpc.send_retries(novalet_conf.CONF, 5) is None



def test_a_context_bounds_the_calls_made_with_it(fake_transport):
    """A call waits what its context's ``call_timeout`` says (a heartbeat's
    context: an answer older than the next beat is worthless), an explicit
    ``timeout`` still wins, and a context without one leaves the client's."""
    client = rpc.Client("novalet-unit-timeout", "1.0", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    bounded = context.get_admin_context().with_call_timeout(0.5)
    assert bounded.call_timeout == 0.5
    assert "call_timeout" not in bounded.to_wire()
    for ctxt, timeout, expected in ((bounded, None, 0.5), (bounded, 0.2, 0.2)):
        with pytest.raises(exception.RPCTimeout) as caught:
            client.call(ctxt, "nobody_answers", timeout=timeout)
        assert caught.value.kwargs["timeout"] == expected
    assert context.get_admin_context().call_timeout is None
    assert bounded.elevated().call_timeout == 0.5
