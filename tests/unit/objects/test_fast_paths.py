"""novalet's own (faster) object (de)serialization gives what
oslo.versionedobjects' implementation gives, and the conductor's change
detection sees every change a method makes, in place ones included."""

from __future__ import annotations

import datetime

import pytest
from oslo_versionedobjects import base as ovo_base

from novalet import context, exception, objects
from novalet.conductor import manager as conductor_manager
from novalet.objects import base, codec


def _full_node():
    ctxt = context.get_admin_context()
    node = objects.ComputeNode(
        ctxt, id=3, uuid="0b0c7a5e-2f4c-4bb5-9e8e-0c1a4f0c9d11", host="h1",
        hypervisor_hostname="n1", vcpus=8, memory_mb=8192, local_gb=80,
        hypervisor_type="fake", hypervisor_version=1, cpu_info="{}",
        host_ip="192.0.2.7", stats={"num_instances": "2"},
        created_at=datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC),
        metrics=objects.MonitorMetricList(objects=[objects.MonitorMetric(
            name="cpu.percent", value=12, source="fake",
            timestamp=datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC))]),
        pci_device_pools=objects.PciDevicePoolList(objects=[]))
    node.obj_set_defaults()
    node.obj_reset_changes(recursive=True)
    return node


def _library_to_primitive(obj, *args):
    return ovo_base.VersionedObject.obj_to_primitive(obj, *args)


def _library_from_primitive(cls, primitive):
    ctxt = context.get_admin_context()
    return ovo_base.VersionedObject._obj_from_primitive.__func__(
        cls, ctxt, primitive["novalet_object.version"], primitive)


@pytest.mark.parametrize("change", [None, "memory_mb_used", "metrics"])
def test_to_primitive_matches_the_library(change):
    node = _full_node()
    if change == "memory_mb_used":
        node.memory_mb_used = 5
    elif change == "metrics":
        node.metrics[0].value = 99  # a change inside a nested object
    assert node.obj_to_primitive() == _library_to_primitive(node)
    manifest = ovo_base.obj_tree_get_versions("ComputeNode")
    assert node.obj_to_primitive(version_manifest=manifest) == \
        _library_to_primitive(node, None, manifest)
    assert node.obj_what_changed() == \
        ovo_base.VersionedObject.obj_what_changed(node)


def test_a_manifest_with_older_versions_still_backports():
    node = _full_node()
    manifest = dict(ovo_base.obj_tree_get_versions("ComputeNode"),
                    ComputeNode="1.0")
    primitive = node.obj_to_primitive(target_version="1.0",
                                      version_manifest=manifest)
    assert primitive["novalet_object.version"] == "1.0"
    assert "pci_device_pools" not in primitive["novalet_object.data"]
    assert isinstance(primitive["novalet_object.data"]["metrics"], str)


def test_from_primitive_matches_the_library():
    node = _full_node()
    node.memory_mb_used = 5
    primitive = node.obj_to_primitive()
    ours = objects.ComputeNode.obj_from_primitive(primitive)
    theirs = _library_from_primitive(objects.ComputeNode, primitive)
    assert ours.obj_to_primitive() == theirs.obj_to_primitive() == primitive
    assert ours.obj_what_changed() == theirs.obj_what_changed() == {"memory_mb_used"}
    for name in node.fields:
        assert getattr(ours, name) == getattr(theirs, name) or name in (
            "metrics", "pci_device_pools")


def _load_one(loader, field, value):
    """What loading ``field`` = ``value`` gives: the value, or "refused"
    (novalet names the field in an ObjectFieldInvalid; the library's
    message differs)."""
    primitive = _full_node().obj_to_primitive()
    primitive["novalet_object.data"][field] = value
    try:
        return getattr(loader(primitive), field)
    except (ValueError, TypeError):
        return "refused"


def test_none_loads_as_the_library_loads_it():
    for field in sorted(objects.ComputeNode.fields):
        ours = _load_one(objects.ComputeNode.obj_from_primitive, field, None)
        theirs = _load_one(
            lambda p: _library_from_primitive(objects.ComputeNode, p), field, None)
        assert ours == theirs, field


