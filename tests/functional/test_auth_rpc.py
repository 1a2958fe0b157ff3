"""The verified caller through the real serializer and oslo.messaging (the
fake transport, a conductor and a compute in this process): this process
signs as host B with B's own key; the conductor verifies it and scopes B's
writes; the context B sends cannot claim more; bad arguments are typed
refusals without a traceback; compute endpoints are for an admin only."""

from __future__ import annotations

import datetime
import logging
import os
from typing import Any

import pytest

from novalet import auth, context, exception, indirection, objects, rpc
from novalet import conf as novalet_conf
from novalet import service as novalet_service
from novalet.auth import keys, principal
from novalet.compute import manager as compute_manager
from novalet.conductor import manager as conductor_manager
from novalet.objects import base as objects_base
from novalet.virt import fake
from tests.conftest import MASTER_KEY_FILE


@pytest.fixture
def as_host_b(conf: Any, sqlite_db: Any, tmp_path: Any) -> Any:
    """This process signs as hostb (its key file) through the rpc
    indirection to a conductor in this process, which holds the master key."""
    key_file = str(tmp_path / "b.key")
    keys.write_host_key(MASTER_KEY_FILE, "hostb", key_file)
    conf("host", "hostb")
    conf("key_file", key_file, "auth")
    conf("transport_url", "fake://")
    conf("topic", "conductor-%s" % os.urandom(4).hex(), "conductor")
    rpc.init(novalet_conf.CONF)
    assert auth.signer().principal == principal.host("hostb")
    server = novalet_service.rpc_server(novalet_conf.CONF.conductor.topic,
                        [conductor_manager.ConductorManager(novalet_conf.CONF)],
                        server="cond", objects_local=True)
    server.start()
    admin = context.get_admin_context()
    made = {}
    for host in ("hosta", "hostb"):
        svc = objects.Service(admin, host=host, binary="novalet-compute",
                              topic="compute")
        svc.create()
        node = objects.ComputeNode(admin, host=host, hypervisor_hostname="n1",
                                   vcpus=4, memory_mb=4096, local_gb=40,
                                   hypervisor_type="fake", hypervisor_version=1,
                                   cpu_info="{}", service_id=svc.id)
        node.create()
        made[host] = (svc, node)
    conf("indirection", "rpc", "objects")
    indirection.configure(novalet_conf.CONF)
    try:
        yield {"db": sqlite_db, "server": server, **made}
    finally:
        server.stop()
        server.wait()


def _rows(db: Any) -> list[Any]:
    return [tuple(r) for t in ("services", "compute_nodes", "instances")
            for r in db.query("SELECT * FROM %s ORDER BY id" % t)]


def test_host_b_gets_typed_refusals_through_rpc(as_host_b: Any) -> None:
    world = as_host_b
    ctxt = context.get_admin_context()  # says admin: believed for nothing
    before = _rows(world["db"])
    node = objects.ComputeNode.get_by_id(ctxt, world["hosta"][1].id)
    node.memory_mb_used = 999999
    with pytest.raises(exception.Forbidden) as info:
        node.save()
    assert info.value.kwargs["principal"] == "host hostb"
    with pytest.raises(exception.Forbidden):
        objects.ServiceList.report_heartbeats(ctxt, [world["hosta"][0].id])
    svc = objects.Service.get_by_id(ctxt, world["hosta"][0].id)
    with pytest.raises(exception.Forbidden):
        svc.destroy()
    assert _rows(world["db"]) == before
    # Its own rows work as before.
    own = objects.ComputeNode.get_by_id(ctxt, world["hostb"][1].id)
    own.memory_mb_used = 2048
    own.save()
    assert objects.ServiceList.report_heartbeats(
        ctxt, [world["hostb"][0].id]) == []
    assert world["server"].verifier.refused == 0


