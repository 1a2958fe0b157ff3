"""A compute agent in this process: its Service start sequence, the
periodic audit, and build/terminate over oslo.messaging's fake transport,
with the conductor in-process."""

from __future__ import annotations

import os

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, objects, rpc, service
from novalet.compute import manager as compute_manager
from novalet.compute import rpcapi as compute_rpcapi
from novalet.virt import fake


@pytest.fixture
def compute(conf, sqlite_db):
    conf("indirection", "inprocess", "objects")
    conf("transport_url", "fake://")
    conf("topic", "compute-%s" % os.urandom(4).hex(), "compute")
    conf("vcpus", 4, "fake")
    conf("memory_mb", 2048, "fake")
    conf("local_gb", 50, "fake")
    CONF = novalet_conf.CONF
    driver = fake.FakeDriver(CONF, host="c1", nodes=2)
    manager = compute_manager.ComputeManager(CONF, "c1", driver=driver)
    svc = service.Service(CONF, host="c1", binary="novalet-compute",
                          topic=CONF.compute.topic, manager=manager,
                          rpc_version=compute_manager.RPC_API_VERSION,
                          default_indirection="rpc", periodic_enable=False)
    svc.start()
    yield svc
    svc.stop()


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
    client = rpc.Client(novalet_conf.CONF.compute.topic, "1.0", timeout=10)
    with pytest.raises(exception.MethodNotRemotable):
        client.call(context.get_admin_context(), "update_available_resource",
                    server="c1")


def test_vanished_nodes_lose_their_records(compute):
    ctxt = context.get_admin_context()
    driver = compute.manager.driver
    driver.nodes = driver.nodes[:1] if hasattr(driver, "nodes") else None
    compute.manager.driver = fake.FakeDriver(novalet_conf.CONF, host="c1",
                                             nodes=1)
    compute.manager.update_available_resource(ctxt)
    nodes = objects.ComputeNodeList.get_by_host(ctxt, "c1")
    assert [n.hypervisor_hostname for n in nodes] == ["c1-node-1"]


def test_periodic_tasks_use_the_configured_spacing(conf, sqlite_db):
    conf("update_resources_interval", 7)
    manager = compute_manager.ComputeManager(
        novalet_conf.CONF, "c1", driver=fake.FakeDriver(novalet_conf.CONF))
    assert manager._periodic_spacing["update_available_resource"] == 7


def test_a_failing_audit_does_not_stop_the_periodic_loop(compute, caplog):
    ctxt = context.get_admin_context()
    driver = compute.manager.driver
    driver.fail_with = exception.HypervisorUnavailable(uri="fake://",
                                                       reason="gone")
    compute.periodic_tasks()  # logs, does not raise
    compute.manager.update_available_resource(ctxt)
    assert "gone" in caplog.text
    driver.fail_with = None
    compute.manager.update_available_resource(ctxt)
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "c1")) == 2


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
