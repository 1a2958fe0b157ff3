"""Unit tests of the object base: the indirection switch, the no-op save
wrapper, field errors and the serializer's typed errors."""

from __future__ import annotations

import threading

import pytest

from novalet import context, exception, objects
from novalet.objects import base


class RecordingAPI:
    def __init__(self):
        self.calls = []

    def object_action(self, ctxt, objinst, objmethod, args, kwargs):
        self.calls.append(("object_action", objinst.obj_name(), objmethod))
        return {"memory_mb_used": 7, "obj_what_changed": []}, "result"

    def object_class_action_versions(self, ctxt, objname, objmethod, versions,
                                     args, kwargs):
        self.calls.append(("class_action", objname, objmethod, dict(versions)))
        return 42

    def object_backport_versions(self, ctxt, objinst, versions):
        raise AssertionError("not used")


@pytest.fixture
def api():
    recording = RecordingAPI()
    base.set_indirection_api(recording)
    yield recording
    base.set_indirection_api(None)


def _node():
    node = objects.ComputeNode(context.get_admin_context(), id=1,
                               memory_mb_used=0)
    node.obj_reset_changes()
    return node


def test_remotable_goes_through_the_installed_api(api):
    node = _node()
    node.memory_mb_used = 3
    assert node.save() == "result"
    assert api.calls == [("object_action", "ComputeNode", "save")]
    assert node.memory_mb_used == 7  # the update from the "conductor"
    assert node.obj_what_changed() == set()


@pytest.mark.parametrize("name", ["ComputeNode", "Service", "Instance",
                                  "Migration"])
def test_noop_save_sends_nothing(api, name):
    obj = getattr(objects, name)(context.get_admin_context(), id=1)
    obj.obj_reset_changes()
    obj.save()
    assert api.calls == []


def test_class_methods_send_the_version_manifest(api):
    assert objects.ServiceList.get_all(context.get_admin_context()) == 42
    name, objname, method, versions = api.calls[0][:4]
    assert (objname, method) == ("ServiceList", "get_all")
    assert versions["ServiceList"] == objects.ServiceList.VERSION
    assert versions["Service"] == objects.Service.VERSION


def test_save_keeps_its_remotable_mark():
    for cls in (objects.Service, objects.ComputeNode, objects.Instance,
                objects.Migration):
        assert getattr(cls.save, "remotable", False), cls
        assert cls.save.original_fn.__name__ == "save"


def test_run_locally_is_per_thread(api):
    seen = {}

    def other_thread():
        seen["other"] = base.NovaletObject.indirection_api

    with base.run_locally():
        assert base.NovaletObject.indirection_api is None
        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
    assert seen["other"] is api
    assert objects.Service.indirection_api is api


def test_indirection_api_cannot_be_assigned_on_an_instance():
    with pytest.raises(AttributeError):
        objects.Service().indirection_api = object()


def test_field_errors_name_object_and_field():
    svc = objects.Service()
    with pytest.raises(exception.ObjectFieldInvalid) as info:
        svc.report_count = "x"
    assert info.value.kwargs["objname"] == "Service"
    assert info.value.kwargs["field"] == "report_count"
    assert isinstance(info.value, ValueError)
    assert "report_count" not in svc.obj_what_changed()


@pytest.mark.parametrize("primitive, error", [
    ("not a dict", None),
    ({"novalet_object.name": "Nope", "novalet_object.version": "1.0",
      "novalet_object.namespace": "novalet", "novalet_object.data": {}},
     exception.UnknownObject),
    ({"novalet_object.name": "Service", "novalet_object.version": "1.0",
      "novalet_object.namespace": "novalet", "novalet_object.data": []},
     exception.MalformedRequest),
    ({"novalet_object.name": "Service", "novalet_object.version": "3.0",
      "novalet_object.namespace": "novalet", "novalet_object.data": {}},
     exception.UnsupportedObjectVersion),
    ({"novalet_object.name": "Service", "novalet_object.version": "1.0",
      "novalet_object.namespace": "novalet",
      "novalet_object.data": {"forced_down": "perhaps"}},
     exception.ObjectFieldInvalid),
])
def test_serializer_errors_are_typed(primitive, error):
    serializer = base.NovaletObjectSerializer()
    ctxt = context.get_admin_context()
    if error is None:  # a plain string is just a string
        assert serializer.deserialize_entity(ctxt, primitive) == primitive
        return
    with pytest.raises(error):
        serializer.deserialize_entity(ctxt, primitive)


def test_serializer_round_trip_keeps_changes():
    serializer = base.NovaletObjectSerializer()
    ctxt = context.get_admin_context()
    node = _node()
    node.memory_mb_used = 12
    again = serializer.deserialize_entity(ctxt, serializer.serialize_entity(ctxt, node))
    assert again.obj_get_changes() == {"memory_mb_used": 12}
    assert again._context is ctxt
