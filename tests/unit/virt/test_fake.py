"""The fake virt driver: resource views, guests, orphans, failures, threads."""

from __future__ import annotations

import json
import threading
import types
import uuid as uuidlib

import pytest
from oslo_config import cfg

import novalet  # noqa: F401  (selects oslo.service's backend first)
from novalet import exception
from novalet.conf import default as default_conf
from novalet.conf import fake as fake_conf
from novalet.virt import driver
from novalet.virt.fake import FakeDriver


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    default_conf.register_opts(c)
    fake_conf.register_opts(c)
    c([], project="novalet-test", default_config_files=[])
    c.set_override("host", "h1")
    return c


def make_instance(node: str, vcpus: int = 2, memory_mb: int = 2048,
                  root_gb: int = 10, ephemeral_gb: int = 5) -> types.SimpleNamespace:
    return types.SimpleNamespace(uuid=str(uuidlib.uuid4()), node=node, vcpus=vcpus,
                                 memory_mb=memory_mb, root_gb=root_gb,
                                 ephemeral_gb=ephemeral_gb)


def test_is_a_compute_driver_loadable_by_name(conf: cfg.ConfigOpts) -> None:
    drv = driver.load_driver("fake", conf)
    assert isinstance(drv, FakeDriver)
    assert drv.get_available_nodes() == ["h1-node-1"]


def test_nodes_follow_config(conf: cfg.ConfigOpts) -> None:
    conf.set_override("nodes", 3, group="fake")
    assert FakeDriver(conf).get_available_nodes() == [
        "h1-node-1", "h1-node-2", "h1-node-3"]


def test_constructor_overrides_host_and_node_count(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf, host="h7", nodes=2)
    assert drv.get_available_nodes() == ["h7-node-1", "h7-node-2"]


def test_zero_nodes_is_a_configuration_error(conf: cfg.ConfigOpts) -> None:
    with pytest.raises(exception.ConfigurationError):
        FakeDriver(conf, nodes=0)


def test_resource_view_of_an_empty_node(conf: cfg.ConfigOpts) -> None:
    conf.set_override("vcpus", 8, group="fake")
    conf.set_override("memory_mb", 4096, group="fake")
    conf.set_override("local_gb", 100, group="fake")
    view = FakeDriver(conf).get_available_resource("h1-node-1")
    driver.check_resource_view("h1-node-1", view)
    assert set(view) >= set(driver.REQUIRED_RESOURCE_KEYS)
    assert (view["vcpus"], view["memory_mb"], view["local_gb"]) == (8, 4096, 100)
    assert (view["vcpus_used"], view["memory_mb_used"], view["local_gb_used"]) == (0, 0, 0)
    assert view["disk_available_least"] == 100
    assert view["hypervisor_type"] == "fake"
    assert isinstance(view["hypervisor_version"], int)
    assert view["hypervisor_hostname"] == "h1-node-1"
    assert json.loads(view["cpu_info"])["topology"]["cores"] == 8


