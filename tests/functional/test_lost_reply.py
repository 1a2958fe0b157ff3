"""What each remotable method does when it is sent again because its reply
was lost (doc/source/admin/lost-replies.rst): one test body, every path."""

from __future__ import annotations

from typing import Any

import pytest

from novalet import context, exception, objects
from novalet.indirection import base as indirection_base
from novalet.objects import base as objects_base


def _service(ctxt: Any) -> Any:
    return objects.Service(ctxt, host="h1", binary="novalet-compute",
                           topic="compute")


def _node(ctxt: Any) -> Any:
    return objects.ComputeNode(
        ctxt, host="h1", hypervisor_hostname="h1-node-1", vcpus=4,
        memory_mb=1024, local_gb=10, hypervisor_type="fake",
        hypervisor_version=1, cpu_info="{}", stats={"a": "1"},
        cpu_allocation_ratio=1.1)


def _instance(ctxt: Any) -> Any:
    return objects.Instance(ctxt, host="h1", node="h1-node-1", vcpus=1,
                            memory_mb=64)


def _migration(ctxt: Any) -> Any:
    return objects.Migration(
        ctxt, instance_uuid="2d1c8a1e-5b0e-4f5e-9c47-0e6f7a0b8c11",
        source_compute="h1", dest_compute="h2", source_node="h1-node-1",
        dest_node="h2-node-1", new_vcpus=1)


MAKERS = {"Service": _service, "ComputeNode": _node, "Instance": _instance,
          "Migration": _migration}
TABLES = {"Service": "services", "ComputeNode": "compute_nodes",
          "Instance": "instances", "Migration": "migrations"}


class _LostReply(indirection_base.IndirectionAPI):
    """An indirection API whose every call is lost on the way back: it keeps
    what was sent (the primitive) and raises ``RPCTimeout``."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # no conf: nothing to configure

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> Any:
        self.sent.append(objinst.obj_to_primitive())
        raise exception.RPCTimeout(topic="conductor", method=objmethod,
                                   timeout=1)

    def object_class_action_versions(self, *args: Any, **kwargs: Any) -> Any:
        raise exception.RPCTimeout(topic="conductor", method="class", timeout=1)

    def object_backport_versions(self, *args: Any, **kwargs: Any) -> Any:
        raise exception.RPCTimeout(topic="conductor", method="backport",
                                   timeout=1)


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_create_gets_its_uuid_where_it_is_called(kind, sqlite_db):
    """The uuid is chosen before the call leaves: a create whose reply is
    lost already carries the uuid its resend will carry."""
    ctxt = context.get_admin_context()
    lost = _LostReply()
    previous = objects_base.get_indirection_api()
    objects_base.set_indirection_api(lost)
    try:
        obj = MAKERS[kind](ctxt)
        with pytest.raises(exception.RPCTimeout):
            obj.create()
    finally:
        objects_base.set_indirection_api(previous)
    [sent] = lost.sent
    assert sent["novalet_object.data"]["uuid"] == obj.uuid
    assert not obj.obj_attr_is_set("id")


@pytest.mark.parametrize("kind", sorted(MAKERS))
def test_a_create_sent_again_returns_the_same_row(kind, path):
    """The caller's object after a lost reply: uuid set, no id, every change
    still pending. Sending it again makes no second row."""
    ctxt = context.get_admin_context()
    first = MAKERS[kind](ctxt)
    first.uuid = "5a7e0c4e-3f4b-4b52-8f0e-6c2d1e9b7a01"  # as create() does
    resend = first.obj_clone()  # what the caller holds if the reply is lost
    first.create()
    resend.create()
    assert resend.id == first.id and resend.uuid == first.uuid
    rows = path.database.query(
        "SELECT count(*) FROM %s WHERE uuid = :u" % TABLES[kind], u=first.uuid)
    assert rows[0][0] == 1


def test_a_different_create_with_a_used_uuid_is_refused(path):
    """Only the same create is answered with the existing row: other values
    under a uuid in use (a caller bug) still raise, and write nothing."""
    ctxt = context.get_admin_context()
    inst = _instance(ctxt)
    inst.create()
    other = objects.Instance(ctxt, uuid=inst.uuid, host="h1",
                             node="h1-node-1", vcpus=2, memory_mb=64)
    with pytest.raises(exception.InstanceExists):
        other.create()
    svc = _service(ctxt)
    svc.create()
    twin = _service(ctxt)  # same host and binary, a uuid of its own
    with pytest.raises(exception.ServiceBinaryExists):
        twin.create()
    assert path.database.query("SELECT count(*) FROM instances")[0][0] == 1
    assert path.database.query(
        "SELECT count(*) FROM services WHERE host = 'h1'")[0][0] == 1


def test_save_and_destroy_sent_again(path):
    """save() writes absolute values: sent twice, the row is the same.
    destroy() sent again finds no live row: NotFound means it is done."""
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    node.create()
    node.memory_mb_used = 512
    resend = node.obj_clone()
    node.save()
    resend.save()
    again = objects.ComputeNode.get_by_id(ctxt, node.id)
    assert again.memory_mb_used == 512
    inst = _instance(ctxt)
    inst.create()
    resend = inst.obj_clone()
    inst.destroy()
    with pytest.raises(exception.InstanceNotFound):
        resend.destroy()