class _Claims:
    """A context whose wire form claims to be the admin, as a principal."""

    def to_dict(self) -> dict[str, Any]:
        return {"is_admin": True, "roles": ["admin"], "principal": "admin",
                "_principal": "admin", "user_identity": "admin",
                "novalet_principal": {"kind": "admin"}}


def test_a_context_claiming_admin_or_a_principal_is_not_believed(
        as_host_b: Any) -> None:
    world = as_host_b
    node = world["hosta"][1].obj_clone()
    node.memory_mb_used = 999999
    client = rpc.Client(novalet_conf.CONF.conductor.topic, "1.1", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    before = _rows(world["db"])
    with pytest.raises(exception.Forbidden, match="host hostb"):
        client.call(_Claims(), "object_action", objinst=node, objmethod="save",
                    args=[], kwargs={})
    assert _rows(world["db"]) == before


BAD_CALLS = [
    (lambda c: objects.Service.get_by_id(c, "1"), "str is not int"),
    (lambda c: objects.Service.get_by_id(c, True), "bool is not int"),
    (lambda c: objects.Service.get_by_id(c, 2 ** 70), "out of range"),
    (lambda c: objects.Service.get_by_id(c, 1.5), "float is not int"),
    (lambda c: objects.Service.get_by_id(c), "missing a required argument"),
    (lambda c: objects.Service.get_by_id(c, 1, 2), "too many"),
    (lambda c: objects.Service.get_by_id(c, service_id=1, other=2),
     "unexpected keyword"),
    (lambda c: objects.Service.get_by_host_and_binary(c, "a\0b", "x"), "NUL"),
    (lambda c: objects.Service.get_by_host_and_binary(c, "a" * 300, "x"),
     "longer than 255"),
    (lambda c: objects.ServiceList.get_all(c, binary=["x"]), "list is not"),
    (lambda c: objects.ServiceList.report_heartbeats(c, [1] * 10001),
     "more than 10000"),
    (lambda c: objects.ServiceList.report_heartbeats(c, ["1"]), "str is not int"),
    (lambda c: objects.ServiceList.report_heartbeats(c, {"1": 1}),
     "dict is not"),
    (lambda c: objects.ComputeNodeList.get_by_host(c, {"a": [[[[[[["x"]]]]]]]}),
     "dict is not"),
]


def test_bad_arguments_are_typed_refusals_without_a_traceback(
        as_host_b: Any, caplog: Any) -> None:
    caplog.set_level(logging.DEBUG)
    before = _rows(as_host_b["db"])
    for call, reason in BAD_CALLS:
        with pytest.raises(exception.MalformedRequest, match=reason):
            call(context.get_admin_context())
    assert _rows(as_host_b["db"]) == before
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR
                or r.exc_info], "a refused call was logged as an error"
    # ... and the conductor keeps serving.
    assert objects.Service.get_by_id(context.get_admin_context(),
                                     as_host_b["hostb"][0].id).host == "hostb"


BAD_FIELDS = [
    ("task_state", "a\0b", exception.MalformedRequest, "NUL"),
    ("task_state", "x" * 256, exception.MalformedRequest, "longer than 255"),
    ("vcpus", 2 ** 40, exception.MalformedRequest, "out of range"),
    # (what the wire cannot even carry is refused as it is read)
    ("launched_at", datetime.datetime(999, 1, 1, tzinfo=datetime.UTC),
     exception.ObjectFieldInvalid, "launched_at"),
]


def test_bad_field_values_are_typed_refusals(as_host_b: Any,
                                            caplog: Any) -> None:
    for field, value, error, reason in BAD_FIELDS:
        inst = objects.Instance(context.get_admin_context(), vcpus=1,
                                memory_mb=1, host="hostb")
        setattr(inst, field, value)
        with pytest.raises(error, match=reason):
            inst.create()
    assert as_host_b["db"].query("SELECT count(*) FROM instances")[0][0] == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


# -- compute endpoints ------------------------------------------------------------