def test_spawn_and_destroy_change_usage(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    inst = make_instance("h1-node-1", vcpus=2, memory_mb=2048, root_gb=10, ephemeral_gb=5)
    drv.spawn(inst)
    view = drv.get_available_resource("h1-node-1")
    assert (view["vcpus_used"], view["memory_mb_used"], view["local_gb_used"]) == (2, 2048, 15)
    assert view["disk_available_least"] == conf.fake.local_gb - 15
    assert drv.list_guests("h1-node-1") == [
        {"uuid": inst.uuid, "vcpus": 2, "memory_mb": 2048, "disk_gb": 15}]

    drv.destroy(inst)
    view = drv.get_available_resource("h1-node-1")
    assert (view["vcpus_used"], view["memory_mb_used"], view["local_gb_used"]) == (0, 0, 0)
    assert drv.list_guests("h1-node-1") == []


def test_destroy_of_a_missing_guest_is_a_no_op(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    drv.destroy(make_instance("h1-node-1"))
    drv.destroy(make_instance("no-such-node"))
    assert drv.list_guests("h1-node-1") == []


def test_spawn_on_an_unknown_node_fails(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    with pytest.raises(exception.VirtDriverError, match="h1-node-9"):
        drv.spawn(make_instance("h1-node-9"))


def test_spawn_of_an_existing_uuid_fails(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf, nodes=2)
    inst = make_instance("h1-node-1")
    drv.spawn(inst)
    inst.node = "h1-node-2"
    with pytest.raises(exception.VirtDriverError, match="already exists"):
        drv.spawn(inst)
    assert drv.list_guests("h1-node-2") == []


def test_unknown_node_is_refused_by_every_node_call(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    for call in (drv.get_available_resource, drv.list_guests, drv.get_pci_device_pools):
        with pytest.raises(exception.VirtDriverError):
            call("other-node-1")


def test_nodes_are_accounted_separately(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf, nodes=2)
    a = make_instance("h1-node-1", vcpus=1, memory_mb=512)
    b = make_instance("h1-node-2", vcpus=4, memory_mb=4096)
    drv.spawn(a)
    drv.spawn(b)
    assert [g["uuid"] for g in drv.list_guests("h1-node-1")] == [a.uuid]
    assert [g["uuid"] for g in drv.list_guests("h1-node-2")] == [b.uuid]
    assert drv.get_available_resource("h1-node-1")["vcpus_used"] == 1
    assert drv.get_available_resource("h1-node-2")["memory_mb_used"] == 4096


def test_simulated_hosts_in_one_process_are_independent(conf: cfg.ConfigOpts) -> None:
    h7, h8 = FakeDriver(conf, host="h7"), FakeDriver(conf, host="h8")
    h7.spawn(make_instance("h7-node-1"))
    assert len(h7.list_guests("h7-node-1")) == 1
    assert h8.list_guests("h8-node-1") == []


def test_orphan_counts_in_usage_and_listing(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    orphan = drv.add_orphan("h1-node-1", "0rphan-uuid", vcpus=3, memory_mb=1024, disk_gb=7)
    assert orphan == {"uuid": "0rphan-uuid", "vcpus": 3, "memory_mb": 1024, "disk_gb": 7}
    view = drv.get_available_resource("h1-node-1")
    assert (view["vcpus_used"], view["memory_mb_used"], view["local_gb_used"]) == (3, 1024, 7)
    assert drv.list_guests("h1-node-1") == [orphan]
    with pytest.raises(exception.VirtDriverError):
        drv.add_orphan("h1-node-5", "x")


def test_listing_returns_copies(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    drv.add_orphan("h1-node-1", "u1", vcpus=1)
    drv.list_guests("h1-node-1")[0]["vcpus"] = 99
    drv.get_pci_device_pools("h1-node-1")[0]["count"] = 0
    assert drv.list_guests("h1-node-1")[0]["vcpus"] == 1
    assert drv.get_pci_device_pools("h1-node-1")[0]["count"] == 4


def test_pci_pools_default_and_configurable(conf: cfg.ConfigOpts) -> None:
    assert FakeDriver(conf).get_pci_device_pools("h1-node-1") == [
        {"vendor_id": "8086", "product_id": "1520", "count": 4,
         "tags": {"physnet": "physnet1"}}]
    pools = [{"vendor_id": "15b3", "product_id": "1018", "count": 2, "tags": {}}]
    drv = FakeDriver(conf, pci_pools=pools)
    assert drv.get_pci_device_pools("h1-node-1") == pools
    assert FakeDriver(conf, pci_pools=[]).get_pci_device_pools("h1-node-1") == []


def test_fail_with_breaks_every_call_until_cleared(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf)
    inst = make_instance("h1-node-1")
    drv.fail_with = exception.HypervisorUnavailable(uri="fake://", reason="unplugged")
    calls = [drv.get_available_nodes,
             lambda: drv.get_available_resource("h1-node-1"),
             lambda: drv.list_guests("h1-node-1"),
             lambda: drv.get_pci_device_pools("h1-node-1"),
             lambda: drv.spawn(inst),
             lambda: drv.destroy(inst)]
    for call in calls:
        with pytest.raises(exception.HypervisorUnavailable, match="unplugged"):
            call()
    # A broken hypervisor spawned nothing; orphans can still be planted.
    drv.add_orphan("h1-node-1", "o1")
    drv.fail_with = None
    assert [g["uuid"] for g in drv.list_guests("h1-node-1")] == ["o1"]
    drv.spawn(inst)
    assert drv.get_available_resource("h1-node-1")["vcpus_used"] == inst.vcpus + 1


def test_concurrent_spawns_and_destroys_lose_nothing(conf: cfg.ConfigOpts) -> None:
    drv = FakeDriver(conf, nodes=2)
    per_thread, threads = 50, 8
    start = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        node = "h1-node-%d" % (t % 2 + 1)
        mine = [make_instance(node, vcpus=1, memory_mb=10, root_gb=1, ephemeral_gb=0)
                for _ in range(per_thread)]
        try:
            start.wait()
            for inst in mine:
                drv.spawn(inst)
                drv.get_available_resource(node)
            for inst in mine[: per_thread // 2]:
                drv.destroy(inst)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    kept = per_thread // 2 * threads // 2
    for node in drv.get_available_nodes():
        view = drv.get_available_resource(node)
        assert len(drv.list_guests(node)) == kept
        assert (view["vcpus_used"], view["memory_mb_used"], view["local_gb_used"]) == (
            kept, kept * 10, kept)