@pytest.mark.parametrize("value", [
    "2026-01-02T03:04:05Z",            # what the library writes (fast path)
    "2026-01-02T03:04:05.250000Z",     # other ISO 8601 forms: the field's path
    "2026-01-02T03:04:05+02:00",
    "2026-01-02 03:04:05",
    "2026-01-02 03:04:05Z",            # twenty characters, another separator
    "2026-01-02T03:04:60Z",
    "2026-13-02T03:04:05Z",            # twenty characters, not a date
    "yesterday",
])
def test_datetimes_load_as_the_library_loads_them(value):
    ours = _load_one(objects.ComputeNode.obj_from_primitive, "created_at", value)
    theirs = _load_one(
        lambda p: _library_from_primitive(objects.ComputeNode, p), "created_at", value)
    assert ours == theirs
    if isinstance(ours, datetime.datetime):
        assert ours.utcoffset() == theirs.utcoffset()


def test_nested_objects_load_as_the_library_loads_them():
    node = _full_node()
    primitive = node.obj_to_primitive()
    ours = objects.ComputeNode.obj_from_primitive(primitive)
    assert type(ours.metrics) is objects.MonitorMetricList
    assert ours.metrics[0].value == 12
    assert ours.metrics[0]._context is ours._context
    assert ours.metrics.obj_to_primitive() == node.metrics.obj_to_primitive()
    # A primitive of another object in the field is refused, as before.
    data = primitive["novalet_object.data"]
    data["metrics"] = node.pci_device_pools.obj_to_primitive()
    with pytest.raises(exception.ObjectFieldInvalid, match="metrics"):
        objects.ComputeNode.obj_from_primitive(primitive)


@pytest.mark.parametrize("entity, plain", [
    (None, True), (3, True), ("x", True), ([1, "a", None], True),
    ({"a": 1, "b": [1, {"c": 2.5}]}, True), ((1, 2), True),
    ({"a": {"b": {"c": {"d": 1}}}}, False),  # deeper than it looks
    ({1, 2}, False),                          # a set becomes a list
    ({"novalet_object.name": "X"}, False),    # an object primitive
    ([{"novalet_object.name": "X"}], False),
    (datetime.datetime(2026, 1, 1), False),
])
def test_plain_entities_cross_the_serializer_unchanged(entity, plain):
    serializer = base.NovaletObjectSerializer()
    assert serializer.is_plain(entity) is plain
    if plain:
        assert serializer.serialize_entity(None, entity) is entity
        assert serializer.deserialize_entity(None, entity) is entity
        library = ovo_base.VersionedObjectSerializer()
        assert library.serialize_entity(None, entity) == entity


@pytest.mark.parametrize("field, value", [
    ("vcpus", "many"), ("vcpus", -1), ("id", "seven"), ("deleted", "yes"),
    ("uuid", "not-a-uuid"), ("hypervisor_type", ["x"]), ("stats", 3),
    ("created_at", "yesterday"), ("host_ip", "300.1.1.1"),
])
def test_from_primitive_still_checks_every_field(field, value):
    primitive = _full_node().obj_to_primitive()
    primitive["novalet_object.data"][field] = value
    with pytest.raises(exception.ObjectFieldInvalid) as e:
        objects.ComputeNode.obj_from_primitive(primitive)
    assert field in str(e.value)


def test_obj_attr_is_set_refuses_unknown_names():
    node = _full_node()
    assert node.obj_attr_is_set("vcpus")
    del node.vcpus  # ovo stores fields as _obj_<name>
    assert not node.obj_attr_is_set("vcpus")
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        node.obj_attr_is_set("nope")


@pytest.fixture
def in_place_class():
    """A registered object whose remotable method changes fields in place;
    unregistered afterwards (the fingerprint test sees every class)."""

    class InPlaceProbe(base.NovaletObject):
        VERSION = "1.0"
        fields = {"stats": objects.ComputeNode.fields["stats"],
                  "metrics": objects.ComputeNode.fields["metrics"],
                  "name": objects.ComputeNode.fields["host"]}

        @base.remotable
        def mutate(self, what):
            if what == "dict":
                self.stats["added"] = "1"  # no setter runs
            elif what == "nested":
                self.metrics.objects.append(objects.MonitorMetric(
                    name="x", value=1, source="s",
                    timestamp=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)))
            elif what == "nested-field":
                self.metrics[0].value = 2  # a nested object's setter
            elif what == "same":
                self.name = self.name  # assigned, but equal
            elif what == "equal-copy":
                self.stats = dict(self.stats)  # a new, equal value
            elif what == "new":
                self.name = "other"
            return what

    base.NovaletObjectRegistry.register(InPlaceProbe)
    yield InPlaceProbe
    ovo_base.VersionedObjectRegistry._registry._obj_classes.pop("InPlaceProbe")
    for registered in codec.classes("novalet").get("InPlaceProbe", []):
        codec.remove_class(registered)  # 1.0, and 1.1 when a test added it
    delattr(objects, "InPlaceProbe")


