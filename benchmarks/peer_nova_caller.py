"""The Nova side of ``peer_nova.py``: a caller process run by the Nova 34
virtualenv's Python (it imports Nova and the libraries of that venv, never
novalet). Not a benchmark itself (no ``__main__``): ``peer_nova.py`` starts it
as ``python -c "... peer_nova_caller.run(SPEC, CALLERS, INDEX)"``.

Set up as ``nova-compute`` is (nova/cmd/compute.py): Nova's configuration
and RPC transport, its objects registered, the main database blocked
(``nova.db.main.api.DISABLE_DB_ACCESS``) and ``NovaObject.indirection_api =
ConductorAPI()``, so every remotable call goes to ``nova-conductor``. Each
caller is a host of its own: a ``Service`` and a ``ComputeNode`` created
through the conductor. Its cases:

- ``nova raw``: oslo.messaging ``call()`` of this side's ComputeNode
  primitive to the echo server of ``object_rpc.py`` (the same broker, the
  same echo process as novalet's raw case), from this process;
- ``nova save()``: ``ComputeNode.save()`` of ``memory_mb_used``;
- ``nova beat``: the heartbeat of Nova's db servicegroup driver
  (``_report_state``: ``report_count += 1`` and ``Service.save()``).

It then serves the cases over the line protocol of ``callers.py``.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from typing import Any

import callers as callers_mod


def _wait_for_conductor(ctxt: Any, timeout: float = 120.0) -> None:
    """Nova's own ping (``BaseAPI.ping``, served by every Nova service) until
    ``nova-conductor`` answers: a call sent before its queue exists is lost."""
    import oslo_messaging as messaging
    from nova import baserpc
    from nova.conductor import rpcapi as conductor_rpcapi

    api = baserpc.BaseAPI(conductor_rpcapi.RPC_TOPIC)
    deadline = time.monotonic() + timeout
    while True:
        try:
            api.ping(ctxt, "peer_nova", timeout=3)
            return
        except messaging.MessagingTimeout:
            if time.monotonic() > deadline:
                raise


def run(spec_path: str, callers: str, index: str) -> int:
    with open(spec_path) as f:
        spec = json.load(f)
    answers, sys.stdout = sys.stdout, sys.stderr  # stdout: the answers only

    from nova import monkey_patch
    monkey_patch.patch(backend="threading")  # as nova/cmd/compute.py, first
    import nova.conf
    import nova.db.main.api
    import oslo_messaging as messaging
    from nova import config, context, objects
    from nova.conductor import rpcapi as conductor_rpcapi
    from nova.objects import base as objects_base

    config.parse_args([sys.argv[0], "--config-file", spec["nova_config"]])
    objects.register_all()
    nova.db.main.api.DISABLE_DB_ACCESS = True
    objects_base.NovaObject.indirection_api = conductor_rpcapi.ConductorAPI()
    # N callers of one process wait for replies at once, by design.
    logging.getLogger("oslo_messaging._drivers.amqpdriver").addFilter(
        lambda record: not str(record.msg).startswith("Number of call queues"))

    ctxt = context.get_admin_context()
    _wait_for_conductor(ctxt)
    transport = messaging.get_rpc_transport(nova.conf.CONF, url=spec["url"])
    raw_client = messaging.get_rpc_client(
        transport, messaging.Target(exchange=spec["echo_exchange"],
                                    topic=spec["echo_topic"], version="1.0"), timeout=60)
    serializer = objects_base.NovaObjectSerializer()
    counter = itertools.count(1)  # next() is atomic under the GIL
    calls: dict[str, list[Any]] = {"nova raw": [], "nova save()": [], "nova beat": []}
    sizes = []
    for i in range(int(callers)):
        host = "nova-bench-%s-%d" % (index, i)
        service = objects.Service(ctxt, host=host, binary="nova-compute", topic="compute")
        service.create()  # through nova-conductor
        node = objects.ComputeNode(
            ctxt, host=host, hypervisor_hostname=host, service_id=None,
            vcpus=16, memory_mb=65536, local_gb=1000, vcpus_used=0, memory_mb_used=0,
            local_gb_used=0, free_ram_mb=65536, free_disk_gb=1000, current_workload=0,
            running_vms=0, disk_available_least=1000, hypervisor_type="fake",
            hypervisor_version=1, cpu_info="{}", host_ip="192.0.2.1",
            supported_hv_specs=[], stats={"num_instances": "0"}, mapped=0,
            cpu_allocation_ratio=16.0, ram_allocation_ratio=1.5, disk_allocation_ratio=1.0)
        node.create()  # through nova-conductor
        primitive = serializer.serialize_entity(ctxt, node)
        sizes.append(len(json.dumps(primitive)))

        def save(node: Any = node) -> None:
            node.memory_mb_used = next(counter)
            node.save()

        def beat(service: Any = service) -> None:
            service.report_count += 1
            service.save()

        calls["nova raw"].append(lambda p=primitive: raw_client.call({}, "echo", payload=p))
        calls["nova save()"].append(save)
        calls["nova beat"].append(beat)
    with open(os.path.join(spec["tmp"], "nova-caller-%s.json" % index), "w") as f:
        json.dump({"primitive_bytes": sizes[0], "hosts": int(callers)}, f)
    try:
        return callers_mod.serve(calls, answers)
    finally:
        transport.cleanup()
