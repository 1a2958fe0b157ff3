"""The resource tracker on the fake driver, through the conductor paths."""

from __future__ import annotations

import datetime
import threading
import time

import pytest
from oslo_utils import timeutils, uuidutils

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from novalet import service as novalet_service
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
    incoming = _instance(ctxt, host="h9", node="n9", vm_state="active")
    objects.Migration(ctxt, instance_uuid=incoming.uuid, source_compute="h9",
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
    # a: 1/512/10, incoming migration: 2/1024/5, orphan: its memory, 256
    assert [tuple(r) for r in _row(remote_path)] == [
        (4, 4096, 100, 3, 1792, 15, 4096 - 1792, 2)]
    assert len(tracker.orphans) == 1
    node = tracker.compute_node
    assert node.stats["num_instances"] == "1" and node.stats["num_orphans"] == "1"


def _migration(ctxt, instance, source, dest, status="migrating", old=(0, 0, 0),
               new=(0, 0, 0), **kw):
    migration = objects.Migration(
        ctxt, instance_uuid=instance if isinstance(instance, str)
        else instance.uuid, source_compute=source[0], source_node=source[1],
        dest_compute=dest[0], dest_node=dest[1], status=status,
        old_vcpus=old[0], old_memory_mb=old[1], old_disk_gb=old[2],
        new_vcpus=new[0], new_memory_mb=new[1], new_disk_gb=new[2], **kw)
    migration.create()
    return migration


def _used(path):
    return [tuple(r)[3:6] for r in _row(path)]


HERE = ("h1", NODE)


def test_a_resize_to_the_same_node_counts_both_flavors(tracker, remote_path):
    ctxt = context.get_admin_context()
    inst = _instance(ctxt, host="h1", node=NODE, vm_state="active",
                     vcpus=1, memory_mb=512, root_gb=10)
    _migration(ctxt, inst, HERE, HERE, migration_type="resize",
               old=(1, 512, 10), new=(2, 1024, 20))
    tracker.update_available_resource(ctxt)
    # Still on the old flavor: the new one is held as well.
    assert _used(remote_path) == [(3, 1536, 30)]
    # Resized, not yet confirmed: the old flavor is held for a revert.
    inst.vcpus, inst.memory_mb, inst.root_gb = 2, 1024, 20
    inst.save()
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(3, 1536, 30)]


def test_only_the_newest_migration_of_an_instance_counts(tracker, remote_path):
    ctxt = context.get_admin_context()
    inst = _instance(ctxt, host="h9", node="n9", vm_state="active")
    now = timeutils.utcnow()  # the records keep whole seconds
    older = _migration(ctxt, inst, ("h9", "n9"), HERE, new=(2, 1024, 5),
                       created_at=now - datetime.timedelta(minutes=2))
    _migration(ctxt, inst, ("h9", "n9"), HERE, new=(1, 256, 1),
               created_at=now - datetime.timedelta(minutes=1))
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(1, 256, 1)]
    older.status = "post-migrating"  # changed last: now the newest
    older.save()
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(2, 1024, 5)]


def test_migrations_of_deleted_or_unknown_instances_hold_nothing(
        tracker, remote_path):
    ctxt = context.get_admin_context()
    gone = _instance(ctxt, host="h9", node="n9", vm_state="active")
    _migration(ctxt, gone, ("h9", "n9"), HERE, new=(2, 1024, 5))
    gone.destroy()
    _migration(ctxt, uuidutils.generate_uuid(), ("h9", "n9"), HERE,
               new=(1, 256, 1))
    marked = _instance(ctxt, host="h9", node="n9", vm_state="deleted")
    _migration(ctxt, marked, ("h9", "n9"), HERE, new=(1, 128, 1))
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(0, 0, 0)]


def test_a_completed_migration_holds_nothing(tracker, remote_path):
    ctxt = context.get_admin_context()
    inst = _instance(ctxt, host="h9", node="n9", vm_state="active")
    live = _migration(ctxt, inst, ("h9", "n9"), HERE,
                      migration_type="live-migration", new=(1, 512, 10))
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(1, 512, 10)]
    live.status = "completed"
    live.save()
    assert objects.Migration.get_by_id(ctxt, live.id).status == "completed"
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(0, 0, 0)]


