"""The conductor's argument checks (``novalet.conductor.validate``) called
directly on the core's remotable methods: each rule refuses with a typed
``MalformedRequest`` naming the call, and lets a good value through."""

from __future__ import annotations

import datetime
import typing
from typing import Any

import pytest

from novalet import exception, objects
from novalet.conductor import validate


def _check(fn: Any, *args: Any, **kwargs: Any) -> None:
    validate.check_call(fn, "Obj.method", args, kwargs, drop=2)


def test_a_bool_is_not_an_int():
    """``True`` is an ``int`` to Python; a caller sending it for an id is
    refused, as is one for a float or inside a list of ints."""
    with pytest.raises(exception.MalformedRequest, match="bool is not int"):
        _check(objects.Service.get_by_id, True)
    with pytest.raises(exception.MalformedRequest, match="bool is not int"):
        _check(objects.ServiceList.report_heartbeats, [1, False])
    with pytest.raises(exception.MalformedRequest, match="bool is not float"):
        validate.check_value("Obj.method(x)", True, float)
    _check(objects.Service.get_by_id, 1)
    _check(objects.ServiceList.report_heartbeats, [1, 2])
    validate.check_value("Obj.method(x)", 1, float)
    validate.check_value("Obj.method(x)", 1.5, float)
    validate.check_value("Obj.method(x)", True, bool)


@pytest.mark.parametrize("value, hint", [
    ("1", int), (1.0, int), (None, int), (1, str), (b"x", str), (1, bool),
    (0, bool), ("x", float), (None, float), ("x", list[int]), (1, dict[str, int]),
    ("x", int | None), (1, str | None), (1, type(None)),
])
def test_values_that_do_not_match_their_annotation(value, hint):
    with pytest.raises(exception.MalformedRequest, match="Obj.method"):
        validate.check_value("Obj.method(x)", value, hint)


@pytest.mark.parametrize("value, hint", [
    (1, int), ("x", str), (False, bool), (None, int | None), (1, int | None),
    (None, type(None)), ([1, 2], list[int]), ((1, 2), list[int]),
    ({"a": 1}, dict[str, int]), ("x", Any), (object(), Any), ("x", None),
    ("x", Any | None), ([1, 2], list[int] | None),
    ([1], typing.List),  # noqa: UP006 (a bare generic: no item type)
    (datetime.datetime(2020, 1, 1), datetime.datetime),
    (1, typing.TypeVar("T")),  # not understood: not checked
])
def test_values_that_match_their_annotation(value, hint):
    validate.check_value("Obj.method(x)", value, hint)


@pytest.mark.parametrize("value, reason", [
    (2 ** 63, "integer out of range"), (-(2 ** 63) - 1, "integer out of range"),
    (float("inf"), "finite"), (float("nan"), "finite"),
    ("a\0b", "NUL"), ("x" * (validate.MAX_TEXT + 1), "longer than 255"),
    ([0] * (validate.MAX_ITEMS + 1), "more than"),
    ({str(i): 0 for i in range(validate.MAX_ITEMS + 1)}, "more than"),
    ({"a\0": 1}, "NUL"), ({"a": "b\0"}, "NUL"), ([["\0"]], "NUL"),
])
def test_limits(value, reason):
    with pytest.raises(exception.MalformedRequest, match=reason) as info:
        validate.check_value("Obj.method(x)", value, None)
    assert info.value.kwargs["reason"].startswith("Obj.method(x): ")


def test_dicts_at_the_item_limit_pass():
    validate.check_value("Obj.method(x)",
                         {str(i): 0 for i in range(validate.MAX_ITEMS)}, None)


def test_the_items_of_lists_and_dicts_match_their_annotation():
    for value, hint, reason in [
            ([1, "x"], list[int], "str is not int"),
            ({"a": "x"}, dict[str, int], "str is not int"),
            ({"a": [1, "x"]}, dict[str, list[int]], "str is not int"),
            (["\0"], None, "text with a NUL character")]:
        with pytest.raises(exception.MalformedRequest) as info:
            validate.check_value("Obj.method(x)", value, hint)
        assert info.value.kwargs["reason"] == "Obj.method(x): " + reason


def test_an_object_argument_has_its_fields_checked():
    bad = objects.Instance(id=1, vcpus=2 ** 31, memory_mb=1)
    with pytest.raises(exception.MalformedRequest, match="Instance.vcpus"):
        validate.check_value("Obj.method(x)", bad, None)
    validate.check_value("Obj.method(x)",
                         objects.Instance(id=1, vcpus=1, memory_mb=1), None)


class _Plain:
    """Methods that are not remotable-wrapped: a bound method, and one
    taking any arguments."""

    def method(self, context: Any, number: int) -> None:
        pass

    def anything(self, context: Any, *args: Any, **kwargs: Any) -> None:
        pass


def test_a_plain_bound_method_is_checked_against_its_own_signature():
    with pytest.raises(exception.MalformedRequest) as info:
        validate.check_call(_Plain().method, "Plain.method", (True,), {}, drop=2)
    assert info.value.kwargs["reason"] == "Plain.method(number): bool is not int"
    validate.check_call(_Plain().method, "Plain.method", (1,), {}, drop=2)


