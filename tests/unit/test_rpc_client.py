"""``novalet.rpc.Client`` reuses its prepared call contexts and version
checks, and a new version cap replaces them."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from novalet import conf as novalet_conf
from novalet import context, rpc


@pytest.fixture
def fake_transport(conf):
    conf("transport_url", "fake://")
    rpc.init(novalet_conf.CONF)
    yield
    rpc.cleanup()


def test_prepared_contexts_are_kept_until_the_cap_changes(fake_transport):
    client = rpc.Client("novalet-unit", "1.1", timeout=5)
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
