"""The resource tracker on the fake driver, through the conductor paths."""

from __future__ import annotations

import threading
import time

import pytest
from oslo_utils import uuidutils

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from novalet.compute import resource_tracker
from novalet.conductor import manager as conductor_manager
from novalet.objects import base as objects_base
from novalet.virt import fake

NODE = "h1-node-1"


@pytest.fixture
def driver(conf):
    conf("vcpus", 4, "fake")
    conf("memory_mb", 4096, "fake")
    conf("local_gb", 100, "fake")
    return fake.FakeDriver(novalet_conf.CONF, host="h1", nodes=2)


@pytest.fixture
def tracker(remote_path, driver):
    return resource_tracker.ResourceTracker(novalet_conf.CONF, "h1", driver,
                                            NODE)


def _instance(ctxt, vcpus=1, memory_mb=512, root_gb=10, **kw):
    inst = objects.Instance(ctxt, vcpus=vcpus, memory_mb=memory_mb,
                            root_gb=root_gb, **kw)
    inst.create()
    return inst


def _row(path):
    return path.database.query(
        "SELECT vcpus, memory_mb, local_gb, vcpus_used, memory_mb_used, "
        "local_gb_used, free_ram_mb, running_vms FROM compute_nodes "
        "WHERE hypervisor_hostname = :n", n=NODE)


def test_audit_creates_the_record_from_the_driver(tracker, remote_path, driver):
    ctxt = context.get_admin_context()
    tracker.update_available_resource(ctxt)
    assert [tuple(r) for r in _row(remote_path)] == [
        (4, 4096, 100, 0, 0, 0, 4096, 0)]
    node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "h1", NODE)
    assert node.hypervisor_type == "fake"
    assert node.cpu_allocation_ratio == 4.0


def test_unchanged_audit_sends_no_save(tracker, remote_path, monkeypatch):
    ctxt = context.get_admin_context()
    tracker.update_available_resource(ctxt)
    api = objects_base.get_indirection_api()
    calls = []
    real = api.object_action
    monkeypatch.setattr(api, "object_action", lambda c, o, m, a, k: (
        calls.append(m), real(c, o, m, a, k))[1])
    tracker.update_available_resource(ctxt)
    assert calls == []


def test_usage_counts_instances_migrations_and_orphans(tracker, remote_path,
                                                       driver):
    ctxt = context.get_admin_context()
    a = _instance(ctxt, host="h1", node=NODE, vm_state="active")
    _instance(ctxt, host="h1", node="h1-node-2", vcpus=3)  # other node
    incoming = uuidutils.generate_uuid()
    objects.Migration(ctxt, instance_uuid=incoming, source_compute="h9",
                      source_node="n9", dest_compute="h1", dest_node=NODE,
                      status="migrating", new_vcpus=2, new_memory_mb=1024,
                      new_disk_gb=5).create()
    objects.Migration(ctxt, instance_uuid=a.uuid, source_compute="h1",
                      source_node=NODE, dest_compute="h2", dest_node="n2",
                      status="migrating", old_vcpus=1, old_memory_mb=512,
                      old_disk_gb=10).create()  # a is already counted here
    driver.add_orphan(NODE, uuidutils.generate_uuid(), vcpus=1, memory_mb=256,
                      disk_gb=1)
    tracker.update_available_resource(ctxt)
    # a: 1/512/10, incoming migration: 2/1024/5, orphan: 1/256/1
    assert [tuple(r) for r in _row(remote_path)] == [
        (4, 4096, 100, 4, 1792, 16, 4096 - 1792, 2)]
    assert len(tracker.orphans) == 1
    node = tracker.compute_node
    assert node.stats["num_instances"] == "1" and node.stats["num_orphans"] == "1"


def test_missing_keys_are_named(tracker, driver, monkeypatch):
    view = driver.get_available_resource(NODE)
    del view["memory_mb"], view["cpu_info"]
    monkeypatch.setattr(driver, "get_available_resource", lambda n: view)
    with pytest.raises(exception.InvalidResourceView) as info:
        tracker.update_available_resource(context.get_admin_context())
    assert "memory_mb" in info.value.message and "cpu_info" in info.value.message


