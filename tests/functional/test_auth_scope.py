"""Host-scoped writes, where the rows are written: a context whose verified
principal is host B may write host B's rows only; host A's are refused with
``Forbidden`` and not one column changes. The same on SQLite, PostgreSQL and
MariaDB (whose default collation would match ``HOSTB`` to ``hostb``)."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from novalet import context, exception, objects
from novalet.auth import principal, signing
from novalet.db import scope

UTC = datetime.UTC


def _ctxt(who: Any = None) -> Any:
    ctxt = context.get_admin_context()
    if who is not None:
        ctxt.set_principal(who)
    return ctxt


def _service(ctxt: Any, host: str) -> Any:
    svc = objects.Service(ctxt, host=host, binary="novalet-compute",
                          topic="compute")
    svc.create()
    return svc


def _node(ctxt: Any, host: str, name: str = "n1", **extra: Any) -> Any:
    node = objects.ComputeNode(ctxt, host=host, hypervisor_hostname=name,
                               vcpus=4, memory_mb=4096, local_gb=40,
                               hypervisor_type="fake", hypervisor_version=1,
                               cpu_info="{}", **extra)
    node.create()
    return node


def _instance(ctxt: Any, host: str | None) -> Any:
    inst = objects.Instance(ctxt, vcpus=1, memory_mb=512, host=host,
                            node=None if host is None else "n1")
    inst.create()
    return inst


def _migration(ctxt: Any, inst: Any, source: str, dest: str) -> Any:
    mig = objects.Migration(ctxt, instance_uuid=inst.uuid,
                            source_compute=source, dest_compute=dest,
                            source_node="n1", dest_node="n1",
                            status="migrating")
    mig.create()
    return mig


def _rows(database: Any) -> list[Any]:
    """Every row of every table, as it is."""
    return [tuple(row) for table in ("services", "compute_nodes", "instances",
                                     "migrations")
            for row in database.query("SELECT * FROM %s ORDER BY id" % table)]


class World:
    def __init__(self, database: Any) -> None:
        admin = _ctxt()
        self.database = database
        self.svc_a = _service(admin, "hosta")
        self.svc_b = _service(admin, "hostb")
        self.node_a = _node(admin, "hosta", service_id=self.svc_a.id)
        self.node_b = _node(admin, "hostb", service_id=self.svc_b.id)
        self.inst_a = _instance(admin, "hosta")
        self.inst_b = _instance(admin, "hostb")
        self.unplaced = _instance(admin, None)
        self.mig_ac = _migration(admin, self.inst_a, "hosta", "hostc")
        self.b = _ctxt(principal.host("hostb"))

    def as_b(self, obj: Any) -> Any:
        """``obj`` as host B would send it (its own copy, B's context)."""
        copy = obj.obj_clone()
        copy._context = self.b
        return copy


@pytest.fixture
def world(database: Any) -> World:
    return World(database)


def _refused(world: World, action: Any) -> exception.Forbidden:
    before = _rows(world.database)
    with pytest.raises(exception.Forbidden) as info:
        action()
    assert _rows(world.database) == before, "a refused write changed a row"
    assert "host hostb" in info.value.message
    return info.value


def test_host_b_cannot_write_host_a_nodes(world: World, caplog: Any,
                                          monkeypatch: Any) -> None:
    monkeypatch.setattr(scope, "_refusals", signing.RefusalLog())
    node = world.as_b(world.node_a)
    node.memory_mb_used = 999999
    err = _refused(world, node.save)
    assert err.kwargs["action"] == "update a compute node"
    # One warning naming the verified caller.
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
            and "Refused" in r.getMessage()] == [
        "Refused: host hostb may not update a compute node: node %d is not "
        "hostb's" % world.node_a.id]
    # Claiming the node is B's in the object changes nothing either.
    node = world.as_b(world.node_a)
    node.host = "hostb"
    node.memory_mb_used = 999999
    _refused(world, node.save)
    _refused(world, world.as_b(world.node_a).destroy)
    # Creating one for host A, or moving its own to A.
    stolen = objects.ComputeNode(world.b, host="hosta", hypervisor_hostname="n2",
                                 vcpus=1, memory_mb=1, local_gb=1,
                                 hypervisor_type="fake", hypervisor_version=1,
                                 cpu_info="{}")
    _refused(world, stolen.create)
    own = world.as_b(world.node_b)
    own.host = "hosta"
    _refused(world, own.save)
    # Linking its node to host A's service.
    own = world.as_b(world.node_b)
    own.service_id = world.svc_a.id
    _refused(world, own.save)
    # Its own node: as before.
    own = world.as_b(world.node_b)
    own.memory_mb_used = 1024
    own.save()
    assert world.database.query("SELECT memory_mb_used FROM compute_nodes "
                                "WHERE id = :i", i=world.node_b.id)[0][0] == 1024
    _node(world.b, "hostb", "n2", service_id=world.svc_b.id).destroy()


