"""The libvirt driver against libvirt's real built-in test hypervisor.

``test:///default`` is shared by the whole process, so the tests that change
guests use a host file of their own under ``tmp_path``.
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import types
import uuid as uuidlib
import xml.etree.ElementTree as ET
from typing import Any

import pytest
from oslo_config import cfg

import novalet  # noqa: F401  (selects oslo.service's backend first)
from novalet import exception
from novalet.conf import default as default_conf
from novalet.conf import libvirt as libvirt_conf
from novalet.virt import driver
from novalet.virt.libvirt import config

try:
    import libvirt
except ImportError as _e:  # pragma: no cover - depends on the machine
    libvirt = None
    _IMPORT_ERROR: ImportError | None = _e
else:
    _IMPORT_ERROR = None

RUNNING_UUID = "11111111-1111-4111-8111-111111111111"
SHUTOFF_UUID = "22222222-2222-4222-8222-222222222222"
HOST_XML = """\
<node xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
  <cpu>
    <mhz>2400</mhz><model>x86_64</model><nodes>1</nodes>
    <sockets>1</sockets><cores>4</cores><threads>2</threads><active>8</active>
  </cpu>
  <memory>16777216</memory>
  <domain type='test'>
    <name>running</name><uuid>%(running)s</uuid>
    <memory unit='KiB'>1048576</memory><vcpu>2</vcpu>
    <os><type>hvm</type></os>
  </domain>
  <domain type='test'>
    <name>stopped</name><uuid>%(shutoff)s</uuid>
    <memory unit='KiB'>4194304</memory><vcpu>4</vcpu>
    <os><type>hvm</type></os>
    <test:runstate>5</test:runstate>
  </domain>