def test_claims_honour_allocation_ratios(tracker, remote_path, conf):
    ctxt = context.get_admin_context()
    conf("cpu_allocation_ratio", 2.0, "compute")
    conf("ram_allocation_ratio", 1.0, "compute")
    tracker.update_available_resource(ctxt)
    first = _instance(ctxt, vcpus=6, memory_mb=2048)
    tracker.instance_claim(ctxt, first)  # 6 of 8 vcpus (4 x 2.0)
    assert objects.Instance.get_by_uuid(ctxt, first.uuid).node == NODE
    too_big = _instance(ctxt, vcpus=3, memory_mb=4000)
    with pytest.raises(exception.ComputeResourcesUnavailable) as info:
        tracker.instance_claim(ctxt, too_big)
    assert "vcpus: 3 requested, 2 of 8 free" in info.value.message
    assert "memory_mb: 4000 requested, 2048 of 4096 free" in info.value.message
    assert objects.Instance.get_by_uuid(ctxt, too_big.uuid).host is None
    assert [tuple(r)[3:5] for r in _row(remote_path)] == [(6, 2048)]
    fits = _instance(ctxt, vcpus=2, memory_mb=2048)
    claim = tracker.instance_claim(ctxt, fits)
    assert [tuple(r)[3:5] for r in _row(remote_path)] == [(8, 4096)]
    claim.abort()
    assert [tuple(r)[3:5] for r in _row(remote_path)] == [(6, 2048)]
    assert objects.Instance.get_by_uuid(ctxt, fits.uuid).node is None


def test_failed_work_inside_a_claim_aborts_it(tracker, remote_path):
    ctxt = context.get_admin_context()
    tracker.update_available_resource(ctxt)
    inst = _instance(ctxt, vcpus=2)
    with pytest.raises(RuntimeError):
        with tracker.instance_claim(ctxt, inst):
            raise RuntimeError("spawn failed")
    assert [tuple(r)[3] for r in _row(remote_path)] == [0]


class HangingConductor(conductor_manager.ConductorManager):
    """A conductor that stops answering ComputeNode.save while ``hang`` is set."""

    def __init__(self, conf):
        super().__init__(conf)
        self.hang = threading.Event()
        self.release = threading.Event()

    @rpc.expose
    def object_action(self, context_, objinst, objmethod, args, kwargs,
                      object_versions=None):
        if (self.hang.is_set() and objmethod == "save"
                and objinst.obj_name() == "ComputeNode"):
            self.release.wait(30)
        return super().object_action(context_, objinst, objmethod, args,
                                     kwargs, object_versions)


def test_lock_is_released_when_the_conductor_stops_answering(conf, sqlite_db,
                                                             driver):
    """The seed's failure: the conductor hangs during an update. The lock
    must come free within rpc_response_timeout and a claim then succeed."""
    timeout = 2
    conf("rpc_response_timeout", timeout)
    conf("topic", "conductor-lock-test", "conductor")
    conf("indirection", "rpc", "objects")
    rpc.init(novalet_conf.CONF)
    conductor = HangingConductor(novalet_conf.CONF)
    server = rpc.Server("conductor-lock-test", [conductor], server="c",
                        objects_local=True)
    server.start()
    try:
        indirection.configure(novalet_conf.CONF)
        ctxt = context.get_admin_context()
        tracker = resource_tracker.ResourceTracker(novalet_conf.CONF, "h1",
                                                   driver, NODE)
        tracker.update_available_resource(ctxt)
        driver.add_orphan(NODE, uuidutils.generate_uuid(), vcpus=1)
        conductor.hang.set()
        outcome = {}

        def audit():
            try:
                tracker.update_available_resource(ctxt)
            except exception.RPCTimeout as e:
                outcome["error"] = e

        started = time.monotonic()
        thread = threading.Thread(target=audit)
        thread.start()
        time.sleep(0.5)  # the audit now waits on the conductor, lock held
        inst = _instance(ctxt, vcpus=1)
        conductor.hang.clear()  # the claim's own calls are answered
        claim_started = time.monotonic()
        tracker.instance_claim(ctxt, inst)
        claimed_after = time.monotonic() - started
        thread.join(30)
        assert isinstance(outcome.get("error"), exception.RPCTimeout)
        # The claim waited for the lock, which the failed call released.
        assert time.monotonic() - claim_started < timeout + 5
        assert claimed_after >= timeout * 0.9
        used = "SELECT vcpus_used FROM compute_nodes"
        assert sqlite_db.query(used)[0][0] == 2  # the claim plus the orphan
        # The hung call may still land late with its stale view; the next
        # audit puts the record right again.
        conductor.release.set()
        time.sleep(0.5)
        tracker.update_available_resource(ctxt)
        assert sqlite_db.query(used)[0][0] == 2
    finally:
        conductor.release.set()
        server.stop()
        server.wait()