LOOKALIKES = ["HOSTB", "hostB", "hostb ", " hostb", "host\u0431", "hostb.",
              "hostb\t"]


def test_host_names_that_only_look_like_b_are_not_b(world: World) -> None:
    admin = _ctxt()
    for number, host in enumerate(LOOKALIKES):
        try:
            lookalike = _node(admin, host, "n%d" % (number + 10))
        except exception.ObjectFieldInvalid:
            continue  # not even a host name: nobody can write it
        node = world.as_b(lookalike)
        node.memory_mb_used = 5
        _refused(world, node.save)
        _refused(world, world.as_b(lookalike).destroy)
        created = objects.ComputeNode(
            world.b, host=host, hypervisor_hostname="n8", vcpus=1, memory_mb=1,
            local_gb=1, hypervisor_type="fake", hypervisor_version=1,
            cpu_info="{}")
        _refused(world, created.create)


def test_host_b_cannot_write_host_a_services(world: World) -> None:
    svc = world.as_b(world.svc_a)
    svc.report_count += 1
    _refused(world, svc.save)
    svc = world.as_b(world.svc_a)
    svc.host = "hostb"
    svc.disabled = True
    _refused(world, svc.save)
    _refused(world, world.as_b(world.svc_a).destroy)
    _refused(world, objects.Service(world.b, host="hosta", binary="x",
                                    topic="compute").create)
    # Heartbeats: its own ids only (alone, or among its own).
    _refused(world, lambda: objects.ServiceList.report_heartbeats(
        world.b, [world.svc_a.id]))
    _refused(world, lambda: objects.ServiceList.report_heartbeats(
        world.b, [world.svc_b.id, world.svc_a.id]))
    assert objects.ServiceList.report_heartbeats(world.b, [world.svc_b.id]) == []
    # An admin's fencing marks are not B's to clear.
    svc = world.as_b(world.svc_b)
    svc.forced_down = True
    _refused(world, svc.save)
    beat = world.database.query("SELECT report_count, last_auth FROM services "
                                "WHERE id = :i", i=world.svc_b.id)[0]
    assert tuple(beat) == (1, "host")


def test_a_host_registers_no_conductor(world: World) -> None:
    """Every caller's ``auto`` caps follow the lowest service version of the
    conductors: a host that could register one at release 1 would hold them
    all there. Neither a new record nor its own compute's is one."""
    _refused(world, objects.Service(world.b, host="hostb",
                                    binary="novalet-conductor", topic="c",
                                    version=1).create)
    own = world.as_b(world.svc_b)
    own.binary = "novalet-conductor"
    err = _refused(world, own.save)
    assert "registered by an admin" in err.kwargs["reason"]
    assert objects.Service.get_minimum_version(_ctxt(), "novalet-conductor") == 0
    # Its own compute, and services of other binaries (an app's), as before.
    objects.Service(world.b, host="hostb", binary="appr-agent",
                    topic="t").create()
    # An admin (a conductor starting) registers one.
    objects.Service(_ctxt(principal.admin()), host="cond1",
                    binary="novalet-conductor", topic="c").create()


def test_a_host_writes_its_own_service_and_moves_its_instance_between_its_nodes(
        world: World) -> None:
    """The positive side of the rules above: what B may write goes through,
    written as sent."""
    own = world.as_b(world.svc_b)
    own.report_count = 41
    own.topic = "compute-b"
    own.save()
    assert tuple(world.database.query(
        "SELECT report_count, topic FROM services WHERE id = :i",
        i=world.svc_b.id)[0]) == (41, "compute-b")
    # A node of its own only (no host in the update): no migration needed.
    inst = world.as_b(world.inst_b)
    inst.node = "n2"
    inst.save()
    assert tuple(world.database.query(
        "SELECT host, node FROM instances WHERE id = :i",
        i=world.inst_b.id)[0]) == ("hostb", "n2")


