"""Object behaviour, one body per test, run on every call path (``path``):
local on SQLite/PostgreSQL/MariaDB, in-process conductor, fake:// RPC to a
conductor thread, and a separate novalet-conductor over RabbitMQ into
PostgreSQL."""

from __future__ import annotations

import datetime

import pytest

from novalet import context, exception, objects, upgrade

pytestmark = pytest.mark.timeout(120)


def _service(ctxt, host="h1", binary="novalet-compute"):
    svc = objects.Service(ctxt, host=host, binary=binary, topic="compute")
    svc.create()
    return svc


def _node(ctxt, host="h1", nodename="node-1", **kw):
    values = dict(host=host, hypervisor_hostname=nodename, vcpus=8,
                  memory_mb=16384, local_gb=100, hypervisor_type="fake",
                  hypervisor_version=1000, cpu_info="{}")
    values.update(kw)
    node = objects.ComputeNode(ctxt, **values)
    node.create()
    return node


def test_service_create_and_get(path):
    ctxt = context.get_admin_context()
    svc = _service(ctxt)
    assert svc.id > 0 and svc.uuid
    assert svc.obj_what_changed() == set()
    got = objects.Service.get_by_host_and_binary(ctxt, "h1", "novalet-compute")
    assert got.uuid == svc.uuid
    assert got.report_count == 0 and got.disabled is False
    assert got.version == upgrade.SERVICE_VERSION
    assert got.created_at is not None and got.created_at.tzinfo is not None
    rows = path.database.query("SELECT host, topic FROM services "
                               "WHERE host <> 'test-conductor'")
    assert [tuple(r) for r in rows] == [("h1", "compute")]


def test_service_not_found_is_typed(path):
    ctxt = context.get_admin_context()
    with pytest.raises(exception.ServiceNotFound) as info:
        objects.Service.get_by_host_and_binary(ctxt, "nohost", "novalet-compute")
    assert "nohost" in info.value.message


def test_duplicate_service_is_typed_and_writes_nothing(path):
    ctxt = context.get_admin_context()
    _service(ctxt)
    with pytest.raises(exception.ServiceBinaryExists):
        _service(ctxt)
    assert len(path.database.query("SELECT id FROM services WHERE host <> 'test-conductor'")) == 1


def test_heartbeat_moves_last_seen_up_only_when_report_count_grows(path):
    ctxt = context.get_admin_context()
    svc = _service(ctxt)
    assert svc.last_seen_up is None
    svc.report_count += 1
    svc.save()
    first = svc.last_seen_up
    assert first is not None
    assert svc.obj_what_changed() == set()
    svc.disabled = True
    svc.disabled_reason = "maintenance"
    svc.save()
    assert svc.last_seen_up == first
    again = objects.Service.get_by_id(ctxt, svc.id)
    assert again.disabled and again.disabled_reason == "maintenance"
    assert again.last_seen_up == first
    assert again.report_count == 1


def test_a_stale_report_count_never_moves_last_seen_up(path):
    """A save of a report_count that is not above the stored one (a stale
    copy of a dead service, saved late) leaves last_seen_up where it was:
    the service must not look alive."""
    ctxt = context.get_admin_context()
    svc = _service(ctxt)
    svc.report_count = 5
    svc.save()
    stale = objects.Service.get_by_id(ctxt, svc.id)
    long_ago = datetime.datetime(2020, 1, 2, 3, 4, 5)
    path.database.query("UPDATE services SET last_seen_up = :t WHERE id = :id",
                        t=long_ago, id=svc.id)
    for count in (5, 3):  # the same count, then a lower one
        stale.report_count = count
        stale.save()
        got = objects.Service.get_by_id(ctxt, svc.id)
        assert got.report_count == count
        assert got.last_seen_up == long_ago.replace(tzinfo=datetime.UTC), count
    stale.report_count = 4  # grows again: a heartbeat
    stale.save()
    assert objects.Service.get_by_id(ctxt, svc.id).last_seen_up > \
        long_ago.replace(tzinfo=datetime.UTC)


def test_report_heartbeats_beats_many_services_in_one_call(path, monkeypatch):
    from novalet.db import services as db_services

    ctxt = context.get_admin_context()
    live = [_service(ctxt, host="hb-%d" % i) for i in range(5)]
    gone = _service(ctxt, host="hb-gone")
    gone.destroy()
    ids = [s.id for s in live]

    def rows():
        return {r[0]: tuple(r[1:]) for r in path.database.query(
            "SELECT id, report_count, last_seen_up, deleted FROM services")}

    before = rows()
    # Several statements when there are many ids (chunks), on the local paths.
    monkeypatch.setattr(db_services, "HEARTBEAT_CHUNK", 2)
    missing = objects.ServiceList.report_heartbeats(
        ctxt, [ids[0], gone.id, *ids[1:], 999999])
    assert missing == [gone.id, 999999]
    after = rows()
    for i in ids:
        assert after[i][0] == before[i][0] + 1 and after[i][1] is not None
    assert after[gone.id] == before[gone.id]  # a deleted row is not touched
    objects.ServiceList.report_heartbeats(ctxt, ids)
    assert all(rows()[i][0] == before[i][0] + 2 for i in ids)
    assert objects.ServiceList.report_heartbeats(ctxt, []) == []
    with pytest.raises(exception.MalformedRequest):
        objects.ServiceList.report_heartbeats(ctxt, ["1; DROP TABLE services"])
    assert rows() == {**after, **{i: (after[i][0] + 1, rows()[i][1], 0) for i in ids}}


