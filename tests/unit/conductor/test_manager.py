"""The conductor's dispatcher called directly (no transport): what it
refuses, and what it sends back, checked one guard at a time."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, objects
from novalet.conductor import manager as conductor_manager
from novalet.objects import base as objects_base
from novalet.objects import remotable


@pytest.fixture
def manager() -> conductor_manager.ConductorManager:
    return conductor_manager.ConductorManager(novalet_conf.CONF, "test-host")


def _versions(*classes: Any) -> dict[str, str]:
    return {cls.obj_name(): cls.VERSION for cls in classes}


@contextlib.contextmanager
def _remotable_method(cls: type, name: str,
                      method: Callable[..., Any]) -> Iterator[None]:
    """``method`` marked remotable on ``cls`` as ``name`` for the block (the
    remotable lookup read again on the way in and out)."""
    method.remotable = True  # type: ignore[attr-defined]
    setattr(cls, name, method)
    remotable.forget(cls)
    try:
        yield
    finally:
        delattr(cls, name)
        remotable.forget(cls)


# -- class methods: remotable ones only -----------------------------------------

@pytest.mark.parametrize("method", ["to_json_schema", "obj_name",
                                    "_obj_primitive_key", "save", "nothing"])
def test_class_action_refuses_what_is_not_a_remotable_classmethod(manager, method):
    """``to_json_schema`` is a public classmethod of every object, passes the
    name filter and is a classmethod: only its missing remotable mark stops
    it."""
    with pytest.raises(exception.MethodNotRemotable) as info:
        manager.object_class_action_versions(
            context.get_admin_context(), "ComputeNode", method,
            _versions(objects.ComputeNode), [], {})
    assert "ComputeNode" in info.value.message
    assert str(method) in info.value.message


def test_class_action_runs_a_remotable_classmethod(manager, sqlite_db):
    ctxt = context.get_admin_context()
    result = manager.object_class_action_versions(
        ctxt, "ComputeNodeList", "get_all",
        _versions(objects.ComputeNodeList, objects.ComputeNode), [], {})
    assert result["novalet_object.name"] == "ComputeNodeList"
    assert result["novalet_object.data"]["objects"] == []


def test_remotable_class_method_lookup_returns_the_bound_method():
    method = conductor_manager._remotable_class_method(objects.ServiceList,
                                                       "get_all")
    assert method == objects.ServiceList.get_all
    for name in ("to_json_schema", "create", "", None, 3):
        with pytest.raises(exception.MethodNotRemotable):
            conductor_manager._remotable_class_method(objects.ServiceList, name)


# -- instance methods: remotable ones only --------------------------------------

def _instance(**values: Any) -> Any:
    values = dict({"id": 7, "uuid": "6f1d2c1e-8d2a-4a59-9a3e-2b0b1c3d4e5f",
                   "vcpus": 1, "memory_mb": 64}, **values)
    inst = objects.Instance(context.get_admin_context(), **values)
    inst.obj_reset_changes()
    return inst


def test_object_action_refuses_a_plain_method(manager, monkeypatch):
    """A public method without the remotable mark, reached by name: only the
    remotable check stands between a caller and it."""
    ran = []
    monkeypatch.setattr(objects.Instance, "plain_method",
                        lambda self: ran.append(self) or "ran", raising=False)
    with pytest.raises(exception.MethodNotRemotable) as info:
        manager.object_action(context.get_admin_context(), _instance(),
                              "plain_method", [], {})
    assert "Instance.plain_method" in info.value.message
    assert ran == []


@pytest.mark.parametrize("method", ["disk_gb", "get_by_uuid", "obj_clone",
                                    "_from_db_object", "fields", "VERSION"])
def test_object_action_refuses_attributes_that_are_not_remotable_methods(
        manager, method):
    with pytest.raises(exception.MethodNotRemotable):
        manager.object_action(context.get_admin_context(), _instance(), method,
                              [], {})


def test_remotable_instance_method_lookup():
    inst = _instance()
    assert conductor_manager._remotable_instance_method(inst, "save") == inst.save
    # Found once, then served from what was found: the same answer.
    assert conductor_manager._remotable_instance_method(inst, "save") == inst.save
    for name in ("disk_gb", "get_by_uuid", "obj_reset_changes", "", None):
        with pytest.raises(exception.MethodNotRemotable):
            conductor_manager._remotable_instance_method(inst, name)


# -- what goes back: the changed fields only, at the caller's version -------------

def _migration_at(version: str | None, **changes: Any) -> Any:
    """A created migration as a caller at ``version`` sends it, with
    ``changes`` pending."""
    ctxt = context.get_admin_context()
    inst = objects.Instance(ctxt, host="h1", node="n1", vcpus=1, memory_mb=64)
    inst.create()
    mig = objects.Migration(ctxt, instance_uuid=inst.uuid, source_compute="h1",
                            dest_compute="h2", source_node="n1",
                            dest_node="n2", status="migrating")
    mig.create()
    primitive = mig.obj_to_primitive(target_version=version)
    primitive["novalet_object.data"].update(changes)
    primitive["novalet_object.changes"] = sorted(changes)
    serializer = objects_base.NovaletObjectSerializer()
    sent = serializer.deserialize_entity(ctxt, primitive)
    assert sent.VERSION == version
    return sent


@pytest.mark.parametrize("version", ["1.0", None])
def test_a_save_returns_only_the_fields_it_changed(manager, sqlite_db, version):
    """An older caller (the backport branch) gets the same few fields back
    as a current one (None: this code's version), not every field of the
    object."""
    version = version or objects.Migration.VERSION
    sent = _migration_at(version, status="post-migrating", new_vcpus=2)
    updates, result = manager.object_action(context.get_admin_context(), sent,
                                            "save", [], {})
    assert result is None
    assert set(updates) == {"updated_at", "obj_what_changed"}
    assert updates["obj_what_changed"] == []
    row = sqlite_db.query("SELECT status, new_vcpus FROM migrations")[0]
    assert tuple(row) == ("post-migrating", 2)


def test_an_older_caller_gets_fields_it_knows_in_its_form(manager, sqlite_db):
    """A 1.0 caller whose object the method changes to a 1.1-only value gets
    it back in the 1.0 form, and only that field."""
    sent = _migration_at("1.0")

    def finish(self: Any) -> None:
        self.status = "completed"
    with _remotable_method(type(sent), "finish", finish):
        updates, _ = manager.object_action(context.get_admin_context(), sent,
                                           "finish", [], {})
    assert updates == {"status": "done", "obj_what_changed": ["status"]}


def test_a_method_that_changes_nothing_returns_no_fields(manager, sqlite_db):
    for version in ("1.0", objects.Migration.VERSION):
        sent = _migration_at(version)
        updates, _ = manager.object_action(context.get_admin_context(), sent,
                                           "save", [], {})
        assert updates == {"obj_what_changed": []}


def test_changes_made_in_place_go_back(manager):
    """A method that edits a dict, a nested object or the objects of a
    nested list in place (no assignment) still sends those fields back."""
    metric = objects.MonitorMetric(name="cpu", value=1.0, source="s")
    node = objects.ComputeNode(
        context.get_admin_context(), id=1, stats={"a": "1"},
        metrics=objects.MonitorMetricList(objects=[metric]),
        pci_device_pools=objects.PciDevicePoolList(objects=[
            objects.PciDevicePool(vendor_id="v", product_id="p", count=1)]))
    node.obj_reset_changes(recursive=True)

    def touch(self: Any) -> None:
        self.stats["b"] = "2"
        self.metrics.objects[0].value = 9.0
        self.pci_device_pools.objects[0].count = 2
    with _remotable_method(type(node), "touch", touch):
        updates, _ = manager.object_action(context.get_admin_context(), node,
                                           "touch", [], {})
    assert set(updates) == {"stats", "metrics", "pci_device_pools",
                            "obj_what_changed"}
    assert updates["stats"] == {"a": "1", "b": "2"}


@pytest.mark.parametrize("kwargs", [
    {"object_versions": ["ComputeNode"]},
    {"objnamespace": 5},
    {"objname": 5},
])
def test_class_action_arguments_of_the_wrong_type_are_malformed(manager, kwargs):
    call = dict(objname="ComputeNode", objmethod="get_by_id",
                object_versions=_versions(objects.ComputeNode), args=[1],
                kwargs={})
    call.update(kwargs)
    with pytest.raises(exception.MalformedRequest) as info:
        manager.object_class_action_versions(context.get_admin_context(),
                                             **call)
    assert info.value.kwargs["reason"] == (
        "objname and objnamespace must be strings and object_versions a dict")


def test_unknown_objects_and_namespaces_are_named(manager):
    ctxt = context.get_admin_context()
    with pytest.raises(exception.UnknownNamespace) as info:
        manager.object_class_action_versions(
            ctxt, "Widget", "get", {"Widget": "1.0"}, [], {},
            objnamespace="nowhere")
    # The namespaces with registered objects in this process: novalet's, and
    # those of apps an earlier test of this worker imported.
    from novalet.objects import codec

    loaded = ", ".join(sorted(codec.namespaces()))
    assert "novalet" in loaded.split(", ")
    assert info.value.kwargs == {"namespace": "nowhere", "objname": "Widget",
                                 "loaded": loaded}
    with pytest.raises(exception.UnknownObject) as info:
        manager.object_class_action_versions(
            ctxt, "Widget", "get", {"Widget": "1.0"}, [], {})
    assert info.value.kwargs == {"objname": "Widget",
                                 "reason": "no such object is registered"}


def test_a_save_that_reads_its_row_back_returns_only_what_changed(
        manager, sqlite_db):
    """``Service.save`` assigns every field again from the row it reads
    back: equal values are not changes."""
    ctxt = context.get_admin_context()
    svc = objects.Service(ctxt, host="h1", binary="novalet-compute",
                          topic="compute")
    svc.create()
    svc.disabled_reason = "maintenance"
    updates, _ = manager.object_action(ctxt, svc, "save", [], {})
    assert "disabled_reason" not in updates  # the caller sent it
    assert not {"host", "binary", "topic", "created_at", "report_count",
                "uuid", "id", "version"} & set(updates)
    assert "updated_at" in updates


def test_pending_changes_are_reported_when_the_method_changes_nothing(manager):
    node = objects.ComputeNode(context.get_admin_context(), id=1,
                               memory_mb_used=0)
    node.obj_reset_changes()
    node.memory_mb_used = 5  # not saved by the method below

    def noop(self: Any) -> None:
        pass
    with _remotable_method(type(node), "noop", noop):
        updates, _ = manager.object_action(context.get_admin_context(), node,
                                           "noop", [], {})
    assert updates == {"obj_what_changed": ["memory_mb_used"]}


@pytest.mark.parametrize("name", ["_hidden", "obj_hidden"])
def test_private_and_framework_names_are_refused_even_if_remotable(manager, name):
    """The name filter stands on its own: a private or ``obj_`` method is
    never dispatched, whatever marks it carries."""
    ran = []

    def hidden(self: Any) -> None:
        ran.append(self)
    inst = _instance()
    with _remotable_method(type(inst), name, hidden), \
            pytest.raises(exception.MethodNotRemotable):
        manager.object_action(context.get_admin_context(), inst, name, [], {})
    assert ran == []


@pytest.mark.parametrize("args, kwargs", [("x", {}), ([], []), ([], None)])
def test_args_must_be_a_list_and_kwargs_a_dict(manager, args, kwargs):
    with pytest.raises(exception.MalformedRequest) as info:
        manager.object_action(context.get_admin_context(), _instance(), "save",
                              args, kwargs)
    assert info.value.kwargs["reason"] == "args must be a list and kwargs a dict"