def test_any_positional_and_keyword_arguments_are_checked_one_by_one():
    method = _Plain().anything
    validate.check_call(method, "Plain.anything", (1, "x"), {"k": [1]}, drop=2)
    for args, kwargs, reason in [
            ((1, "a\0"), {}, "Plain.anything(args): text with a NUL character"),
            ((), {"extra": "b\0"},
             "Plain.anything(extra): text with a NUL character")]:
        with pytest.raises(exception.MalformedRequest) as info:
            validate.check_call(method, "Plain.anything", args, kwargs, drop=2)
        assert info.value.kwargs["reason"] == reason


@pytest.mark.parametrize("value", [
    2 ** 63 - 1, -(2 ** 63), "x" * validate.MAX_TEXT,
    [0] * validate.MAX_ITEMS, 1.5,
])
def test_values_at_the_limits_pass(value):
    validate.check_value("Obj.method(x)", value, None)


@pytest.mark.parametrize("wrap", [lambda v: [v], lambda v: {"k": v}],
                         ids=["lists", "dicts"])
def test_nesting_deeper_than_max_depth_is_refused(wrap):
    value: Any = "x"
    for _ in range(validate.MAX_DEPTH):
        value = wrap(value)
    validate.check_value("Obj.method(x)", value, None)
    with pytest.raises(exception.MalformedRequest) as info:
        validate.check_value("Obj.method(x)", wrap(value), None)
    assert info.value.kwargs["reason"] == "Obj.method(x): nested too deep"


def test_the_call_binds_to_the_signature():
    for args, kwargs, reason in [
            ((), {}, "missing a required argument"),
            ((1, 2), {}, "too many"),
            ((), {"service_id": 1, "other": 2}, "unexpected keyword"),
            ((), {1: 1}, "argument names must be strings")]:
        with pytest.raises(exception.MalformedRequest, match=reason) as info:
            validate.check_call(objects.Service.get_by_id, "Obj.method", args,
                                kwargs, drop=2)
        assert info.value.kwargs["reason"].startswith("Obj.method: ")
    with pytest.raises(exception.MalformedRequest) as info:
        validate.check_call(objects.Service.get_by_id, "Obj.method", (), {1: 1},
                            drop=2)
    assert info.value.kwargs["reason"] == \
        "Obj.method: argument names must be strings"
    with pytest.raises(exception.MalformedRequest) as info:
        _check(objects.Service.get_by_id, 2 ** 63)
    assert info.value.kwargs["reason"] == \
        "Obj.method(service_id): integer out of range"
    _check(objects.Service.get_by_id, service_id=1)


@pytest.mark.parametrize("value, hint, reason", [
    (True, int, "bool is not int"),
    ("x", int | None, "str is not int | None"),
    (1, str, "int is not str"),
])
def test_a_refusal_names_the_call_and_the_reason(value, hint, reason):
    with pytest.raises(exception.MalformedRequest) as info:
        validate.check_value("Obj.method(x)", value, hint)
    assert info.value.kwargs["reason"] == "Obj.method(x): " + reason


# -- the version manifest ------------------------------------------------------------

def _manifest_refused(versions: Any) -> str:
    with pytest.raises(exception.MalformedRequest) as info:
        validate.check_manifest("object_action", versions)
    return str(info.value.kwargs["reason"])


def test_a_manifest_names_at_most_1000_objects():
    validate.check_manifest("object_action",
                            {"O%d" % i: "1.0" for i in range(1000)})
    assert _manifest_refused({"O%d" % i: "1.0" for i in range(1001)}) == \
        "object_action: object_versions names more than 1000 objects"


@pytest.mark.parametrize("versions", [
    {1: "1.0"}, {"Service": 1}, {"Service": None}, {None: None},
])
def test_a_manifest_maps_names_to_version_strings(versions):
    assert _manifest_refused(versions) == \
        "object_action: object_versions maps names to version strings"


def test_a_manifest_holds_short_text():
    validate.check_manifest("object_action", {"S" * 255: "1" * 32})
    assert _manifest_refused({"S" * 256: "1.0"}) == \
        "object_action: text longer than 255"
    assert _manifest_refused({"Service": "1" * 33}) == \
        "object_action: text longer than 32"
    assert _manifest_refused({"Service": "1.0\0"}) == \
        "object_action: text with a NUL character"
    for absent in (None, [], "1.0"):  # not a manifest: nothing to check
        validate.check_manifest("object_action", absent)


# -- the fields of an object -------------------------------------------------------

def _refused(obj: Any, reason: str, **kwargs: Any) -> str:
    with pytest.raises(exception.MalformedRequest, match=reason) as info:
        validate.check_object(obj, **kwargs)
    return str(info.value.kwargs["reason"])


def _instance(**values: Any) -> Any:
    values = dict({"id": 1, "vcpus": 1, "memory_mb": 64}, **values)
    return objects.Instance(**values)


