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
    """Host B may create a migration naming any instance, as long as B is
    one of its ends; that migration must not open an instance that sits on
    a third host (C) to B."""
    on_c = _instance(_ctxt(), "hostc")
    _migration(world.b, on_c, "hostb", "hosta")  # B's own migration
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
        _migration(world.b, on_a, source, dest)
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
    _migration(world.b, world.inst_b, "hostb", "hostc")
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
    assert err.kwargs["reason"] == ("'hostz' is not hostb and no migration of "
                                    "the instance in progress leads there")


def test_other_migrations_do_not_open_an_instance(world: World) -> None:
    """The migration that lets B update an instance on A is one of that
    instance, in progress, and not deleted."""
    admin = _ctxt()
    _migration(world.b, world.inst_b, "hostb", "hosta")  # another instance's
    done = _migration(admin, world.inst_a, "hosta", "hostb")
    done.status = "completed"
    done.save()
    _migration(admin, world.inst_a, "hosta", "hostb").destroy()
    inst = world.as_b(world.inst_a)
    inst.vm_state = "error"
    _refused(world, inst.save)


def test_a_migration_keeps_the_caller_at_one_end(world: World) -> None:
    mine = _migration(world.b, world.inst_b, "hostb", "hostc")
    mine.source_compute, mine.dest_compute = "hosta", "hostc"
    _refused(world, mine.save)
    # A migration that does not exist is not found, whatever it claims.
    ghost = objects.Migration(world.b, id=999999, instance_uuid=mine.instance_uuid)
    ghost.obj_reset_changes()
    ghost.dest_compute = "hostb"
    with pytest.raises(exception.MigrationNotFound):
        ghost.save()
    # B at the destination end updates and deletes it as well.
    incoming = _migration(_ctxt(), world.inst_a, "hosta", "hostb")
    theirs = world.as_b(incoming)
    theirs.status = "post-migrating"
    theirs.save()
    world.as_b(incoming).destroy()


def test_migrations_of_other_hosts(world: World) -> None:
    mig = world.as_b(world.mig_ac)
    mig.status = "error"
    _refused(world, mig.save)
    _refused(world, world.as_b(world.mig_ac).destroy)
    _refused(world, lambda: _migration(world.b, world.inst_a, "hosta", "hostc"))
    # Its own: as before, but it cannot hand it over to other hosts.
    mine = _migration(world.b, world.inst_b, "hostb", "hostc")
    mine.dest_compute = "hostd"
    mine.save()
    mine.source_compute = "hosta"
    _refused(world, mine.save)


def test_admins_and_local_callers_are_unscoped(world: World) -> None:
    for who in (principal.admin(), principal.UNSIGNED_PRINCIPAL, None):
        node = objects.ComputeNode.get_by_id(_ctxt(who), world.node_a.id)
        node.memory_mb_used += 1
        node.save()
    assert world.database.query("SELECT memory_mb_used FROM compute_nodes "
                                "WHERE id = :i", i=world.node_a.id)[0][0] == 3
