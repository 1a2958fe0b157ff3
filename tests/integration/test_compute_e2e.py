"""End to end with real processes on RabbitMQ and PostgreSQL: one
novalet-conductor, a fake compute with 3 nodes and a libvirt compute on
libvirt's test host, heartbeating every second. The broker is a private
node of this test's (it is restarted mid-run), never the machine's shared
one."""

from __future__ import annotations

import os
import time

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from novalet.compute import rpcapi as compute_rpcapi
from tests import processes
from tests.conftest import service_unavailable
from tests.private_rabbit import PrivateRabbitNode, PrivateRabbitUnavailable
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

LIBVIRT_HOST = """\
<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <cpu><mhz>2400</mhz><model>x86_64</model><nodes>1</nodes><sockets>1</sockets>
       <cores>4</cores><threads>2</threads><active>8</active></cpu>
  <memory>8388608</memory>
  <domain type='test'>
    <name>unknown-guest</name><uuid>33333333-3333-4333-8333-333333333333</uuid>
    <memory unit='KiB'>524288</memory><vcpu>1</vcpu><os><type>hvm</type></os>
  </domain>
</node>
"""


@pytest.fixture
def broker():
    node = PrivateRabbitNode(tag="e2e")
    try:
        node.start()
    except PrivateRabbitUnavailable as e:
        service_unavailable("private RabbitMQ node: %s" % e)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def cluster(tmp_path, broker, postgresql_db, conf):
    suffix = os.urandom(4).hex()
    common = {"transport_url": broker.url, "report_interval": 1,
              "service_down_time": 3, "periodic_fuzzy_delay": 0,
              "update_resources_interval": 2, "rpc_response_timeout": 5,
              "state_path": str(tmp_path / "state")}
    topics = {"conductor": {"topic": "conductor-" + suffix, "workers": 1},
              "compute": {"topic": "compute-" + suffix}}
    host_xml = tmp_path / "node.xml"
    host_xml.write_text(LIBVIRT_HOST)

    def config(name, extra):
        sections = {"DEFAULT": dict(common, host=name),
                    "database": {"connection": postgresql_db.url}, **topics}
        for section, values in extra.items():
            sections.setdefault(section, {}).update(values)
        return processes.write_config(str(tmp_path / (name + ".conf")), sections)

    procs = {}
    conductor_conf = config("cond", {})
    procs["cond"] = processes.ServiceProcess(
        "novalet-conductor", conductor_conf, str(tmp_path / "cond.log"))
    procs["cond"].wait_for_log("novalet-conductor started")
    procs["fake"] = processes.ServiceProcess(
        "novalet-compute", config("fakehost", {
            "compute": {"virt_driver": "fake"},
            "fake": {"nodes": 3, "vcpus": 8, "memory_mb": 8192,
                     "local_gb": 200}}),
        str(tmp_path / "fake.log"))
    procs["libvirt"] = processes.ServiceProcess(
        "novalet-compute", config("lvhost", {
            "compute": {"virt_driver": "libvirt"},
            "libvirt": {"connection_uri": "test://" + str(host_xml)}}),
        str(tmp_path / "libvirt.log"))
    for name in ("fake", "libvirt"):
        procs[name].wait_for_log("novalet-compute started")
    conf("transport_url", broker.url)
    conf("connection", postgresql_db.url, "database")
    conf("topic", topics["conductor"]["topic"], "conductor")
    conf("topic", topics["compute"]["topic"], "compute")
    conf("indirection", "rpc", "objects")
    conf("rpc_response_timeout", 10)
    conf("service_down_time", 3)
    conf("report_interval", 1)
    indirection.configure(novalet_conf.CONF)
    yield {"procs": procs, "db": postgresql_db, "host_xml": str(host_xml),
           "broker": broker}
    for proc in procs.values():
        if proc.proc.poll() is None:
            proc.stop()


def _services(sg, ctxt):
    return {(s.host, s.binary): (up, s.report_count)
            for s, up in sg.get_all(ctxt)}


