"""Corrupt JSON in a stored field (ComputeNode ``stats``, ``metrics``,
``pci_stats``): the row stays readable on every path, the field reads as
empty, one warning names the row, and the next ``save()`` writes a valid
value over it. ``MonitorMetricList.from_json`` and
``PciDevicePoolList.from_json`` refuse the same bad input alike."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from novalet import context, exception, objects
from novalet.objects import stored_json

#: field -> (column, its empty value as the object holds it)
COLUMNS = {
    "stats": ("stats", {}),
    "metrics": ("metrics", []),
    "pci_device_pools": ("pci_stats", []),
}


def _node(ctxt: Any, host: str = "cmp1", name: str = "node-1") -> Any:
    node = objects.ComputeNode(
        ctxt, host=host, hypervisor_hostname=name, vcpus=4, memory_mb=4096,
        local_gb=40, hypervisor_type="fake", hypervisor_version=1,
        cpu_info="{}", stats={"num_instances": "1"},
        metrics=objects.MonitorMetricList.from_dicts(
            [{"name": "cpu.percent", "value": 3.5, "source": "fake"}]),
        pci_device_pools=objects.PciDevicePoolList.from_dicts(
            [{"vendor_id": "8086", "product_id": "1520", "count": 2}]))
    node.create()
    return node


def _plain(value: Any) -> Any:
    return value if isinstance(value, dict) else [o.obj_to_primitive()
                                                 for o in value]


def test_corrupt_columns_read_as_empty_and_are_repaired(path: Any,
                                                        caplog: Any) -> None:
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    other = _node(ctxt, name="node-2")
    for column, _empty in COLUMNS.values():
        path.database.query("UPDATE compute_nodes SET %s = :v WHERE id = :i"
                            % column, v='{"broken": ', i=node.id)
    caplog.set_level(logging.WARNING, logger="novalet.objects.stored_json")

    read = objects.ComputeNode.get_by_id(ctxt, node.id)
    for field, (_column, empty) in COLUMNS.items():
        assert _plain(getattr(read, field)) == empty, field
    assert read.obj_what_changed() == set(COLUMNS)
    # Every other field is as written; the list reads too, the other node whole.
    assert read.vcpus == 4 and read.host == "cmp1"
    listed = objects.ComputeNodeList.get_by_host(ctxt, "cmp1")
    assert [n.id for n in listed] == [node.id, other.id]
    assert listed[1].stats == {"num_instances": "1"}
    assert len(listed[1].metrics) == len(listed[1].pci_device_pools) == 1
    if path.name != "conductor-rabbit-postgresql":  # that one logs in its process
        warnings = [r.getMessage() for r in caplog.records
                    if "corrupt value" in r.getMessage()]
        assert len(warnings) == 3, warnings  # once per column, though read twice
        for column, _empty in COLUMNS.values():
            assert any("compute_nodes row %d (cmp1/node-1): column %s "
                       % (node.id, column) in w for w in warnings), column

    # The next save() writes valid values over them.
    read.save()
    [row] = path.database.query("SELECT * FROM compute_nodes WHERE id = :i", i=node.id)
    assert objects.ComputeNode.obj_corrupt_columns(row) == []
    again = objects.ComputeNode.get_by_id(ctxt, node.id)
    assert again.obj_what_changed() == set()


@pytest.mark.parametrize("field, value", [
    ("stats", "[1, 2]"), ("stats", '{"a": {"nested": 1}}'),
    ("metrics", "{}"), ("metrics", '[{"name": "x"}]'),
    ("pci_device_pools", '"text"'), ("pci_device_pools", '[{"count": 1}]'),
])
def test_json_of_the_wrong_shape_is_corrupt_too(sqlite_db: Any, field: str,
                                                value: str) -> None:
    column, empty = COLUMNS[field]
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    sqlite_db.query("UPDATE compute_nodes SET %s = :v WHERE id = :i" % column,
                    v=value, i=node.id)
    read = objects.ComputeNode.get_by_id(ctxt, node.id)
    assert _plain(getattr(read, field)) == empty
    [row] = sqlite_db.query("SELECT * FROM compute_nodes WHERE id = :i", i=node.id)
    assert objects.ComputeNode.obj_corrupt_columns(row) == [column]


def test_empty_and_valid_values_are_not_corrupt(sqlite_db: Any) -> None:
    ctxt = context.get_admin_context()
    node = _node(ctxt)
    [row] = sqlite_db.query("SELECT * FROM compute_nodes WHERE id = :i", i=node.id)
    assert objects.ComputeNode.obj_corrupt_columns(row) == []
    sqlite_db.query("UPDATE compute_nodes SET stats = NULL, metrics = '', "
                    "pci_stats = NULL WHERE id = :i", i=node.id)
    [row] = sqlite_db.query("SELECT * FROM compute_nodes WHERE id = :i", i=node.id)
    assert objects.ComputeNode.obj_corrupt_columns(row) == []
    assert objects.ComputeNode.get_by_id(ctxt, node.id).obj_what_changed() == set()


@pytest.mark.parametrize("text", ["{not json", "{}", '"x"', "[1]", '[{"a": 1}]',
                                  "[null]"])
@pytest.mark.parametrize("cls", ["MonitorMetricList", "PciDevicePoolList"])
def test_both_from_json_refuse_alike(cls: str, text: str) -> None:
    from_json = getattr(objects, cls).from_json
    with pytest.raises(exception.InvalidJSONValue) as info:
        from_json(text)
    assert cls in info.value.message
    assert len(from_json(None)) == len(from_json("")) == len(from_json("[]")) == 0


def test_dict_of_strings_parser() -> None:
    assert stored_json.parse_dict_of_strings('{"a": 1, "b": "x"}') == {
        "a": "1", "b": "x"}
    assert stored_json.parse_dict_of_strings(None) == {}
    with pytest.raises(exception.InvalidJSONValue):
        stored_json.parse_dict_of_strings("[]")
