"""Backports to release 1 and reading release-1 primitives."""

from __future__ import annotations

from novalet import context, objects
from novalet.objects import base
from novalet.upgrade import releases
from tests.conftest import calls_through

RELEASE_1 = releases.SERVICE_VERSION_HISTORY[1]["objects"]


def _node():
    return objects.ComputeNode(
        context.get_admin_context(), id=3, host="h", hypervisor_hostname="n",
        vcpus=4, memory_mb=1024, local_gb=10, hypervisor_type="fake",
        hypervisor_version=1, cpu_info="{}",
        metrics=objects.MonitorMetricList.from_dicts(
            [{"name": "cpu.frequency", "value": 2400, "source": "fake"}]),
        pci_device_pools=objects.PciDevicePoolList.from_dicts(
            [{"vendor_id": "8086", "product_id": "1520", "count": 4,
              "tags": {"physnet": "p1"}}]))


def test_compute_node_to_release_1_with_and_without_manifest():
    for kwargs in ({"target_version": "1.0"},
                   {"target_version": "1.0", "version_manifest": RELEASE_1}):
        data = _node().obj_to_primitive(**kwargs)["novalet_object.data"]
        assert "pci_device_pools" not in data
        assert isinstance(data["metrics"], str)
        assert '"cpu.frequency"' in data["metrics"]
        assert data["vcpus"] == 4


def test_release_1_primitive_reads_as_release_2():
    prim = _node().obj_to_primitive(target_version="1.0")
    prim["novalet_object.changes"] = ["metrics", "vcpus"]
    node = base.NovaletObjectSerializer().deserialize_entity(
        context.get_admin_context(), prim)
    assert node.VERSION == "1.0"
    assert [m.name for m in node.metrics] == ["cpu.frequency"]
    assert not node.obj_attr_is_set("pci_device_pools")
    assert node.obj_what_changed() == {"metrics", "vcpus"}
    # Sent back to release 1 it is release 1's form again.
    again = node.obj_to_primitive()["novalet_object.data"]
    assert isinstance(again["metrics"], str)


def test_service_and_lists_to_release_1():
    svc = objects.Service(host="h", binary="b", started_at="2026-01-01T00:00:00Z")
    assert "started_at" not in svc.obj_to_primitive(
        target_version="1.0")["novalet_object.data"]
    nodes = objects.ComputeNodeList(objects=[_node()])
    prim = nodes.obj_to_primitive(target_version="1.0",
                                  version_manifest=RELEASE_1)
    [child] = prim["novalet_object.data"]["objects"]
    assert child["novalet_object.version"] == "1.0"
    assert "pci_device_pools" not in child["novalet_object.data"]


def test_release_1_service_version_shim():
    old = objects.Service(host="h", binary="b")
    old.VERSION = "1.0"  # as deserialized from a release-1 service
    assert old.obj_implied_service_version() == 1
    assert objects.Service().obj_implied_service_version() == \
        releases.SERVICE_VERSION


def test_the_release_1_shim_lives_as_long_as_release_1_is_supported():
    """The shim goes with release 1's support (``OLDEST_SUPPORTED_SERVICE_
    VERSION`` above 1), and not before."""
    assert hasattr(objects.Service, "obj_implied_service_version") == (
        releases.OLDEST_SUPPORTED_SERVICE_VERSION <= 1)


def test_a_release_1_compute_s_record_says_release_1(conf, sqlite_db):
    """What the shim is for: a release 1 compute creates its record without
    ``version`` (Service 1.0), and the conductor, which would otherwise
    apply this release's default, records service version 1, so ``auto``
    caps the computes to release 1 (the real thing, a release 1 process:
    ``tests/compat/test_mixed_releases.py``)."""
    ctxt = context.get_admin_context()
    with calls_through(conf, "inprocess"):
        from novalet import indirection

        sent = objects.Service(host="r1", binary="novalet-compute",
                               topic="compute")
        sent.VERSION = "1.0"  # as a release 1 service sends it
        indirection.current().conductor.call(
            ctxt, "object_action", objinst=sent, objmethod="create",
            args=(), kwargs={})
        got = objects.Service.get_by_host_and_binary(ctxt, "r1", "novalet-compute")
    assert got.version == 1


def test_a_completed_migration_reads_as_done_in_releases_1_and_2():
    migration = objects.Migration(
        instance_uuid="11111111-1111-4111-8111-111111111111",
        status="completed", migration_type="live-migration")
    for manifest in (RELEASE_1, releases.SERVICE_VERSION_HISTORY[2]["objects"]):
        listed = objects.MigrationList(objects=[migration]).obj_to_primitive(
            target_version=manifest["MigrationList"], version_manifest=manifest)
        [child] = listed["novalet_object.data"]["objects"]
        assert child["novalet_object.version"] == "1.0"
        assert child["novalet_object.data"]["status"] == "done"
    assert migration.obj_to_primitive()["novalet_object.data"]["status"] == \
        "completed"
    other = objects.Migration(status="migrating")
    assert other.obj_to_primitive(target_version="1.0")[
        "novalet_object.data"]["status"] == "migrating"
