"""The two negotiation cases as a user meets them, in separate processes on
RabbitMQ and PostgreSQL: a client pinned to release 1 talking to this
release's conductor, and a compute started before its conductor (``auto``
then speaks the oldest release until the conductor answers)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from tests import processes
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

#: The issue's reproduction, as a user writes it.
PINNED_CLIENT = '''
import sys
from novalet import conf, context, indirection, objects
conf.parse_args(["--config-file", sys.argv[1]])
objects.register_all()
indirection.configure(conf.CONF)
ctxt = context.get_admin_context()
svc = objects.Service(ctxt, host="h1", binary="novalet-compute", topic="compute")
svc.create()
node = objects.ComputeNode(ctxt, host="h1", hypervisor_hostname="node-1", vcpus=8,
                           memory_mb=16384, local_gb=100, vcpus_used=0,
                           memory_mb_used=0, local_gb_used=0, hypervisor_type="fake",
                           hypervisor_version=1, cpu_info="", service_id=svc.id)
node.create()
assert node.metrics is not None and len(node.metrics) == 0, node.metrics
# Read back at release 1 and changed: what release 1 carries is written,
# what it cannot carry stays pending on the object.
node = objects.ComputeNode.get_by_host_and_nodename(ctxt, "h1", "node-1")
node.memory_mb_used = 2048
node.pci_device_pools = objects.PciDevicePoolList.from_dicts(
    [{"vendor_id": "8086", "product_id": "1520", "count": 4, "tags": {}}])
node.save()
assert node.obj_what_changed() == {"pci_device_pools"}, node.obj_what_changed()
print("OK", node.id)
'''


class Deployment:
    def __init__(self, tmp_path: Any, rabbit_vhost: Any, database: Any) -> None:
        self.tmp = tmp_path
        self.db = database
        suffix = os.urandom(4).hex()
        self.common: dict[str, dict[str, Any]] = {
            "DEFAULT": {"transport_url": rabbit_vhost.url, "report_interval": 2,
                        "service_down_time": 8, "periodic_fuzzy_delay": 0,
                        "update_resources_interval": 1,
                        "rpc_response_timeout": 2,
                        "state_path": str(tmp_path / "state")},
            "database": {"connection": database.url},
            "conductor": {"topic": "conductor-" + suffix, "workers": 1},
            "compute": {"topic": "compute-" + suffix, "virt_driver": "fake"},
            "upgrade_levels": {"refresh_interval": 2},
        }
        self.procs: list[processes.ServiceProcess] = []

    def config(self, host: str, **extra: dict[str, Any]) -> str:
        sections = {k: dict(v) for k, v in self.common.items()}
        sections["DEFAULT"]["host"] = host
        for section, values in extra.items():
            sections.setdefault(section, {}).update(values)
        return processes.write_config(str(self.tmp / (host + ".conf")), sections)

    def start(self, binary: str, host: str) -> processes.ServiceProcess:
        proc = processes.ServiceProcess(
            binary, self.config(host), str(self.tmp / ("%s-%s.log" % (binary, host))))
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in self.procs:
            if proc.proc.poll() is None:
                proc.stop()


@pytest.fixture
def deployment(tmp_path: Any, rabbit_vhost: Any, _database_registry: Any) -> Any:
    from tests import services

    database = services.provision_database("postgresql", str(tmp_path))
    dep = Deployment(tmp_path, rabbit_vhost, database)
    synced = processes.run_command("novalet-manage", "--config-file",
                                   dep.config("manage"), "db", "sync")
    assert synced.returncode == 0, synced.stderr
    yield dep
    dep.stop_all()
    database.drop()


def test_a_client_pinned_to_release_1(deployment: Deployment) -> None:
    conductor = deployment.start("novalet-conductor", "cond")
    conductor.wait_for_log("novalet-conductor started", timeout=90)
    config = deployment.config("client", upgrade_levels={"conductor": "1"},
                               objects={"indirection": "rpc"})
    script = deployment.tmp / "pinned.py"
    script.write_text(PINNED_CLIENT)
    ran = subprocess.run([sys.executable, str(script), config], capture_output=True,
                         text=True, timeout=120)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.startswith("OK"), ran.stdout
    rows = deployment.db.query("SELECT memory_mb_used, metrics, pci_stats FROM "
                               "compute_nodes WHERE host = 'h1'")
    assert len(rows) == 1
    memory_used, metrics, pci_stats = rows[0]
    assert memory_used == 2048 and metrics is None and pci_stats is None
    assert not conductor.errors(), conductor.errors()


def _start_compute_while_conductor_frozen(
        deployment: Deployment, conductor: processes.ServiceProcess,
        host: str) -> processes.ServiceProcess | None:
    """Start a compute; its start-up check (in the launcher) asks the
    conductor, then the launcher forks the worker: the worker is stopped as
    soon as it appears, the conductor frozen, the worker let go. Returns the
    compute once it is waiting for the frozen conductor, or None (stopped)
    when its worker got its record before the freeze."""
    compute = deployment.start("novalet-compute", host)
    worker = wait_for(lambda: processes.children(compute.proc.pid), 60,
                      "the compute's worker", interval=0.002)[0]
    os.kill(worker, signal.SIGSTOP)
    conductor.signal(signal.SIGSTOP)
    os.kill(worker, signal.SIGCONT)
    seen = compute.wait_for_log("Waiting for the conductor|novalet-compute started on",
                                timeout=60)
    if seen.group(0).startswith("Waiting"):
        return compute
    conductor.signal(signal.SIGCONT)
    compute.stop()
    return None


def test_a_compute_whose_conductor_does_not_answer_at_first(
        deployment: Deployment) -> None:
    """The compute's worker starts while the conductor does not answer
    (frozen: its queue holds the calls); ``auto`` speaks release 1 for a
    while, and the compute's first records are written then."""
    conductor = deployment.start("novalet-conductor", "cond")
    conductor.wait_for_log("novalet-conductor started", timeout=90)
    # The freeze races the worker's first call: a worker that won it got its
    # record from a live conductor, which is not this case; start another.
    for attempt in range(3):
        compute = _start_compute_while_conductor_frozen(
            deployment, conductor, "early%d" % attempt)
        if compute is not None:
            break
    else:
        raise AssertionError("the worker got its record before the freeze 3 times")
    host = "early%d" % attempt
    try:
        compute.wait_for_log(r"Version cap for novalet-conductor: RPC 1\.0, objects "
                             r"of release 1 \(auto: peers unreachable", timeout=60)
    finally:
        conductor.signal(signal.SIGCONT)
    compute.wait_for_log("novalet-compute started on %s" % host, timeout=60)
    # The first node record is written whatever the caps were then, and
    # once they rise the release 2 fields reach the row without a restart.
    compute.wait_for_log(r"Version cap for novalet-conductor: RPC newest, "
                         r"objects newest", timeout=60)
    row = wait_for(lambda: deployment.db.query(
        "SELECT vcpus, metrics, pci_stats FROM compute_nodes WHERE host = '%s' "
        "AND deleted = 0 AND pci_stats IS NOT NULL" % host), 30, "pci_stats written")
    assert row[0][0] == 16
    # Release 2's Service field, held back when the record was created at
    # release 1: a heartbeat carries it once the caps allow.
    wait_for(lambda: deployment.db.query(
        "SELECT started_at FROM services WHERE host = '%s' AND deleted = 0 "
        "AND started_at IS NOT NULL" % host), 30, "started_at written")
    assert compute.proc.poll() is None
    errors = [line for line in compute.errors()
              if "did not answer" not in line and "went away" not in line]
    assert not errors, compute.log()[-6000:]
    assert not conductor.errors(), conductor.errors()
