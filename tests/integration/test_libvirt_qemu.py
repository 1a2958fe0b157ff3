"""A real libvirtd with QEMU (TCG, no /dev/kvm needed): a ``novalet-compute``
process on ``qemu:///system`` builds, runs and terminates a guest, with the
tracker's figures read from the database at each step.

The guest has no disk and no OS, so it never answers the ACPI shutdown
request: a clean shutdown waits ``[libvirt] shutdown_timeout`` and then
destroys it. ``.ci/run`` installs and starts libvirtd; elsewhere the test
skips (fails under ``NOVALET_REQUIRE_SERVICES=1``)."""

from __future__ import annotations

import os

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from novalet.compute import rpcapi as compute_rpcapi
from tests import processes
from tests.conftest import service_unavailable
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

URI = "qemu:///system"
SHUTDOWN_TIMEOUT = 2
GUEST_MB = 64


@pytest.fixture
def qemu():
    """An open connection to libvirtd's QEMU driver that offers TCG guests."""
    try:
        import libvirt
    except ImportError as e:
        service_unavailable("libvirt-python cannot be imported: %s" % e)
    libvirt.registerErrorHandler(lambda *a: None, None)
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as e:
        service_unavailable("libvirtd at %s: %s" % (URI, e))
    from novalet.virt.libvirt import config

    if "qemu" not in config.guest_domain_types(conn.getCapabilities()):
        conn.close()
        service_unavailable("libvirtd at %s offers no 'qemu' (TCG) guests"
                            % URI)
    yield conn
    conn.close()


@pytest.fixture
def compute(tmp_path, rabbit_vhost, postgresql_db, conf, qemu):
    suffix = os.urandom(4).hex()
    common = {"transport_url": rabbit_vhost.url, "report_interval": 1,
              "periodic_fuzzy_delay": 0, "update_resources_interval": 1,
              "rpc_response_timeout": 10,
              "state_path": str(tmp_path / "state")}
    topics = {"conductor": {"topic": "conductor-" + suffix, "workers": 1},
              "compute": {"topic": "compute-" + suffix,
                          "virt_driver": "libvirt"},
              "libvirt": {"connection_uri": URI, "virt_type": "qemu",
                          "shutdown_timeout": SHUTDOWN_TIMEOUT}}

    def config(name):
        return processes.write_config(str(tmp_path / (name + ".conf")), {
            "DEFAULT": dict(common, host=name),
            "database": {"connection": postgresql_db.url}, **topics})

    cond = processes.ServiceProcess("novalet-conductor", config("cond"),
                                    str(tmp_path / "cond.log"))
    procs = [cond]
    try:
        cond.wait_for_log("novalet-conductor started")
        comp = processes.ServiceProcess("novalet-compute", config("qemuhost"),
                                        str(tmp_path / "compute.log"))
        procs.append(comp)
        comp.wait_for_log("novalet-compute started")
        conf("transport_url", rabbit_vhost.url)
        conf("topic", topics["conductor"]["topic"], "conductor")
        conf("topic", topics["compute"]["topic"], "compute")
        conf("shutdown_timeout", SHUTDOWN_TIMEOUT, "libvirt")
        conf("indirection", "rpc", "objects")
        conf("rpc_response_timeout", 10)
        indirection.configure(novalet_conf.CONF)
        yield {"cond": cond, "compute": comp, "db": postgresql_db}
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.stop()


def _figures(db):
    """The tracker's figures of host qemuhost, straight from PostgreSQL."""
    rows = db.query(
        "SELECT vcpus_used, memory_mb_used, local_gb_used, running_vms "
        "FROM compute_nodes WHERE host = 'qemuhost' AND deleted = 0")
    assert len(rows) == 1, rows
    return tuple(rows[0])


def _settled(compute, expected, what):
    """Wait for ``expected``, then see two more audits agree with it."""
    db, log = compute["db"], compute["compute"]
    wait_for(lambda: _figures(db) == expected, 30, what)
    audits = log.log().count("Final resource view")
    wait_for(lambda: log.log().count("Final resource view") >= audits + 2, 30,
             "two more audits")
    assert _figures(db) == expected, what


def _domain(qemu, uuid):
    import libvirt

    try:
        return qemu.lookupByUUIDString(uuid)
    except libvirt.libvirtError as e:
        if e.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
            return None
        raise


def test_build_run_terminate_on_qemu(compute, qemu):
    ctxt = context.get_admin_context()
    db = compute["db"]
    info = qemu.getInfo()
    [node] = objects.ComputeNodeList.get_by_host(ctxt, "qemuhost")
    assert node.hypervisor_type == "QEMU"
    assert (node.vcpus, node.memory_mb) == (info[2], info[1])
    assert node.hypervisor_hostname == qemu.getHostname()
    # Guests someone else left on this libvirtd are orphans: memory only.
    base = _figures(db)
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    built = []
    try:
        for clean in (True, False):
            inst = objects.Instance(ctxt, vcpus=1, memory_mb=GUEST_MB,
                                    root_gb=0)
            inst.create()
            built.append(inst.uuid)
            inst = api.build_instance(ctxt, inst, "qemuhost",
                                      node.hypervisor_hostname)
            assert inst.vm_state == "active"
            dom = _domain(qemu, inst.uuid)
            assert dom is not None and dom.isActive()
            assert dom.info()[2] == GUEST_MB * 1024  # KiB
            running = (base[0] + 1, base[1] + GUEST_MB, base[2], base[3] + 1)
            _settled(compute, running, "the running guest counted")

            api.terminate_instance(ctxt, inst, clean_shutdown=clean)
            assert _domain(qemu, inst.uuid) is None
            with pytest.raises(exception.InstanceNotFound):
                objects.Instance.get_by_uuid(ctxt, inst.uuid)
            _settled(compute, base, "the terminated guest given back")
        log = compute["compute"].log()
        # The guest has no OS: the clean shutdown waited for the bound,
        # then destroyed it; the other one was destroyed without asking.
        assert "Guest %s did not shut down within %ds; destroying it" % (
            built[0], SHUTDOWN_TIMEOUT) in log
        assert "Guest %s did not shut down" % built[1] not in log
        for name in ("compute", "cond"):
            proc = compute[name]
            assert proc.stop() == 0
            assert not proc.errors(), proc.errors()
    finally:
        for uuid in built:  # never leave a guest behind on the shared daemon
            dom = _domain(qemu, uuid)
            if dom is not None:
                if dom.isActive():
                    dom.destroy()
                dom.undefine()
