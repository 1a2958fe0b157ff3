"""A compute agent in this process: its Service start sequence, the
periodic audit, and build/terminate over oslo.messaging's fake transport,
with the conductor in-process."""

from __future__ import annotations

import logging
import os
import threading
import time

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc, service
from novalet.compute import manager as compute_manager
from novalet.compute import resource_tracker
from novalet.compute import rpcapi as compute_rpcapi
from novalet.conductor import manager as conductor_manager
from novalet.objects import base as objects_base
from novalet.virt import fake
from tests.processes import wait_for


class AuditedDriver(fake.FakeDriver):
    """A fake driver that counts audits, can hold one in the middle (the
    driver is read, nothing closed yet) and notes what cleanup() saw."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.audits = 0
        self.hold = threading.Event()      # set: the next audit waits
        self.held = threading.Event()      # an audit is waiting
        self.go_on = threading.Event()     # let it finish
        self.in_audit = False
        self.cleanups = []                 # in_audit at each cleanup()

    def get_available_resource(self, nodename):
        self.in_audit = True
        try:
            self.audits += 1
            if self.hold.is_set():
                self.held.set()
                self.go_on.wait(60)
            return super().get_available_resource(nodename)
        finally:
            self.in_audit = False

    def cleanup(self):
        self.cleanups.append(self.in_audit)


@pytest.fixture
def make_compute(conf, sqlite_db):
    """Start a compute service on host c1 (two fake nodes); stopped after."""
    conf("indirection", "inprocess", "objects")
    conf("transport_url", "fake://")
    conf("topic", "compute-%s" % os.urandom(4).hex(), "compute")
    conf("vcpus", 4, "fake")
    conf("memory_mb", 2048, "fake")
    conf("local_gb", 50, "fake")
    started = []

    def make(periodic=False, driver=None):
        CONF = novalet_conf.CONF
        driver = driver or AuditedDriver(CONF, host="c1", nodes=2)
        manager = compute_manager.ComputeManager(CONF, "c1", driver=driver)
        svc = service.Service(CONF, host="c1", binary="novalet-compute",
                              topic=CONF.compute.topic, manager=manager,
                              rpc_version=compute_manager.RPC_API_VERSION,
                              default_indirection="rpc",
                              periodic_enable=periodic, periodic_fuzzy_delay=0)
        svc.start()
        started.append(svc)
        return svc

    yield make
    for svc in started:
        if isinstance(svc.manager.driver, AuditedDriver):
            svc.manager.driver.go_on.set()
        if svc.started:
            svc.stop()
        # An audit let go above must end before the database goes away.
        assert svc._periodic_lock.acquire(timeout=30), "an audit hangs"
        svc._periodic_lock.release()


@pytest.fixture
def compute(make_compute):
    return make_compute()


def test_start_registers_service_and_audits_before_listening(compute):
    ctxt = context.get_admin_context()
    record = objects.Service.get_by_host_and_binary(ctxt, "c1",
                                                    "novalet-compute")
    assert record.topic == novalet_conf.CONF.compute.topic
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert sorted(n.hypervisor_hostname for n in nodes) == ["c1-node-1",
                                                            "c1-node-2"]
    assert all(n.service_id == record.id for n in nodes)


def test_a_second_start_reuses_the_record(compute):
    ctxt = context.get_admin_context()
    first = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    again = compute._get_or_create_record(ctxt)
    assert again.id == first.id


def test_build_and_terminate_over_rpc(compute):
    ctxt = context.get_admin_context()
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    inst = objects.Instance(ctxt, vcpus=2, memory_mb=1024, root_gb=10)
    inst.create()
    built = api.build_instance(ctxt, inst, "c1", "c1-node-1")
    assert built.vm_state == "active" and built.launched_at is not None
    assert compute.manager.driver.list_guests("c1-node-1")[0]["uuid"] == inst.uuid
    node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "c1", "c1-node-1")
    assert (node.vcpus_used, node.memory_mb_used, node.local_gb_used) == (2, 1024, 10)
    # The next audit agrees with the claim.
    compute.manager.update_available_resource(ctxt)
    node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "c1", "c1-node-1")
    assert (node.vcpus_used, node.running_vms) == (2, 1)

    too_big = objects.Instance(ctxt, vcpus=1, memory_mb=4096)
    too_big.create()
    with pytest.raises(exception.ComputeResourcesUnavailable):
        api.build_instance(ctxt, too_big, "c1", "c1-node-1")
    assert objects.Instance.get_by_uuid(ctxt, too_big.uuid).vm_state == "error"

    api.terminate_instance(ctxt, built)
    with pytest.raises(exception.InstanceNotFound):
        objects.Instance.get_by_uuid(ctxt, inst.uuid)
    node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "c1", "c1-node-1")
    assert node.vcpus_used == 0
    assert compute.manager.driver.list_guests("c1-node-1") == []


def test_unknown_compute_rpc_method_is_refused(compute):
    client = rpc.Client(novalet_conf.CONF.compute.topic, "1.0", timeout=10,
                        entities=objects_base.NovaletObjectSerializer())
    with pytest.raises(exception.MethodNotRemotable):
        client.call(context.get_admin_context(), "update_available_resource",
                    server="c1")


def _used(ctxt, node="c1-node-1"):
    record = objects.ComputeNode.get_by_host_and_nodename(ctxt, "c1", node)
    return (record.vcpus_used, record.memory_mb_used, record.local_gb_used)


def test_vanished_nodes_lose_their_records_and_trackers(compute):
    ctxt = context.get_admin_context()
    manager = compute.manager
    old_tracker = manager.trackers["c1-node-2"]
    manager.driver.remove_node("c1-node-2")
    manager.update_available_resource(ctxt)
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert [n.hypervisor_hostname for n in nodes] == ["c1-node-1"]
    assert sorted(manager.trackers) == ["c1-node-1"]
    # A build aimed at the gone node is refused and holds nothing; one
    # that got its tracker before the node went is refused as well.
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    inst = objects.Instance(ctxt, vcpus=1, memory_mb=128)
    inst.create()
    with pytest.raises(exception.ComputeResourcesUnavailable):
        api.build_instance(ctxt, inst, "c1", "c1-node-2")
    late = objects.Instance(ctxt, vcpus=1, memory_mb=128)
    late.create()
    with pytest.raises(exception.ComputeResourcesUnavailable) as info:
        old_tracker.instance_claim(ctxt, late)
    assert "no longer reports" in info.value.message
    for uuid in (inst.uuid, late.uuid):
        got = objects.Instance.get_by_uuid(ctxt, uuid)
        assert (got.host, got.node) == (None, None)
    # The node that stayed is still audited.
    manager.driver.add_orphan("c1-node-1", "11111111-1111-4111-8111-111111111111",
                              memory_mb=64)
    manager.update_available_resource(ctxt)
    assert _used(ctxt) == (0, 64, 0)


def test_periodic_tasks_use_the_configured_spacing(conf, make_compute):
    # The decorator says 60 s; the configured 1 s must be what runs.
    conf("update_resources_interval", 1)
    conf("periodic_interval_max", 1)
    svc = make_compute(periodic=True)
    driver = svc.manager.driver
    first = driver.audits  # the audit before RPC listens: 2 nodes
    assert first == 2
    wait_for(lambda: driver.audits >= first + 4, 30,
             "two periodic audits of both nodes")


def test_a_failing_audit_does_not_stop_the_periodic_loop(conf, make_compute,
                                                        caplog):
    conf("update_resources_interval", 1)
    conf("periodic_interval_max", 1)
    svc = make_compute(periodic=True)
    driver = svc.manager.driver
    ctxt = context.get_admin_context()
    # Not an error the manager expects: it reaches oslo.service's loop.
    driver.fail_with = RuntimeError("hypervisor on fire")
    wait_for(lambda: caplog.text.count("hypervisor on fire") >= 2, 30,
             "two failed periodic audits")
    driver.fail_with = None
    driver.add_orphan("c1-node-1", "22222222-2222-4222-8222-222222222222",
                      memory_mb=96)
    wait_for(lambda: _used(ctxt)[1] == 96, 30,
             "a periodic audit after the failures")


def test_a_refused_build_leaves_the_instance_nowhere(compute):
    ctxt = context.get_admin_context()
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    inst = objects.Instance(ctxt, vcpus=1, memory_mb=4096)
    inst.create()
    with pytest.raises(exception.ComputeResourcesUnavailable):
        api.build_instance(ctxt, inst, "c1", "c1-node-1")
    got = objects.Instance.get_by_uuid(ctxt, inst.uuid)
    assert (got.vm_state, got.host, got.node) == ("error", None, None)


class FailingConductor(conductor_manager.ConductorManager):
    """Refuses ``<object>.<method>`` calls named in ``fail`` with a
    database error."""

    fail: set[str] = set()

    @rpc.expose
    def object_action(self, context_, objinst, objmethod, args, kwargs,
                      object_versions=None):
        if "%s.%s" % (objinst.obj_name(), objmethod) in self.fail:
            raise exception.DatabaseUnavailable(reason="injected")
        return super().object_action(context_, objinst, objmethod, args,
                                     kwargs, object_versions)


def test_a_build_whose_node_save_fails_holds_nothing(compute):
    ctxt = context.get_admin_context()
    conductor = FailingConductor(novalet_conf.CONF)
    indirection.current().manager = conductor
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    inst = objects.Instance(ctxt, vcpus=2, memory_mb=1024, root_gb=5)
    inst.create()
    conductor.fail = {"ComputeNode.save"}
    with pytest.raises(exception.DatabaseUnavailable):
        api.build_instance(ctxt, inst, "c1", "c1-node-1")
    conductor.fail = set()
    got = objects.Instance.get_by_uuid(ctxt, inst.uuid)
    assert (got.vm_state, got.host, got.node) == ("error", None, None)
    assert compute.manager.driver.list_guests("c1-node-1") == []
    tracker = compute.manager.trackers["c1-node-1"]
    assert tracker.tracked == {} and tracker.used() == resource_tracker.Usage()
    assert _used(ctxt) == (0, 0, 0)
    compute.manager.update_available_resource(ctxt)
    assert _used(ctxt) == (0, 0, 0)
    # The instance's own save failing is undone as well.
    again = objects.Instance(ctxt, vcpus=1, memory_mb=256)
    again.create()
    conductor.fail = {"ComputeNode.save"}
    with pytest.raises(exception.DatabaseUnavailable):
        tracker.instance_claim(ctxt, again)
    conductor.fail = set()
    assert objects.Instance.get_by_uuid(ctxt, again.uuid).node is None
    assert tracker.used() == resource_tracker.Usage()


def test_trackers_are_made_once_when_threads_race(compute, monkeypatch):
    made = []
    second = threading.Event()
    real = resource_tracker.ResourceTracker

    class SlowToMake(real):
        def __init__(self, *args, **kwargs):
            made.append(self)
            if len(made) > 1:
                second.set()
            second.wait(1)  # a window for the other thread to make one too
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(resource_tracker, "ResourceTracker", SlowToMake)
    got = []
    threads = [threading.Thread(target=lambda: got.append(
        compute.manager._tracker("c1-node-9"))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(made) == 1
    assert got[0] is got[1] is compute.manager.trackers["c1-node-9"]


def test_stop_waits_for_a_running_audit_before_closing_the_driver(
        conf, make_compute):
    conf("update_resources_interval", 1)
    conf("periodic_interval_max", 1)
    svc = make_compute(periodic=True)
    driver = svc.manager.driver
    driver.hold.set()
    assert driver.held.wait(30), "no periodic audit started"
    stopper = threading.Thread(target=svc.stop)
    stopper.start()
    # Give a stop that does not wait the chance to close the driver.
    wait_for_cleanup = time.monotonic() + 2
    while not driver.cleanups and time.monotonic() < wait_for_cleanup:
        time.sleep(0.05)
    driver.go_on.set()
    stopper.join(30)
    assert not stopper.is_alive()
    assert driver.cleanups == [False]  # closed once, with no audit running


def test_stop_waits_for_an_audit_no_longer_than_the_bound(conf, make_compute,
                                                          caplog):
    conf("update_resources_interval", 1)
    conf("periodic_interval_max", 1)
    conf("periodic_task_stop_timeout", 1)
    svc = make_compute(periodic=True)
    driver = svc.manager.driver
    driver.hold.set()
    assert driver.held.wait(30), "no periodic audit started"
    caplog.set_level(logging.WARNING)
    stopper = threading.Thread(target=svc.stop)
    stopper.start()
    stopper.join(30)
    assert not stopper.is_alive()  # stopped while the audit still hangs
    assert driver.cleanups == [True]
    assert "a periodic task is still running after 1s" in caplog.text


def test_a_renamed_libvirt_host_keeps_its_record(conf, sqlite_db, tmp_path,
                                                 caplog):
    from tests.conftest import service_unavailable
    from tests.unit.virt.test_libvirt import HOST_XML

    try:
        from novalet.virt.libvirt.driver import LibvirtDriver
    except ImportError as e:
        service_unavailable("libvirt-python cannot be imported: %s" % e)
    host_file = tmp_path / "node.xml"
    host_file.write_text(HOST_XML)  # 8 CPUs, a running guest of 2 vCPUs/1 GiB
    conf("indirection", "inprocess", "objects")
    conf("connection_uri", "test://%s" % host_file, "libvirt")
    conf("instances_path", str(tmp_path / "instances"))
    indirection.configure(novalet_conf.CONF)
    ctxt = context.get_admin_context()
    probe = LibvirtDriver(novalet_conf.CONF)
    [hostname] = probe.get_available_nodes()
    probe.cleanup()
    # What an earlier run under the old host name left behind.
    old = objects.ComputeNode(
        ctxt, host="lv", hypervisor_hostname="before-the-rename", vcpus=1,
        memory_mb=1, local_gb=1, hypervisor_type="test", hypervisor_version=1,
        cpu_info="{}")
    old.create()
    inst = objects.Instance(ctxt, host="lv", node="before-the-rename",
                            vcpus=3, memory_mb=256, vm_state="active")
    inst.create()
    caplog.set_level(logging.WARNING)
    driver = LibvirtDriver(novalet_conf.CONF)
    manager = compute_manager.ComputeManager(novalet_conf.CONF, "lv",
                                             driver=driver)
    try:
        manager.update_available_resource(ctxt)
        [record] = objects.ComputeNodeList.get_by_host(ctxt, "lv")
        assert (record.uuid, record.hypervisor_hostname) == (
            old.uuid, "before-the-rename")
        assert record.vcpus == 8  # audited from libvirt under the old name
        # The instance on it counts; the running guest is an orphan.
        assert (record.vcpus_used, record.memory_mb_used,
                record.running_vms) == (3, 256 + 1024, 2)
        assert "now calls itself %s: keeping its record %s" % (
            hostname, old.uuid) in caplog.text
        assert driver.get_available_nodes() == ["before-the-rename"]
    finally:
        driver.cleanup()


def _register_again(compute):
    """What the db servicegroup driver does when a beat finds the record
    gone (``DbReporter.register_again``), on this compute."""
    from novalet.servicegroup.drivers import db as db_driver

    reporter = db_driver.DbReporter("c1", compute, timeout=10, batcher=None)
    reporter.register_again()


def test_nodes_follow_a_record_registered_again(compute, sqlite_db):
    ctxt = context.get_admin_context()
    old = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    # Deleted as a release before 3 did: the nodes stay, pointing at it.
    sqlite_db.query("UPDATE services SET deleted = id WHERE id = :i", i=old.id)
    _register_again(compute)
    new = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    assert new.id != old.id
    assert compute.service_ref.id == compute.manager.service_ref.id == new.id
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert [n.service_id for n in nodes] == [new.id, new.id]


def test_nodes_deleted_with_the_service_come_back_linked(compute, caplog):
    ctxt = context.get_admin_context()
    old = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    old.destroy()  # service delete --force: the nodes go with it
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "c1")) == 0
    compute.manager.update_available_resource(ctxt)  # before the next beat
    assert "created again at the next audit" in caplog.text
    _register_again(compute)
    new = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    compute.manager.update_available_resource(ctxt)
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert sorted(n.hypervisor_hostname for n in nodes) == ["c1-node-1", "c1-node-2"]
    assert [n.service_id for n in nodes] == [new.id, new.id]


def test_nodes_never_point_at_a_deleted_record(compute):
    """No re-registration (e.g. the tooz driver, which writes no record):
    the nodes an audit creates again link to no record rather than to the
    deleted one, and to the new one once the service registers again."""
    ctxt = context.get_admin_context()
    old = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    old.destroy()
    compute.manager.update_available_resource(ctxt)  # notices the deletion
    compute.manager.update_available_resource(ctxt)  # creates them again
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert len(nodes) == 2 and [n.service_id for n in nodes] == [None, None]
    _register_again(compute)
    new = objects.Service.get_by_host_and_binary(ctxt, "c1", "novalet-compute")
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert [n.service_id for n in nodes] == [new.id, new.id]