def test_nobody_sets_last_seen_up(world: World) -> None:
    future = datetime.datetime(2100, 1, 1, tzinfo=UTC)
    for who in (principal.host("hostb"), principal.admin(), None):
        svc = objects.Service.get_by_id(_ctxt(who), world.svc_b.id)
        svc.last_seen_up = future
        with pytest.raises(exception.Forbidden, match="last_seen_up"):
            svc.save()
        svc = objects.Service(_ctxt(who), host="hostb", binary="other",
                              topic="t", last_seen_up=future)
        with pytest.raises(exception.Forbidden, match="last_seen_up"):
            svc.create()
    assert world.database.query("SELECT count(*) FROM services WHERE "
                                "last_seen_up IS NOT NULL")[0][0] == 0


def test_instances_move_only_to_the_caller_or_along_its_migration(
        world: World) -> None:
    # Stealing A's instance, changing it, deleting it.
    inst = world.as_b(world.inst_a)
    inst.host = "hostb"
    _refused(world, inst.save)
    inst = world.as_b(world.inst_a)
    inst.vm_state = "error"
    _refused(world, inst.save)
    _refused(world, world.as_b(world.inst_a).destroy)
    _refused(world, lambda: _instance(world.b, "hosta"))
    _refused(world, lambda: _instance(world.b, None))
    # Its own instance goes nowhere but to itself or nowhere.
    inst = world.as_b(world.inst_b)
    inst.host = "hosta"
    _refused(world, inst.save)
    inst = world.as_b(world.inst_b)
    inst.host, inst.node = None, None
    inst.save()
    # An instance placed nowhere yet is claimed by a build.
    claim = world.as_b(world.unplaced)
    claim.host, claim.node = "hostb", "n1"
    claim.save()
    # Along a migration in progress it takes part in: A -> B.
    moving = _instance(_ctxt(), "hosta")
    _migration(_ctxt(), moving, "hosta", "hostb")
    inst = world.as_b(moving)
    inst.host, inst.node = "hostb", "n1"
    inst.save()
    rows = world.database.query("SELECT uuid, host FROM instances")
    hosts = {uuid: host for uuid, host in rows}
    assert hosts[world.unplaced.uuid] == "hostb"
    assert hosts[moving.uuid] == "hostb"
    assert hosts[world.inst_b.uuid] is None
    assert hosts[world.inst_a.uuid] == "hosta"


def test_a_migration_reaches_only_an_instance_on_one_of_its_ends(
        world: World) -> None:
    """A migration (an admin's: hosts start none) with B as one of its
    ends must not open an instance that sits on a third host (C) to B."""
    on_c = _instance(_ctxt(), "hostc")
    _migration(_ctxt(), on_c, "hostb", "hosta")  # B is an end of it
    inst = world.as_b(on_c)
    inst.vm_state = "error"
    _refused(world, inst.save)
    inst = world.as_b(on_c)
    inst.host, inst.node = "hostb", "n1"
    _refused(world, inst.save)
    inst = world.as_b(on_c)
    inst.host, inst.node = "hosta", "n1"  # the migration's other end
    _refused(world, inst.save)
    # An instance at either end of B's migration is B's to update.
    for source, dest in (("hosta", "hostb"), ("hostb", "hosta")):
        on_a = _instance(_ctxt(), "hosta")
        _migration(_ctxt(), on_a, source, dest)
        inst = world.as_b(on_a)
        inst.vm_state = "active"
        inst.save()
        assert objects.Instance.get_by_uuid(_ctxt(),
                                            on_a.uuid).vm_state == "active"
    assert objects.Instance.get_by_uuid(_ctxt(), on_c.uuid).vm_state == "building"