@pytest.fixture
def compute_c1(conf: Any, sqlite_db: Any) -> Any:
    """A compute manager of host c1 (fake driver) on the local path."""
    manager = compute_manager.ComputeManager(
        novalet_conf.CONF, "c1", driver=fake.FakeDriver(novalet_conf.CONF,
                                                        host="c1", nodes=1))
    manager.update_available_resource(context.get_admin_context())
    return manager


def _as(who: Any) -> Any:
    ctxt = context.get_admin_context()
    ctxt.set_principal(who)
    return ctxt


def _built(manager: Any, host: str = "c1") -> Any:
    inst = objects.Instance(context.get_admin_context(), vcpus=1, memory_mb=64)
    inst.create()
    return manager.build_instance(_as(principal.admin()), inst, "c1-node-1")


def test_only_an_admin_builds_or_terminates(compute_c1: Any) -> None:
    guests = compute_c1.driver.list_guests
    inst = objects.Instance(context.get_admin_context(), vcpus=1, memory_mb=64)
    inst.create()
    for who in (principal.host("c1"), principal.host("hostb")):
        with pytest.raises(exception.Forbidden, match="only an admin"):
            compute_c1.build_instance(_as(who), inst, "c1-node-1")
    assert guests("c1-node-1") == []
    built = _built(compute_c1)
    with pytest.raises(exception.Forbidden, match="only an admin"):
        compute_c1.terminate_instance(_as(principal.host("c1")), built)
    assert [g["uuid"] for g in guests("c1-node-1")] == [built.uuid]
    compute_c1.terminate_instance(_as(principal.admin()), built)
    assert guests("c1-node-1") == []


def test_terminate_touches_only_guests_it_made_for_its_instances(
        compute_c1: Any) -> None:
    admin = _as(principal.admin())
    guests = compute_c1.driver.list_guests
    # An instance recorded on another host, sent as if it were on c1.
    elsewhere = objects.Instance(context.get_admin_context(), vcpus=1,
                                 memory_mb=64, host="c2", node="c2-node-1")
    elsewhere.create()
    compute_c1.driver.add_orphan("c1-node-1", elsewhere.uuid)
    forged = elsewhere.obj_clone()
    forged.host = "c1"
    with pytest.raises(exception.Forbidden, match="is on c2, not on c1"):
        compute_c1.terminate_instance(admin, forged)
    # A guest on c1 that novalet did not make, for an instance of c1.
    foreign = objects.Instance(context.get_admin_context(), vcpus=1,
                               memory_mb=64, host="c1", node="c1-node-1")
    foreign.create()
    compute_c1.driver.add_orphan("c1-node-1", foreign.uuid)
    with pytest.raises(exception.Forbidden, match="not made by novalet"):
        compute_c1.terminate_instance(admin, foreign)
    assert sorted(g["uuid"] for g in guests("c1-node-1")) == sorted(
        [elsewhere.uuid, foreign.uuid])
    assert objects.Instance.get_by_uuid(admin, foreign.uuid).vm_state == "building"


def test_a_host_calling_a_compute_endpoint_over_rpc_is_refused(
        as_host_b: Any, conf: Any) -> None:
    conf("topic", "compute-%s" % os.urandom(4).hex(), "compute")
    manager = compute_manager.ComputeManager(
        novalet_conf.CONF, "c1", driver=fake.FakeDriver(novalet_conf.CONF,
                                                        host="c1", nodes=1))
    server = novalet_service.rpc_server(novalet_conf.CONF.compute.topic, [manager], server="c1",
                        version=compute_manager.RPC_API_VERSION)
    server.start()
    try:
        inst = objects.Instance(context.get_admin_context(), vcpus=1,
                                memory_mb=64)
        client = rpc.Client(novalet_conf.CONF.compute.topic, "1.1", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
        with pytest.raises(exception.Forbidden, match="only an admin"):
            client.call(context.get_admin_context(), "terminate_instance",
                        server="c1", instance=inst)
    finally:
        server.stop()
        server.wait()