def test_service_list_and_destroy(path):
    ctxt = context.get_admin_context()
    a = _service(ctxt, host="a")
    _service(ctxt, host="b")
    _service(ctxt, host="b", binary="novalet-conductor")
    def hosts():
        return sorted(s.host for s in objects.ServiceList.get_all(ctxt)
                      if s.host != "test-conductor")

    assert hosts() == ["a", "b", "b"]
    computes = objects.ServiceList.get_all(ctxt, binary="novalet-compute")
    assert sorted(s.host for s in computes) == ["a", "b"]
    a.destroy()
    assert hosts() == ["b", "b"]
    with pytest.raises(exception.ServiceNotFound):
        objects.Service.get_by_id(ctxt, a.id)
    # A live row with the same host/binary can exist again after a delete.
    _service(ctxt, host="a")


def test_compute_node_crud(path):
    ctxt = context.get_admin_context()
    node = _node(ctxt, stats={"num_instances": "0"})
    got = objects.ComputeNode.get_by_host_and_nodename(ctxt, "h1", "node-1")
    assert got.id == node.id and got.stats == {"num_instances": "0"}
    got.memory_mb_used = 2048
    got.stats = {"num_instances": "1"}
    got.save()
    again = objects.ComputeNode.get_by_id(ctxt, node.id)
    assert again.memory_mb_used == 2048 and again.stats == {"num_instances": "1"}
    assert again.updated_at is not None
    _node(ctxt, nodename="node-2")
    _node(ctxt, host="h2", nodename="node-1")
    assert len(objects.ComputeNodeList.get_all(ctxt)) == 3
    assert sorted(n.hypervisor_hostname
                  for n in objects.ComputeNodeList.get_by_host(ctxt, "h1")) == ["node-1", "node-2"]
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "nohost")) == 0
    with pytest.raises(exception.ComputeHostExists):
        _node(ctxt)
    got.destroy()
    with pytest.raises(exception.ComputeHostNotFound):
        objects.ComputeNode.get_by_host_and_nodename(ctxt, "h1", "node-1")


def test_one_field_save_writes_one_column(path):
    """A save of memory_mb_used leaves a column another writer changed."""
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    path.database.query("UPDATE compute_nodes SET vcpus_used = 7 WHERE id = :id",
                        id=node.id)
    assert node.vcpus_used == 0  # our copy is stale
    node.memory_mb_used = 4096
    node.save()
    row = path.database.query(
        "SELECT vcpus_used, memory_mb_used FROM compute_nodes WHERE id = :id",
        id=node.id)[0]
    assert tuple(row) == (7, 4096)


def _instance(ctxt):
    inst = objects.Instance(ctxt, host="h1", node="node-1", vcpus=1,
                            memory_mb=128)
    inst.create()
    return inst


def _migration(ctxt):
    mig = objects.Migration(ctxt, instance_uuid=_instance(ctxt).uuid,
                            source_compute="h1", source_node="node-1",
                            dest_compute="h2", dest_node="node-2")
    mig.create()
    return mig


NOOP_SAVES = [
    # (make one, its table, a change, the error once its row is gone)
    (_node, "compute_nodes", ("memory_mb_used", 1), exception.ComputeHostNotFound),
    (_service, "services", ("report_count", 1), exception.ServiceNotFound),
    (_instance, "instances", ("vcpus", 2), exception.InstanceNotFound),
    (_migration, "migrations", ("new_vcpus", 2), exception.MigrationNotFound),
]


@pytest.mark.parametrize("make, table, change, gone", NOOP_SAVES,
                         ids=["ComputeNode", "Service", "Instance", "Migration"])
def test_noop_save_does_nothing(path, monkeypatch, make, table, change, gone):
    from novalet.objects import base

    ctxt = context.get_admin_context()
    obj = make(ctxt)
    sent = []
    api = base.get_indirection_api()
    if api is not None:
        real = api.object_action

        def spy(*args, **kwargs):
            sent.append(args[2] if len(args) > 2 else kwargs.get("objmethod"))
            return real(*args, **kwargs)

        monkeypatch.setattr(api, "object_action", spy)
    # Remove the row behind the object's back: a save that ran any SQL (or
    # reached the conductor) would now fail with its NotFound error.
    path.database.query("DELETE FROM %s WHERE id = :id" % table, id=obj.id)
    obj.save()
    assert sent == []
    setattr(obj, *change)
    with pytest.raises(gone):
        obj.save()
    assert sent == ([] if api is None else ["save"])