def test_an_instance_moves_only_to_the_other_end_of_its_own_live_migration(
        world: World) -> None:
    """B may hand its instance to the other end of a migration of that
    instance in progress in which B takes part; no other migration opens
    another host to it (another instance's, a finished or deleted one, or
    one between two other hosts)."""
    admin = _ctxt()
    inst = world.as_b(world.inst_b)

    def move_to(host: str) -> Any:
        moving = world.as_b(world.inst_b)
        moving.host = host
        return moving.save

    _migration(admin, world.inst_a, "hostb", "hostd")  # another instance's
    done = _migration(admin, world.inst_b, "hostb", "hoste")
    done.status = "done"
    done.save()
    _migration(admin, world.inst_b, "hostb", "hostf").destroy()
    _migration(admin, world.inst_b, "hosta", "hostg")  # B is no end of it
    for host in ("hostd", "hoste", "hostf", "hostg", "hosta"):
        _refused(world, move_to(host))
    _migration(admin, world.inst_b, "hostb", "hostc")
    _refused(world, move_to("hostd"))
    move_to("hostc")()
    assert objects.Instance.get_by_uuid(admin, inst.uuid).host == "hostc"
    # At the destination end, B may send it back to the source.
    back = _instance(admin, "hostb")
    _migration(admin, back, "hosta", "hostb")
    reverted = world.as_b(back)
    reverted.host = "hosta"
    reverted.save()
    assert objects.Instance.get_by_uuid(admin, back.uuid).host == "hosta"


def test_a_refusal_says_what_was_asked_and_why(world: World) -> None:
    err = _refused(world, lambda: _instance(world.b, "hosta"))
    assert err.kwargs["action"] == "create an instance"
    assert err.kwargs["reason"] == "host would be 'hosta', not 'hostb'"
    inst = world.as_b(world.inst_b)
    inst.host = "hostz"
    err = _refused(world, inst.save)
    assert err.kwargs["action"] == "move an instance"
    assert err.kwargs["reason"] == ("'hostz' (node 'n1') is not hostb and no "
                                    "migration of the instance in progress "
                                    "leads there")


def test_other_migrations_do_not_open_an_instance(world: World) -> None:
    """The migration that lets B update an instance on A is one of that
    instance, in progress, and not deleted."""
    admin = _ctxt()
    _migration(admin, world.inst_b, "hostb", "hosta")  # another instance's
    done = _migration(admin, world.inst_a, "hosta", "hostb")
    done.status = "completed"
    done.save()
    _migration(admin, world.inst_a, "hosta", "hostb").destroy()
    inst = world.as_b(world.inst_a)
    inst.vm_state = "error"
    _refused(world, inst.save)


def test_a_migration_keeps_the_caller_at_one_end(world: World) -> None:
    mine = world.as_b(_migration(_ctxt(), world.inst_b, "hostb", "hostc"))
    mine.source_compute, mine.dest_compute = "hosta", "hostc"
    _refused(world, mine.save)
    # A migration that does not exist is not found, whatever it claims.
    ghost = objects.Migration(world.b, id=999999, instance_uuid=mine.instance_uuid)
    ghost.obj_reset_changes()
    ghost.status = "post-migrating"  # what an end may change
    with pytest.raises(exception.MigrationNotFound):
        ghost.save()
    # B at the destination end reports its status, and deletes nothing.
    incoming = _migration(_ctxt(), world.inst_a, "hosta", "hostb")
    theirs = world.as_b(incoming)
    theirs.status = "post-migrating"
    theirs.save()
    _refused(world, world.as_b(incoming).destroy)


def _tracked(host: str) -> list[Any]:
    """What host's tracker counts: its in-progress migrations, as read."""
    return [(m.id, m.status, m.source_compute, m.dest_compute, m.new_vcpus)
            for m in objects.MigrationList.get_in_progress_by_host_and_node(
                _ctxt(), host, "n1")]


def test_a_host_starts_no_migration_and_takes_over_nothing(
        world: World) -> None:
    """The takeover: B makes itself the destination of A's instance, then
    acts on it and removes the trace. Every step is refused."""
    a_counts = _tracked("hosta")
    err = _refused(world, lambda: _migration(world.b, world.inst_a, "hosta",
                                             "hostb"))
    assert err.kwargs["action"] == "create a migration"
    # Even of its own instance, or from itself to itself.
    _refused(world, lambda: _migration(world.b, world.inst_b, "hostb", "hosta"))
    _refused(world, lambda: _migration(world.b, world.inst_b, "hostb", "hostb"))
    inst = world.as_b(world.inst_a)
    inst.vm_state, inst.task_state = "error", "migrating"
    _refused(world, inst.save)
    inst = world.as_b(world.inst_a)
    inst.host, inst.node = "hostb", "n1"
    _refused(world, inst.save)
    inst = world.as_b(world.inst_a)
    inst.host, inst.node = None, None
    _refused(world, inst.save)
    _refused(world, world.as_b(world.inst_a).destroy)
    # A migration an admin started with B as an end: B reports its status,
    # never deletes it.
    admins = _migration(_ctxt(), world.inst_b, "hostb", "hosta")
    _refused(world, world.as_b(admins).destroy)
    # Pushing usage onto A's node: sizes, ends and nodes are an admin's.
    for name, value in (("new_vcpus", 64), ("new_memory_mb", 1 << 20),
                        ("dest_node", "n2"), ("dest_compute", "hostc"),
                        ("source_compute", "hosta"),
                        ("instance_uuid", world.inst_a.uuid)):
        mig = world.as_b(admins)
        setattr(mig, name, value)
        _refused(world, mig.save)
    # Sizes of its own instance, which it could then move onto A.
    inst = world.as_b(world.inst_b)
    inst.vcpus = 64
    _refused(world, inst.save)
    # A done migration stays done: reviving it would count again on A.
    admins.status = "error"
    admins.save()
    revived = world.as_b(admins)
    revived.status = "migrating"
    _refused(world, revived.save)
    assert _tracked("hosta") == a_counts
    rows = world.database.query("SELECT host, node, vm_state, deleted FROM "
                                "instances WHERE id = :i", i=world.inst_a.id)
    assert [tuple(r) for r in rows] == [("hosta", "n1", "building", 0)]


