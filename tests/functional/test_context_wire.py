"""The request context a server receives is the one the caller sent (the
wire form leaves out defaults), over oslo.messaging's fake driver and over
RabbitMQ, through novalet's serializer."""

from __future__ import annotations

import uuid

import pytest

from novalet import conf as novalet_conf
from novalet import context, rpc
from novalet import service as novalet_service
from novalet.objects import base as objects_base


class _WhoAmI:
    target = rpc.endpoint_target("1.0")

    @rpc.expose
    def whoami(self, ctxt):
        return ctxt.to_dict()


@pytest.fixture(params=["fake", "rabbit"])
def transport(request, conf):
    if request.param == "rabbit":
        conf("transport_url", request.getfixturevalue("rabbit_vhost").url)
    else:
        conf("transport_url", "fake://")
    rpc.init(novalet_conf.CONF)
    yield
    rpc.cleanup()


def test_server_gets_the_context_the_caller_sent(transport):
    topic = "novalet-context-%s" % uuid.uuid4().hex[:8]
    server = novalet_service.rpc_server(topic, [_WhoAmI()], server="s1")
    server.start()
    try:
        client = rpc.Client(topic, "1.0", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
        for ctxt in (context.get_admin_context(),
                     context.RequestContext(
                         user_id="u1", project_id="p1", roles=["reader"],
                         read_only=True, is_admin_project=False,
                         global_request_id="req-%s" % uuid.uuid4(),
                         overwrite=False)):
            assert client.call(ctxt, "whoami") == ctxt.to_dict()
    finally:
        server.stop()
        server.wait()
