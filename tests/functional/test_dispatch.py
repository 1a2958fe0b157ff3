"""What the conductor refuses, over every remote path: the caller gets a typed
``novalet.exception`` error, no row changes, and the conductor keeps serving."""

from __future__ import annotations

import oslo_messaging as messaging
import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from novalet.objects import base as objects_base


@pytest.fixture
def remote(remote_path):
    return remote_path


def _send(method, **kwargs):
    """Send a raw conductor call, bypassing the objects' own checks."""
    ctxt = context.get_admin_context()
    api = indirection.current()
    if hasattr(api, "manager"):  # inprocess: same serializer, no transport
        return api.conductor.call(ctxt, method, **kwargs)
    client = rpc.Client(novalet_conf.CONF.conductor.topic, "1.0", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    return client.call(ctxt, method, **kwargs)


def _node(ctxt):
    node = objects.ComputeNode(ctxt, host="h1", hypervisor_hostname="n1",
                               vcpus=4, memory_mb=4096, local_gb=40,
                               hypervisor_type="fake", hypervisor_version=1,
                               cpu_info="{}")
    node.create()
    return node


def _snapshot(path):
    return [tuple(r) for r in path.database.query(
        "SELECT id, vcpus, memory_mb_used, deleted FROM compute_nodes ORDER BY id")]


def _primitive(node, **changes):
    prim = node.obj_to_primitive()
    prim["novalet_object.data"].update(changes)
    prim["novalet_object.changes"] = list(changes) or ["memory_mb_used"]
    return prim


@pytest.mark.parametrize("method, error", [
    ("obj_reset_changes", exception.MethodNotRemotable),
    ("obj_clone", exception.MethodNotRemotable),
    ("_from_db_object", exception.MethodNotRemotable),
    ("__init__", exception.MethodNotRemotable),
    ("obj_db_changes", exception.MethodNotRemotable),
    ("no_such_method", exception.MethodNotRemotable),
    ("get_by_id", exception.MethodNotRemotable),  # a class method, as instance
    (["save"], exception.MethodNotRemotable),  # not a name at all
    (None, exception.MethodNotRemotable),
])
def test_object_action_refuses_non_remotable(remote, method, error):
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    before = _snapshot(remote)
    with pytest.raises(error) as info:
        _send("object_action", objinst=node, objmethod=method, args=[],
              kwargs={})
    assert "ComputeNode" in info.value.message
    assert _snapshot(remote) == before
    node.memory_mb_used = 5
    node.save()  # still serving
    assert _snapshot(remote)[0][2] == 5


@pytest.mark.parametrize("objname, method, versions, error", [
    ("ComputeNode", "create", {"ComputeNode": "1.0"},
     exception.MethodNotRemotable),  # instance method as class method
    ("ComputeNode", "obj_class_from_name", {"ComputeNode": "1.0"},
     exception.MethodNotRemotable),
    ("ComputeNode", "_from_db_object", {"ComputeNode": "1.0"},
     exception.MethodNotRemotable),
    ("NoSuchObject", "get_all", {"NoSuchObject": "1.0"},
     exception.UnknownObject),
    ("ComputeNode", "get_by_id", {"ComputeNode": "9.0"},
     exception.UnsupportedObjectVersion),
    ("ComputeNode", "get_by_id", {}, exception.MalformedRequest),
])
def test_class_action_refusals(remote, objname, method, versions, error):
    ctxt = context.get_admin_context()
    _node(ctxt)
    with pytest.raises(error):
        _send("object_class_action_versions", objname=objname,
              objmethod=method, object_versions=versions, args=[1],
              kwargs={})
    assert len(objects.ComputeNodeList.get_all(ctxt)) == 1


def test_malformed_and_foreign_primitives(remote):
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    before = _snapshot(remote)
    bad = [
        # missing data
        ({"novalet_object.name": "ComputeNode",
          "novalet_object.namespace": "novalet",
          "novalet_object.version": "1.0"}, exception.MalformedRequest),
        # another project's namespace
        (dict(_primitive(node), **{"novalet_object.namespace": "nova"}),
         exception.UnknownObject),
        # unknown object name
        (dict(_primitive(node), **{"novalet_object.name": "Bogus"}),
         exception.UnknownObject),
        # a version newer than the conductor knows
        (dict(_primitive(node), **{"novalet_object.version": "7.3"}),
         exception.UnsupportedObjectVersion),
        # a field of the wrong type
        (_primitive(node, memory_mb_used="lots"), exception.ObjectFieldInvalid),
        (_primitive(node, memory_mb_used=-1), exception.ObjectFieldInvalid),
        (_primitive(node, stats=["not", "a", "dict"]),
         exception.ObjectFieldInvalid),
    ]
    for primitive, error in bad:
        with pytest.raises(error):
            _send("object_action", objinst=primitive, objmethod="save",
                  args=[], kwargs={})
        assert _snapshot(remote) == before, primitive
    with pytest.raises(exception.MalformedRequest):
        _send("object_action", objinst=node, objmethod="save", args="x",
              kwargs={})
    node.memory_mb_used = 9
    node.save()
    assert _snapshot(remote)[0][2] == 9


def test_errors_keep_their_type_and_message(remote):
    ctxt = context.get_admin_context()
    with pytest.raises(exception.ComputeHostNotFound) as info:
        objects.ComputeNode.get_by_host_and_nodename(ctxt, "ghost", "n")
    assert isinstance(info.value, exception.NotFound)
    assert info.value.message == "Compute node ghost/n could not be found."


def test_save_sends_only_changed_fields(remote, monkeypatch):
    """The conductor receives the object with one change and returns only
    what the method changed."""
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    node.memory_mb_used = 1024
    sent = []
    api = objects_base.get_indirection_api()
    real = api.object_action

    def spy(context_, objinst, objmethod, args, kwargs):
        sent.append(objinst.obj_get_changes())
        updates, result = real(context_, objinst, objmethod, args, kwargs)
        sent.append(updates)
        return updates, result

    monkeypatch.setattr(api, "object_action", spy)
    node.save()
    assert sent[0] == {"memory_mb_used": 1024}
    assert set(sent[1]) == {"updated_at", "obj_what_changed"}
    assert sent[1]["obj_what_changed"] == []
    assert node.obj_what_changed() == set()


def test_unknown_rpc_method_is_refused_typed(remote):
    with pytest.raises(exception.MethodNotRemotable) as info:
        _send("run_periodic_tasks", raise_on_error=True)
    assert "ConductorManager.run_periodic_tasks" in info.value.message


def test_a_classmethod_that_is_not_remotable_is_refused(remote):
    """``to_json_schema``: a public classmethod of every object, past the
    name filter and the "is it a classmethod" check; only the remotable
    mark stops it."""
    with pytest.raises(exception.MethodNotRemotable) as info:
        _send("object_class_action_versions", objname="ComputeNode",
              objmethod="to_json_schema",
              object_versions={"ComputeNode": objects.ComputeNode.VERSION},
              args=[], kwargs={})
    assert "ComputeNode.to_json_schema" in info.value.message


def test_an_attribute_that_is_not_a_remotable_method_is_refused(remote):
    """``Instance.disk_gb`` (a property) and ``fields`` pass the name
    filter and are not classmethods; only the remotable mark stops them."""
    ctxt = context.get_admin_context()
    inst = objects.Instance(ctxt, host="h1", node="n1", vcpus=1, memory_mb=64)
    inst.create()
    for name in ("disk_gb", "fields"):
        with pytest.raises(exception.MethodNotRemotable) as info:
            _send("object_action", objinst=inst, objmethod=name, args=[],
                  kwargs={})
        assert "Instance.%s" % name in info.value.message


def test_an_older_caller_gets_only_the_changed_fields_back(remote):
    """A caller at Migration 1.0 (the conductor backports what it returns)
    gets back what the save changed, not every field."""
    ctxt = context.get_admin_context()
    inst = objects.Instance(ctxt, host="h1", node="n1", vcpus=1, memory_mb=64)
    inst.create()
    mig = objects.Migration(ctxt, instance_uuid=inst.uuid, source_compute="h1",
                            dest_compute="h2", source_node="n1",
                            dest_node="n2", status="migrating")
    mig.create()
    for version in ("1.0", objects.Migration.VERSION):
        primitive = mig.obj_to_primitive(target_version=version)
        primitive["novalet_object.data"]["new_vcpus"] = 3
        primitive["novalet_object.changes"] = ["new_vcpus"]
        updates, result = _send("object_action", objinst=primitive,
                                objmethod="save", args=[], kwargs={})
        assert result is None
        assert set(updates) == {"updated_at", "obj_what_changed"}, version
        assert updates["obj_what_changed"] == []
    rows = remote.database.query("SELECT new_vcpus FROM migrations")
    assert [r[0] for r in rows] == [3]


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def test_malformed_shapes_are_typed_without_a_traceback(remote, caplog):
    """A changes entry naming an unset field, arguments nested 400 deep and
    a context whose fields have the wrong types: each a MalformedRequest,
    nothing logged with a traceback, no row changed."""
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    before = _snapshot(remote)
    unset = _primitive(node)
    del unset["novalet_object.data"]["vcpus"]
    unset["novalet_object.changes"] = ["vcpus"]
    with pytest.raises(exception.MalformedRequest) as info:
        _send("object_action", objinst=unset, objmethod="save", args=[],
              kwargs={})
    assert "changes name vcpus, which is not set" in info.value.message
    if remote.name == "inprocess":
        return  # no wire: the shapes below cannot be sent in one process
    # oslo.messaging's own client: novalet's would not serialize it.
    raw = messaging.get_rpc_client(
        rpc.get_transport(), messaging.Target(
            topic=novalet_conf.CONF.conductor.topic, version="1.0"),
        serializer=messaging.NoOpSerializer(), timeout=30)
    with pytest.raises(exception.MalformedRequest) as info:
        raw.call(context.get_admin_context().to_wire(), "object_action",
                 objinst=node.obj_to_primitive(), objmethod="save",
                 args=[_nested(400)], kwargs={})
    assert "nested deeper than" in info.value.message
    client = rpc.Client(novalet_conf.CONF.conductor.topic, "1.0", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    for field, value in [("roles", 5), ("roles", [5]), ("request_id", 7),
                         ("is_admin", "yes"), ("project_id", "x" * 300)]:
        bad = context.get_admin_context()
        setattr(bad, field, value)
        with pytest.raises(exception.MalformedRequest) as info:
            client.call(bad, "object_class_action_versions",
                        objname="ComputeNode", objmethod="get_all",
                        object_versions={}, args=[], kwargs={})
        assert "request context" in info.value.message, field
    assert _snapshot(remote) == before
    assert [r for r in caplog.records if r.exc_info] == []