def test_two_computes_and_a_conductor_keep_the_database_true(cluster):
    from novalet import servicegroup

    ctxt = context.get_admin_context()
    sg = servicegroup.API(novalet_conf.CONF)
    seen = wait_for(lambda: (s := _services(sg, ctxt)).get(
        ("fakehost", "novalet-compute"), (False,))[0]
        and s.get(("lvhost", "novalet-compute"), (False,))[0] and s,
        30, "both computes up")
    first_counts = {k: v[1] for k, v in seen.items()}
    time.sleep(3)
    later = _services(sg, ctxt)
    for key in (("fakehost", "novalet-compute"), ("lvhost", "novalet-compute")):
        assert later[key][0] and later[key][1] >= first_counts[key] + 2

    # The records equal what each driver reports.
    fake_nodes = objects.ComputeNodeList.get_by_host(ctxt, "fakehost")
    assert sorted(n.hypervisor_hostname for n in fake_nodes) == [
        "fakehost-node-1", "fakehost-node-2", "fakehost-node-3"]
    assert all((n.vcpus, n.memory_mb, n.local_gb, n.vcpus_used) == (8, 8192, 200, 0)
               for n in fake_nodes)
    import libvirt

    libvirt.registerErrorHandler(lambda *a: None, None)
    lv = libvirt.open("test://" + cluster["host_xml"])
    try:
        lv_info, lv_name = lv.getInfo(), lv.getHostname()
    finally:
        lv.close()
    [lv_node] = objects.ComputeNodeList.get_by_host(ctxt, "lvhost")
    assert lv_node.hypervisor_hostname == lv_name
    assert (lv_node.vcpus, lv_node.memory_mb) == (lv_info[2], lv_info[1])
    # The guest novalet did not make is charged its memory only (as Nova).
    assert (lv_node.vcpus_used, lv_node.memory_mb_used) == (0, 512)
    assert lv_node.stats["num_orphans"] == "1"

    # build_instance lowers the free resources; the next audit agrees.
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    for host, node in (("fakehost", "fakehost-node-2"), ("lvhost", lv_name)):
        inst = objects.Instance(ctxt, vcpus=2, memory_mb=1024, root_gb=0)
        inst.create()
        built = api.build_instance(ctxt, inst, host, node)
        assert built.vm_state == "active"
        record = objects.ComputeNode.get_by_host_and_nodename(ctxt, host, node)
        before = record.free_ram_mb
        time.sleep(3)  # at least one more audit (every 2 s)
        again = objects.ComputeNode.get_by_host_and_nodename(ctxt, host, node)
        assert again.free_ram_mb == before
        assert again.running_vms >= 1
    node2 = objects.ComputeNode.get_by_host_and_nodename(
        ctxt, "fakehost", "fakehost-node-2")
    assert (node2.vcpus_used, node2.memory_mb_used, node2.free_ram_mb) == (
        2, 1024, 8192 - 1024)
    lv_node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "lvhost", lv_name)
    assert (lv_node.vcpus_used, lv_node.memory_mb_used) == (2, 1536)

    # RabbitMQ restarted mid-run: heartbeats resume, claims are not blocked.
    broker = cluster["broker"]
    stopped = broker.ctl("stop_app", timeout=120)
    assert stopped.returncode == 0, stopped.stderr
    time.sleep(2)
    started = broker.ctl("start_app", timeout=120)
    assert started.returncode == 0, started.stderr
    back = time.monotonic()
    counts = _db_counts(cluster["db"])
    resumed = wait_for(lambda: all(
        c > counts[k] for k, c in _db_counts(cluster["db"]).items())
        and time.monotonic(), 30, "heartbeats after the broker restart")
    print("heartbeats resumed %.1fs after start_app" % (resumed - back))
    assert resumed - back <= 2 * 1 + 1.5  # 2 x report_interval, and margin
    # A call in flight across the restart may lose its message or its reply
    # (at-most-once delivery): a caller checks the instance before resending.
    inst = objects.Instance(ctxt, vcpus=1, memory_mb=256)
    inst.create()
    for _attempt in range(3):
        try:
            api.build_instance(ctxt, inst, "fakehost", "fakehost-node-3")
            break
        except exception.RPCTimeout:
            if objects.Instance.get_by_uuid(ctxt, inst.uuid).vm_state == "active":
                break
    assert objects.Instance.get_by_uuid(ctxt, inst.uuid).vm_state == "active"
    node3 = objects.ComputeNode.get_by_host_and_nodename(
        ctxt, "fakehost", "fakehost-node-3")
    assert node3.vcpus_used == 1

    # A compute killed with SIGKILL is down after service_down_time.
    cluster["procs"]["fake"].kill()
    wait_for(lambda: not _services(sg, ctxt)[("fakehost", "novalet-compute")][0],
             3 + 5, "the killed compute to be down")
    assert _services(sg, ctxt)[("lvhost", "novalet-compute")][0]

    for name in ("cond", "libvirt"):
        proc = cluster["procs"][name]
        assert proc.stop() == 0
        # Only what the broker outage explains is allowed: the outage
        # itself, and calls that timed out or could not be sent during it
        # (a call's send retries are bounded by its timeout).
        explained = ("went away", "AMQP server", "did not answer",
                     "Connection failed", "could not be delivered",
                     "Failed to publish message")
        errors = [line for line in proc.errors()
                  if not any(text in line for text in explained)]
        assert not errors, "\n".join(errors)


def _db_counts(db):
    """report_count of the computes, read straight from PostgreSQL."""
    return {host: count for host, count in db.query(
        "SELECT host, report_count FROM services "
        "WHERE \"binary\" = 'novalet-compute' AND deleted = 0")}