</node>
""" % {"running": RUNNING_UUID, "shutoff": SHUTOFF_UUID}


@pytest.fixture
def lv() -> Any:
    """libvirt-python, or a skip (a failure if NOVALET_REQUIRE_SERVICES=1)."""
    if libvirt is None:
        reason = "libvirt-python cannot be imported: %s" % _IMPORT_ERROR
        if os.environ.get("NOVALET_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (NOVALET_REQUIRE_SERVICES=1 requires it)")
        pytest.skip(reason)
    return libvirt


@pytest.fixture
def host_file(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "node.xml"
    path.write_text(HOST_XML)
    return path


def make_conf(tmp_path: pathlib.Path, uri: str) -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    default_conf.register_opts(c)
    libvirt_conf.register_opts(c)
    c([], project="novalet-test", default_config_files=[])
    c.set_override("instances_path", str(tmp_path / "state" / "instances"))
    c.set_override("connection_uri", uri, group="libvirt")
    return c


@pytest.fixture
def make_driver(lv: Any, tmp_path: pathlib.Path) -> Any:
    from novalet.virt.libvirt.driver import LibvirtDriver

    made: list[LibvirtDriver] = []

    def make(uri: str) -> LibvirtDriver:
        drv = LibvirtDriver(make_conf(tmp_path, uri))
        made.append(drv)
        return drv

    yield make
    for drv in made:
        drv.cleanup()


@pytest.fixture
def drv(make_driver: Any, host_file: pathlib.Path) -> Any:
    return make_driver("test://%s" % host_file)


def make_instance(vcpus: int = 3, memory_mb: int = 1536, root_gb: int = 20,
                  ephemeral_gb: int = 4) -> types.SimpleNamespace:
    return types.SimpleNamespace(uuid=str(uuidlib.uuid4()), node=None, vcpus=vcpus,
                                 memory_mb=memory_mb, root_gb=root_gb,
                                 ephemeral_gb=ephemeral_gb)


def usage(view: dict[str, Any]) -> tuple[int, int]:
    return view["vcpus_used"], view["memory_mb_used"]


# -- libvirt's default test host -------------------------------------------

def test_loadable_by_name(lv: Any, tmp_path: pathlib.Path) -> None:
    from novalet.virt.libvirt.driver import LibvirtDriver

    loaded = driver.load_driver("libvirt", make_conf(tmp_path, "test:///default"))
    assert isinstance(loaded, LibvirtDriver)


def test_default_host_view_agrees_with_libvirt(lv: Any, make_driver: Any) -> None:
    drv = make_driver("test:///default")
    [node] = drv.get_available_nodes()
    view = drv.get_available_resource(node)
    driver.check_resource_view(node, view)

    conn = lv.open("test:///default")  # the same shared host, seen directly
    try:
        info = conn.getInfo()
        running = [d.info() for d in conn.listAllDomains() if d.isActive()]
        assert node == conn.getHostname()
        assert view["hypervisor_type"] == conn.getType()
        assert view["hypervisor_version"] == conn.getVersion()
    finally:
        conn.close()
    assert (view["vcpus"], view["memory_mb"]) == (info[2], info[1]) == (16, 3072)
    assert usage(view) == (sum(i[3] for i in running), sum(i[2] for i in running) // 1024)
    assert view["hypervisor_hostname"] == node
    assert isinstance(view["hypervisor_version"], int)
    cpu = json.loads(view["cpu_info"])
    assert cpu["arch"] == info[0]
    assert cpu["topology"] == {"sockets": info[5], "cores": info[6], "threads": info[7]}


# -- a host file of our own --------------------------------------------------

def test_only_running_domains_count(drv: Any) -> None:
    [node] = drv.get_available_nodes()
    view = drv.get_available_resource(node)
    assert (view["vcpus"], view["memory_mb"]) == (8, 16384)
    assert usage(view) == (2, 1024)  # "stopped" (4 vCPUs, 4 GiB) is shut off
    assert drv.list_guests(node) == [
        {"uuid": RUNNING_UUID, "vcpus": 2, "memory_mb": 1024, "disk_gb": 0}]
    cpu = json.loads(view["cpu_info"])
    assert cpu["topology"] == {"sockets": 1, "cores": 4, "threads": 2}


def test_disk_comes_from_the_instances_path_filesystem(drv: Any) -> None:
    path = drv._conf.instances_path
    assert not os.path.exists(path)
    view = drv.get_available_resource(drv.get_available_nodes()[0])
    assert os.path.isdir(path)
    st = os.statvfs(path)
    gib = 1024 ** 3
    assert view["local_gb"] == st.f_blocks * st.f_frsize // gib
    assert view["disk_available_least"] == st.f_bavail * st.f_frsize // gib
    assert 0 <= view["local_gb_used"] <= view["local_gb"]


def test_spawn_then_destroy(drv: Any) -> None:
    [node] = drv.get_available_nodes()
    inst = make_instance(vcpus=3, memory_mb=1536, root_gb=20, ephemeral_gb=4)
    inst.node = node
    before = usage(drv.get_available_resource(node))

    drv.spawn(inst)
    assert usage(drv.get_available_resource(node)) == (before[0] + 3, before[1] + 1536)
    guests = {g["uuid"]: g for g in drv.list_guests(node)}
    assert guests[inst.uuid] == {"uuid": inst.uuid, "vcpus": 3, "memory_mb": 1536,
                                 "disk_gb": 24}

    drv.destroy(inst)
    assert usage(drv.get_available_resource(node)) == before
    assert inst.uuid not in {g["uuid"] for g in drv.list_guests(node)}
    drv.destroy(inst)  # already gone: no error


def test_spawned_domain_definition(lv: Any, drv: Any) -> None:
    inst = make_instance(vcpus=2, memory_mb=512)
    drv.spawn(inst)
    dom = drv._conn.lookupByUUIDString(inst.uuid)
    root = ET.fromstring(dom.XMLDesc())
    assert root.get("type") == "test"
    assert root.findtext("name") == "instance-%s" % inst.uuid
    assert root.find("memory").text == str(512 * 1024)
    assert root.findtext("vcpu") == "2"
    assert dom.isActive()


def test_destroy_of_a_shut_off_domain_undefines_it(lv: Any, drv: Any) -> None:
    drv.destroy(types.SimpleNamespace(uuid=SHUTOFF_UUID, node=None))
    with pytest.raises(lv.libvirtError):
        drv._conn.lookupByUUIDString(SHUTOFF_UUID)


def test_spawn_refused_by_libvirt_is_a_driver_error(drv: Any) -> None:
    clash = make_instance()
    clash.uuid = RUNNING_UUID  # an existing domain already has this uuid
    with pytest.raises(exception.VirtDriverError) as err:
        drv.spawn(clash)
    assert not isinstance(err.value, exception.HypervisorUnavailable)
    # The connection was not the problem: it stays and still works.
    conn = drv._conn
    assert drv.get_available_nodes() and drv._conn is conn


def test_configured_virt_type_is_used(drv: Any) -> None:
    drv._conf.set_override("virt_type", "kvm", group="libvirt")
    inst = make_instance()
    drv.spawn(inst)
    dom = drv._conn.lookupByUUIDString(inst.uuid)
    assert ET.fromstring(dom.XMLDesc()).get("type") == "kvm"


def test_unknown_node_is_refused(drv: Any) -> None:
    with pytest.raises(exception.VirtDriverError, match="not managed here"):
        drv.get_available_resource("some-other-host")
    with pytest.raises(exception.VirtDriverError):
        drv.list_guests("some-other-host")


def test_clean_shutdown_lets_the_guest_stop_by_itself(
        lv: Any, drv: Any, caplog: pytest.LogCaptureFixture) -> None:
    inst = make_instance()
    drv.spawn(inst)
    caplog.set_level(logging.INFO)
    drv.destroy(inst, clean_shutdown=True)  # the test host obeys at once
    assert "Guest %s shut down cleanly" % inst.uuid in caplog.text
    with pytest.raises(lv.libvirtError):
        drv._conn.lookupByUUIDString(inst.uuid)


def test_clean_shutdown_ignored_ends_in_destroy_after_the_timeout(
        lv: Any, drv: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    drv._conf.set_override("shutdown_timeout", 1, group="libvirt")
    inst = make_instance()
    drv.spawn(inst)
    asked = []
    # A guest without ACPI support: the request is taken, nothing happens.
    monkeypatch.setattr(lv.virDomain, "shutdown",
                        lambda dom: asked.append(dom.UUIDString()) or 0)
    caplog.set_level(logging.INFO)
    drv.destroy(inst, clean_shutdown=True)
    assert asked == [inst.uuid]
    assert "did not shut down within 1s; destroying it" in caplog.text
    with pytest.raises(lv.libvirtError):
        drv._conn.lookupByUUIDString(inst.uuid)


def test_shutdown_timeout_0_destroys_at_once(
        lv: Any, drv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    drv._conf.set_override("shutdown_timeout", 0, group="libvirt")
    inst = make_instance()
    drv.spawn(inst)
    asked = []
    monkeypatch.setattr(lv.virDomain, "shutdown",
                        lambda dom: asked.append(dom) or 0)
    drv.destroy(inst, clean_shutdown=True)
    assert asked == []
    with pytest.raises(lv.libvirtError):
        drv._conn.lookupByUUIDString(inst.uuid)


def test_a_renamed_host_stays_the_same_node(
        lv: Any, drv: Any, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    [node] = drv.get_available_nodes()
    monkeypatch.setattr(lv.virConnect, "getHostname",
                        lambda conn: "renamed.example")
    caplog.set_level(logging.WARNING)
    assert drv.get_available_nodes() == [node]
    assert "now calls itself renamed.example: it stays node %s" % node \
        in caplog.text
    assert usage(drv.get_available_resource(node)) == (2, 1024)
    with pytest.raises(exception.VirtDriverError, match="not managed here"):
        drv.list_guests("renamed.example")


def test_keep_node_name_takes_the_recorded_name(drv: Any) -> None:
    [node] = drv.get_available_nodes()
    assert not drv.keep_node_name("some-other-host", "old-name")
    assert drv.keep_node_name(node, "old-name")
    assert drv.get_available_nodes() == ["old-name"]
    assert usage(drv.get_available_resource("old-name")) == (2, 1024)


# -- connection handling -----------------------------------------------------

def test_lost_connection_raises_then_reconnects(drv: Any, host_file: pathlib.Path) -> None:
    [node] = drv.get_available_nodes()
    first = drv._conn
    first.close()  # the connection dies under the driver

    with pytest.raises(exception.HypervisorUnavailable, match="connection lost"):
        drv.get_available_resource(node)
    assert drv._conn is None

    assert usage(drv.get_available_resource(node)) == (2, 1024)
    assert drv._conn is not None and drv._conn is not first


def test_connection_lost_mid_call(drv: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    [node] = drv.get_available_nodes()
    conn = drv._conn
    real_info = conn.getInfo

    def close_then_read() -> Any:
        conn.close()  # dies between the liveness check and the read
        return real_info()

    monkeypatch.setattr(conn, "getInfo", close_then_read)
    with pytest.raises(exception.HypervisorUnavailable, match="reading resources"):
        drv.get_available_resource(node)
    assert drv._conn is None
    drv.get_available_resource(node)


def test_unreachable_host_until_it_returns(drv: Any, host_file: pathlib.Path) -> None:
    [node] = drv.get_available_nodes()
    drv._conn.close()
    moved = host_file.with_suffix(".away")
    host_file.rename(moved)  # reconnecting cannot work while it is gone

    with pytest.raises(exception.HypervisorUnavailable):
        drv.get_available_resource(node)
    with pytest.raises(exception.HypervisorUnavailable, match="cannot connect"):
        drv.get_available_resource(node)

    moved.rename(host_file)
    assert usage(drv.get_available_resource(node)) == (2, 1024)


def test_bad_uri_is_unavailable(make_driver: Any) -> None:
    bad = make_driver("test:///nonexistent/file.xml")
    with pytest.raises(exception.HypervisorUnavailable) as err:
        bad.get_available_nodes()
    assert "test:///nonexistent/file.xml" in str(err.value)


def test_cleanup_closes_and_a_later_call_reopens(drv: Any) -> None:
    drv.get_available_nodes()
    conn = drv._conn
    drv.cleanup()
    assert drv._conn is None
    assert not drv._is_alive(conn)
    assert drv.get_available_nodes()
    drv.cleanup()
    drv.cleanup()  # closing twice is fine


# -- domain XML (no libvirt needed) -------------------------------------------

def test_guest_xml_round_trips_its_disk() -> None:
    guest = config.GuestConfig(uuid="u-1", vcpus=2, memory_mb=256, virt_type="kvm",
                               root_gb=10, ephemeral_gb=2)
    root = ET.fromstring(guest.to_xml())
    assert root.tag == "domain" and root.get("type") == "kvm"
    assert root.findtext("name") == "instance-u-1"
    assert root.findtext("uuid") == "u-1"
    assert root.find("memory").attrib == {"unit": "KiB"}
    assert root.findtext("memory") == "262144"
    assert root.findtext("os/type") == "hvm"
    meta = root.find("metadata/{%s}instance" % config.METADATA_NS)
    assert meta is not None
    assert config.parse_disk_gb(ET.tostring(meta, encoding="unicode")) == 12
    # libvirt hands the element back without its namespace
    assert config.parse_disk_gb("<instance><root_gb>3</root_gb></instance>") == 3
    assert config.parse_disk_gb("not xml") == 0


def test_guest_domain_types_prefers_hvm_order() -> None:
    caps = """<capabilities><host><cpu><arch>x86_64</arch></cpu></host>
      <guest><os_type>hvm</os_type><arch name='x86_64'>
        <domain type='qemu'/><domain type='kvm'/></arch></guest>
      <guest><os_type>xen</os_type><arch name='x86_64'><domain type='xen'/></arch></guest>
    </capabilities>"""
    assert config.guest_domain_types(caps) == ["qemu", "kvm"]


def test_cpu_info_reads_a_real_host_cpu() -> None:
    caps = """<capabilities><host><cpu><arch>x86_64</arch><model>Skylake</model>
      <vendor>Intel</vendor><topology sockets='2' dies='1' cores='8' threads='2'/>
      <feature name='vmx'/><feature name='aes'/></cpu></host></capabilities>"""
    info = config.parse_cpu_info(caps, ["x86_64", 1024, 32, 2000, 1, 9, 9, 9])
    assert info == {"arch": "x86_64", "model": "Skylake", "vendor": "Intel",
                    "topology": {"sockets": 2, "cores": 8, "threads": 2},
                    "features": ["aes", "vmx"]}