def test_orphans_are_charged_their_memory_only(tracker, remote_path, driver):
    ctxt = context.get_admin_context()
    driver.add_orphan(NODE, uuidutils.generate_uuid(), vcpus=2, memory_mb=768,
                      disk_gb=20)
    tracker.update_available_resource(ctxt)
    assert _used(remote_path) == [(0, 768, 0)]
    assert tracker.compute_node.stats["num_orphans"] == "1"


def test_reserved_host_resources_are_used_and_cannot_be_claimed(
        tracker, remote_path, conf):
    ctxt = context.get_admin_context()
    conf("reserved_host_cpus", 1)
    conf("reserved_host_memory_mb", 512)
    conf("reserved_host_disk_mb", 1025)  # counted as 2 GiB, rounded up
    conf("cpu_allocation_ratio", 1.0, "compute")
    tracker.update_available_resource(ctxt)
    assert [tuple(r) for r in _row(remote_path)] == [
        (4, 4096, 100, 1, 512, 2, 4096 - 512, 0)]
    with pytest.raises(exception.ComputeResourcesUnavailable) as info:
        tracker.instance_claim(ctxt, _instance(ctxt, vcpus=4, memory_mb=3585,
                                               root_gb=99))
    assert info.value.message.endswith(
        "vcpus: 4 requested, 3 of 3 free; memory_mb: 3585 requested, 3584 of "
        "3584 free; disk_gb: 99 requested, 98 of 98 free")
    tracker.instance_claim(ctxt, _instance(ctxt, vcpus=3, memory_mb=3584,
                                           root_gb=98))
    assert _used(remote_path) == [(4, 4096, 100)]
    assert [tuple(r)[6] for r in _row(remote_path)] == [0]  # free_ram_mb


def test_a_changed_ratio_reaches_the_record_at_the_next_audit(
        tracker, remote_path, conf):
    ctxt = context.get_admin_context()
    tracker.update_available_resource(ctxt)
    conf("cpu_allocation_ratio", 2.5, "compute")
    conf("ram_allocation_ratio", 1.5, "compute")
    tracker.update_available_resource(ctxt)
    assert [tuple(r) for r in remote_path.database.query(
        "SELECT cpu_allocation_ratio, ram_allocation_ratio, "
        "disk_allocation_ratio FROM compute_nodes")] == [(2.5, 1.5, 1.0)]


def test_a_ratio_of_zero_is_an_error_not_one(tracker, remote_path, conf,
                                             driver):
    from novalet.compute import manager as compute_manager

    ctxt = context.get_admin_context()
    tracker.update_available_resource(ctxt)
    conf("ram_allocation_ratio", 0.0, "compute")
    with pytest.raises(exception.ConfigurationError) as info:
        compute_manager.ComputeManager(novalet_conf.CONF, "h1", driver=driver)
    assert "[compute] ram_allocation_ratio must be greater than 0" in \
        info.value.message
    # Set while running (the option is mutable): audits and claims refuse.
    with pytest.raises(exception.ConfigurationError):
        tracker.update_available_resource(ctxt)
    inst = _instance(ctxt)
    with pytest.raises(exception.ConfigurationError):
        tracker.instance_claim(ctxt, inst)
    assert objects.Instance.get_by_uuid(ctxt, inst.uuid).node is None
    assert remote_path.database.query(
        "SELECT ram_allocation_ratio FROM compute_nodes")[0][0] == 1.0


def test_host_ip_is_my_ip(tracker, remote_path, conf):
    ctxt = context.get_admin_context()
    conf("my_ip", "127.0.0.9")
    tracker.update_available_resource(ctxt)
    assert remote_path.database.query(
        "SELECT host_ip FROM compute_nodes")[0][0] == "127.0.0.9"
    conf("my_ip", "127.0.0.10")
    tracker.update_available_resource(ctxt)
    assert remote_path.database.query(
        "SELECT host_ip FROM compute_nodes")[0][0] == "127.0.0.10"


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
    server = novalet_service.rpc_server("conductor-lock-test", [conductor], server="c",
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
        used = "SELECT memory_mb_used FROM compute_nodes"
        assert sqlite_db.query(used)[0][0] == 1024  # the claim, the orphan
        # The hung call may still land late with its stale view; the next
        # audit puts the record right again.
        conductor.release.set()
        time.sleep(0.5)
        tracker.update_available_resource(ctxt)
        assert sqlite_db.query(used)[0][0] == 1024
    finally:
        conductor.release.set()
        server.stop()
        server.wait()