@pytest.mark.parametrize("what, sent_back", [
    ("dict", {"stats"}), ("nested", {"metrics"}), ("nested-field", {"metrics"}),
    ("same", set()), ("equal-copy", set()), ("new", {"name"}),
])
def test_conductor_sees_changes_made_in_place(in_place_class, what, sent_back):
    ctxt = context.get_admin_context()
    metric = objects.MonitorMetric(
        name="cpu", value=1, source="s",
        timestamp=datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC))
    obj = in_place_class(ctxt, stats={"a": "b"}, name="n",
                         metrics=objects.MonitorMetricList(objects=[metric]))
    obj.obj_reset_changes(recursive=True)
    manager = conductor_manager.ConductorManager(host="unit")
    manifest = ovo_base.obj_tree_get_versions(obj.obj_name())
    updates, result = manager.object_action(ctxt, obj, "mutate", [what], {},
                                            object_versions=manifest)
    assert result == what
    assert set(updates) - {"obj_what_changed"} == sent_back


@pytest.mark.parametrize("with_objects", [True, False])
def test_lists_load_as_the_library_loads_them(with_objects):
    metrics = _full_node().metrics
    primitive = metrics.obj_to_primitive()
    if not with_objects:
        del primitive["novalet_object.data"]["objects"]
    ours = objects.MonitorMetricList.obj_from_primitive(primitive)
    theirs = _library_from_primitive(objects.MonitorMetricList, primitive)
    assert ours.obj_to_primitive() == theirs.obj_to_primitive()
    assert ours.obj_what_changed() == theirs.obj_what_changed()
    assert len(ours) == (1 if with_objects else 0)
    ours.objects.append(metrics[0])  # still a list that checks its elements
    with pytest.raises(ValueError):
        ours.objects.append("not an object")


@pytest.mark.parametrize("key, value, error", [
    ("novalet_object.version", 1.0, exception.MalformedRequest),
    ("novalet_object.version", "9.0", exception.UnsupportedObjectVersion),
    ("novalet_object.name", ["ComputeNode"], exception.MalformedRequest),
    ("novalet_object.name", "NoSuchThing", exception.UnknownObject),
    ("novalet_object.namespace", "nova", exception.UnknownObject),
])
def test_bad_envelopes_are_refused_with_typed_errors(key, value, error):
    primitive = _full_node().obj_to_primitive()
    primitive[key] = value
    with pytest.raises(error):
        base.NovaletObjectSerializer().deserialize_entity(
            context.get_admin_context(), primitive)


def test_a_new_registration_is_seen_by_the_cached_lookups(in_place_class):
    primitive = in_place_class(context.get_admin_context(), name="n").obj_to_primitive()
    assert type(base.NovaletObject.obj_from_primitive(primitive)) is in_place_class

    class InPlaceProbeV2(in_place_class):
        VERSION = "1.1"

        @classmethod
        def obj_name(cls):
            return "InPlaceProbe"

    assert codec.version_tree("InPlaceProbe")["InPlaceProbe"] == "1.0"
    base.NovaletObjectRegistry.register(InPlaceProbeV2)
    assert codec.version_tree("InPlaceProbe")["InPlaceProbe"] == "1.1"
    primitive["novalet_object.version"] = "1.1"
    assert type(base.NovaletObject.obj_from_primitive(primitive)) is InPlaceProbeV2


def test_only_fields_that_can_change_in_place_are_copied_for_the_diff():
    node = objects.ComputeNode
    assert {name for name, _f, _a in codec.mutable_field_attrs(node)} == {
        "host_ip", "stats", "metrics", "pci_device_pools"}
    assert {name for name, _f, _a in codec.mutable_field_attrs(objects.Service)} == {
        "app_releases"}
    assert codec.mutable_field_attrs(objects.Instance) == ()