def test_text_fits_its_column():
    assert _refused(_instance(task_state="x" * 256), "longer than 255") == \
        "Instance.task_state: text longer than 255"
    _refused(_instance(task_state="a\0b"), "NUL")
    validate.check_object(_instance(task_state="x" * 255))
    # A field without a column of its own: the wide limit.
    pool = objects.PciDevicePool(vendor_id="v" * 300, product_id="p", count=1)
    validate.check_object(pool)
    pool.vendor_id = "v" * (validate.MAX_FIELD_TEXT + 1)
    _refused(pool, "PciDevicePool.vendor_id: text longer than 65535")


def test_integers_fit_their_column():
    _refused(_instance(vcpus=2 ** 31), "Instance.vcpus: integer out of range")
    validate.check_object(_instance(vcpus=2 ** 31 - 1))
    _refused(objects.ComputeNode(free_disk_gb=-(2 ** 31) - 1),
             "ComputeNode.free_disk_gb: integer out of range")
    validate.check_object(objects.ComputeNode(free_disk_gb=-(2 ** 31)))
    # Without a column (a nested object's field): the 64-bit range.
    pool = objects.PciDevicePool(vendor_id="v", product_id="p", count=2 ** 31)
    validate.check_object(pool)
    pool.count = 2 ** 63
    _refused(pool, "PciDevicePool.count: integer out of range")


def test_floats_are_finite_and_datetimes_storable():
    for value in (float("inf"), float("nan")):
        _refused(objects.MonitorMetric(name="m", value=value, source="s"),
                 "MonitorMetric.value: not a finite number")
    validate.check_object(objects.MonitorMetric(name="m", value=1.5, source="s"))
    utc = datetime.UTC
    _refused(_instance(launched_at=datetime.datetime(999, 1, 1, tzinfo=utc)),
             "Instance.launched_at: year 999 out of range")
    for year in (1000, 9999):
        validate.check_object(_instance(
            launched_at=datetime.datetime(year, 1, 1, tzinfo=utc)))


def test_nested_objects_lists_and_dicts_are_checked():
    def node(**values: Any) -> Any:
        return objects.ComputeNode(id=1, **values)

    bad_pool = objects.PciDevicePool(vendor_id="v", product_id="p",
                                     count=2 ** 63)
    _refused(node(pci_device_pools=objects.PciDevicePoolList(
        objects=[bad_pool])), "PciDevicePool.count")
    bad_metric = objects.MonitorMetric(name="m", value=float("nan"), source="s")
    _refused(node(metrics=objects.MonitorMetricList(objects=[bad_metric])),
             "MonitorMetric.value")
    _refused(node(stats={"a": "b\0"}), "ComputeNode.stats: text with a NUL")
    _refused(node(stats={"a\0": "b"}), "ComputeNode.stats: text with a NUL")
    good = objects.MonitorMetric(name="m", value=1.0, source="s")
    validate.check_object(node(
        stats={"a": "b"}, metrics=objects.MonitorMetricList(objects=[good]),
        pci_device_pools=objects.PciDevicePoolList(objects=[
            objects.PciDevicePool(vendor_id="v", product_id="p", count=1)])))
    many = objects.MonitorMetricList(objects=[good] * validate.MAX_ITEMS)
    validate.check_object(node(metrics=many))
    many.objects.append(good)
    _refused(node(metrics=many), "MonitorMetricList.objects: more than")


def test_an_apps_list_of_plain_values_is_checked():
    """An app's object may hold a list of plain values (the core's hold
    lists of objects only): each item is checked as an argument would be."""
    from novalet.objects import base
    from novalet.objects import fields as object_fields
    from novalet.testing import isolated_registry

    with isolated_registry():
        @base.NovaletObjectRegistry.register
        class Tagged(base.NovaletObject):
            OBJ_PROJECT_NAMESPACE = "validatetest"
            VERSION = "1.0"
            fields = {"tags": object_fields.ListOfStringsField()}

        validate.check_object(Tagged(tags=["a", "b" * validate.MAX_TEXT]))
        assert _refused(Tagged(tags=["a", "b\0"]), "NUL") == \
            "Tagged.tags: text with a NUL character"
        _refused(Tagged(tags=["b" * (validate.MAX_TEXT + 1)]), "longer than")


def test_changed_only_checks_the_changes_and_the_id():
    inst = _instance(task_state="a\0b")
    inst.obj_reset_changes()
    validate.check_object(inst, changed_only=True)  # not what it writes
    _refused(inst, "Instance.task_state")  # all of it
    inst.vcpus = 2 ** 31
    _refused(inst, "Instance.vcpus", changed_only=True)
    inst = _instance(id=2 ** 31)
    inst.obj_reset_changes()
    _refused(inst, "Instance.id", changed_only=True)


def test_fields_are_checked_against_the_columns_they_are_stored_in():
    """A field stored under another column's name (``obj_db_columns``) is
    checked against that column."""
    from novalet.db import models

    columns = validate._columns(objects.ComputeNode(id=1))
    table = models.ComputeNode.__table__
    assert columns["pci_device_pools"] is table.c.pci_stats
    assert columns["hypervisor_hostname"] is table.c.hypervisor_hostname
    assert "metrics" in columns and "id" in columns