def test_bad_values_name_object_and_field_and_write_nothing(path):
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    with pytest.raises(exception.ObjectFieldInvalid) as info:
        node.memory_mb_used = -5
    assert "ComputeNode.memory_mb_used" in str(info.value)
    with pytest.raises(exception.ObjectFieldInvalid) as info:
        node.vcpus = "many"
    assert "ComputeNode.vcpus" in str(info.value)
    with pytest.raises(exception.ObjectFieldInvalid):
        objects.Instance(ctxt, vm_state="flying")
    with pytest.raises(exception.ObjectFieldInvalid):
        objects.Service(ctxt, disabled="maybe")
    node.save()  # nothing valid was changed
    row = path.database.query("SELECT memory_mb_used, vcpus FROM compute_nodes")[0]
    assert tuple(row) == (0, 8)


def test_instances_by_host_and_node(path):
    ctxt = context.get_admin_context()
    for node in ("node-1", "node-1", "node-2"):
        objects.Instance(ctxt, host="h1", node=node, vcpus=2, memory_mb=512,
                         root_gb=10, vm_state="active").create()
    objects.Instance(ctxt, host="h2", node="node-1", vcpus=1, memory_mb=256).create()
    on_node = objects.InstanceList.get_by_host_and_node(ctxt, "h1", "node-1")
    assert len(on_node) == 2 and all(i.vcpus == 2 for i in on_node)
    inst = on_node[0]
    inst.vm_state = "stopped"
    inst.task_state = None
    inst.launched_at = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    inst.save()
    again = objects.Instance.get_by_uuid(ctxt, inst.uuid)
    assert again.vm_state == "stopped"
    assert again.launched_at == datetime.datetime(2026, 1, 2, 3, 4, 5,
                                                  tzinfo=datetime.UTC)
    with pytest.raises(exception.InstanceExists):
        objects.Instance(ctxt, uuid=inst.uuid, host="h1", node="node-1",
                         vcpus=1, memory_mb=1).create()
    inst.destroy()
    assert len(objects.InstanceList.get_by_host_and_node(ctxt, "h1", "node-1")) == 1
    with pytest.raises(exception.InstanceNotFound):
        objects.Instance.get_by_uuid(ctxt, inst.uuid)


def test_migrations_in_progress(path):
    ctxt = context.get_admin_context()
    inst = objects.Instance(ctxt, host="h1", node="n1", vcpus=1, memory_mb=128)
    inst.create()

    def migration(status, **kw):
        values = dict(instance_uuid=inst.uuid, source_compute="h1",
                      source_node="n1", dest_compute="h2", dest_node="n2",
                      status=status, migration_type="resize", old_vcpus=1,
                      new_vcpus=2)
        values.update(kw)
        m = objects.Migration(ctxt, **values)
        m.create()
        return m

    running = migration("migrating")
    migration("confirmed")
    migration("pre-migrating", dest_compute="h3", dest_node="n3")
    assert [m.uuid for m in objects.MigrationList.get_in_progress_by_host_and_node(
        ctxt, "h2", "n2")] == [running.uuid]
    assert len(objects.MigrationList.get_in_progress_by_host_and_node(
        ctxt, "h1", "n1")) == 2
    running.status = "finished"
    running.save()
    running.status = "confirmed"
    running.save()
    assert len(objects.MigrationList.get_in_progress_by_host_and_node(
        ctxt, "h2", "n2")) == 0
    with pytest.raises(exception.ObjectFieldInvalid):
        running.status = "teleported"


def test_orphaned_object_cannot_call_remotable(path):
    svc = objects.Service(host="h", binary="b")
    with pytest.raises(Exception) as info:
        svc.create()
    assert "orphan" in str(info.value).lower()


def test_services_record_the_release_of_each_app_they_run(path):
    """``app_releases``, and what ``auto`` reads of it: the live, not
    forced-down services of one binary that record it."""
    ctxt = context.get_admin_context()
    svc = objects.Service(ctxt, host="h1", binary="novalet-conductor",
                          app_releases={"novalet": "3", "leases": "1"})
    svc.create()
    older = _service(ctxt, host="h2", binary="novalet-conductor")  # records none
    objects.Service(ctxt, host="h3", binary="novalet-conductor", forced_down=True,
                    app_releases={"leases": "0"}).create()
    objects.Service(ctxt, host="h5", binary="novalet-compute",
                    app_releases={"leases": "9"}).create()
    assert objects.Service.get_by_id(ctxt, svc.id).app_releases == {
        "novalet": "3", "leases": "1"}
    assert objects.Service.get_by_id(ctxt, older.id).app_releases is None
    rows = path.database.query("SELECT app_releases FROM services WHERE host = 'h1'")
    assert rows[0][0] == '{"leases": "1", "novalet": "3"}'

    def recorded():
        return [r for r in objects.Service.get_app_releases(ctxt, "novalet-conductor")
                if "leases" in r]

    assert recorded() == [{"novalet": "3", "leases": "1"}]
    svc.app_releases = {"novalet": "3", "leases": "2"}
    svc.save()
    assert recorded() == [{"novalet": "3", "leases": "2"}]
    with pytest.raises(exception.MalformedRequest):
        objects.Service.get_app_releases(ctxt, ["novalet-conductor"])