def test_migrations_of_other_hosts(world: World) -> None:
    mig = world.as_b(world.mig_ac)
    mig.status = "error"
    _refused(world, mig.save)
    _refused(world, world.as_b(world.mig_ac).destroy)
    # The source of a migration of an instance on a third host acts on
    # nothing: the instance must sit on one of its ends.
    elsewhere = _instance(_ctxt(), "hostc")
    _migration(_ctxt(), elsewhere, "hostb", "hosta")
    inst = world.as_b(elsewhere)
    inst.vm_state = "error"
    _refused(world, inst.save)
    inst = world.as_b(elsewhere)
    inst.host = "hosta"
    _refused(world, inst.save)


def test_the_ends_report_progress_and_move_the_instance(world: World) -> None:
    """An admin migrates A's instance to B: either end updates it and moves
    it to the other end (its host and node), while it is in progress."""
    moving = _instance(_ctxt(), "hosta")
    mig = _migration(_ctxt(), moving, "hosta", "hostb")
    a = _ctxt(principal.host("hosta"))
    # The destination reports progress and updates the instance on A.
    report = world.as_b(mig)
    report.status = "post-migrating"
    report.save()
    inst = world.as_b(moving)
    inst.task_state = "migrating"
    inst.save()
    # Onto another node of B's than the migration names, or a third host.
    inst = world.as_b(moving)
    inst.host, inst.node = "hostc", "n1"
    _refused(world, inst.save)
    inst = world.as_b(moving)
    inst.node = "n2"
    _refused(world, inst.save)
    # Nor does it take the instance off A.
    inst = world.as_b(moving)
    inst.host, inst.node = None, None
    _refused(world, inst.save)
    # Along the migration, then back by the source (a revert).
    inst = world.as_b(moving)
    inst.host, inst.node = "hostb", "n1"
    inst.save()
    inst = objects.Instance.get_by_uuid(a, moving.uuid)
    inst.host, inst.node = "hosta", "n1"
    inst.save()
    inst = world.as_b(moving)
    inst.host, inst.node = "hostb", "n1"
    inst.save()
    # Done: B keeps what is on it, A reaches nothing any more.
    done = world.as_b(mig)
    done.status = "completed"
    done.save()
    inst = objects.Instance.get_by_uuid(a, moving.uuid)
    inst.host, inst.node = "hosta", "n1"
    with pytest.raises(exception.Forbidden):
        inst.save()
    rows = world.database.query("SELECT host, node, task_state FROM instances "
                                "WHERE id = :i", i=moving.id)
    assert [tuple(r) for r in rows] == [("hostb", "n1", "migrating")]
    assert world.database.query("SELECT status FROM migrations WHERE id = :i",
                                i=mig.id)[0][0] == "completed"


def test_admins_and_local_callers_are_unscoped(world: World) -> None:
    for who in (principal.admin(), principal.UNSIGNED_PRINCIPAL, None):
        node = objects.ComputeNode.get_by_id(_ctxt(who), world.node_a.id)
        node.memory_mb_used += 1
        node.save()
    assert world.database.query("SELECT memory_mb_used FROM compute_nodes "
                                "WHERE id = :i", i=world.node_a.id)[0][0] == 3
