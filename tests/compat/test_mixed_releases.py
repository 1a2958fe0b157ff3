"""Rolling upgrades against earlier releases' real code (1 and 3), as
separate processes on RabbitMQ and PostgreSQL: an old compute with a new
conductor, a new compute with an old conductor, then the rest of the upgrade
with no manual pin."""

from __future__ import annotations

import os

import pytest

from novalet.upgrade.releases import SERVICE_VERSION as CURRENT
from tests import processes
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

#: The earlier releases run against this one: (release, its fixture).
OLD_RELEASES = [1, 3]


class Deployment:
    """Config files and processes of one mixed-release deployment."""

    def __init__(self, tmp_path, rabbit_vhost, database, old, old_release):
        self.tmp = tmp_path
        self.db = database
        self.old = old
        #: The earlier release's number (its service version).
        self.old_release = old_release
        suffix = os.urandom(4).hex()
        self.common = {
            "DEFAULT": {"transport_url": rabbit_vhost.url,
                        "report_interval": 2, "service_down_time": 8,
                        "periodic_fuzzy_delay": 0,
                        "update_resources_interval": 1,
                        "rpc_response_timeout": 10,
                        "state_path": str(tmp_path / "state")},
            "database": {"connection": database.url},
            "conductor": {"topic": "conductor-" + suffix, "workers": 1},
            "compute": {"topic": "compute-" + suffix, "virt_driver": "fake"},
            "fake": {"nodes": 1},
            "upgrade_levels": {"refresh_interval": 2},
            # A rolling upgrade from release 1 or 2 (they do not sign); a
            # release 3 one starts with enforce false as doc/source/admin/verified-caller.rst says,
            # and with require_reply_auth false (release 3 replies are
            # plain) until every service is upgraded.
            "auth": {"enforce": "false", "require_reply_auth": "false"},
        }
        self.procs = []

    def config(self, host, auth=None):
        sections = {k: dict(v) for k, v in self.common.items()}
        sections["DEFAULT"]["host"] = host
        sections["auth"].update(auth or {})
        return processes.write_config(str(self.tmp / (host + ".conf")),
                                      sections)

    def start(self, binary, host, *, old, auth=None):
        log = str(self.tmp / ("%s-%s-%s-%d.log" % (
            binary, host, "r%d" % self.old_release if old else "new",
            len(self.procs))))
        if old:
            proc = processes.ServiceProcess(
                binary, self.config(host, auth), log, bin_dir=self.old.bin,
                env=self.old.env)
        else:
            proc = processes.ServiceProcess(binary, self.config(host, auth),
                                            log)
        proc.wait_for_log("%s started" % binary, timeout=90)
        self.procs.append(proc)
        return proc

    def services(self):
        return {(host, binary): (version, count) for host, binary, version, count
                in self.db.query(
                    "SELECT host, \"binary\", version, report_count FROM services "
                    "WHERE deleted = 0")}

    def node(self, host):
        rows = self.db.query(
            "SELECT vcpus, memory_mb, memory_mb_used, running_vms, metrics, "
            "pci_stats, updated_at FROM compute_nodes WHERE host = :h "
            "AND deleted = 0", h=host)
        return rows[0] if rows else None

    def heartbeats_grow(self, key, by=3, timeout=30):
        start = self.services()[key][1]
        wait_for(lambda: self.services()[key][1] >= start + by, timeout,
                 "%s heartbeats" % (key,))

    def stop_all(self):
        for proc in self.procs:
            if proc.proc.poll() is None:
                proc.stop()


def _clean_errors(proc):
    return [line for line in proc.errors()
            if "AMQP server" not in line and "Connection failed" not in line]


@pytest.fixture(params=OLD_RELEASES, ids=["release%d" % r for r in OLD_RELEASES])
def deployment(request, tmp_path, rabbit_vhost, _database_registry):
    from tests import services

    old = request.getfixturevalue("release%d" % request.param)
    database = services.provision_database("postgresql", str(tmp_path))
    dep = Deployment(tmp_path, rabbit_vhost, database, old, request.param)
    result = processes.run_command("novalet-manage", "--config-file",
                                   dep.config("manage"), "db", "sync")
    assert result.returncode == 0, result.stderr
    yield dep
    dep.stop_all()
    database.drop()


def test_old_compute_with_new_conductor_then_upgrade(deployment):
    dep = deployment
    conductor = dep.start("novalet-conductor", "cond", old=False)
    old_compute = dep.start("novalet-compute", "r1host", old=True)
    dep.heartbeats_grow(("r1host", "novalet-compute"))
    assert dep.services()[("r1host", "novalet-compute")][0] == dep.old_release
    node = wait_for(lambda: dep.node("r1host"), 30, "the old compute's node")
    assert node[0] == 16 and node[2] == 0  # the fake driver's defaults
    assert not _clean_errors(old_compute), _clean_errors(old_compute)
    assert not _clean_errors(conductor), _clean_errors(conductor)

    # Finish the upgrade: this release replaces the compute on the same host.
    old_compute.stop()
    new_compute = dep.start("novalet-compute", "r1host", old=False)
    wait_for(lambda: dep.services()[("r1host", "novalet-compute")][0]
             == CURRENT, 30, "the compute record at this service version")
    dep.heartbeats_grow(("r1host", "novalet-compute"))
    # Release 2 fields are now written: PCI pools reach the database.
    wait_for(lambda: (dep.node("r1host") or [None] * 6)[5], 30,
             "pci_stats written by release 2")
    assert not _clean_errors(new_compute), _clean_errors(new_compute)
    assert not _clean_errors(conductor), _clean_errors(conductor)


def test_new_compute_with_old_conductor_then_upgrade(deployment):
    dep = deployment
    old_conductor = dep.start("novalet-conductor", "cond", old=True)
    if dep.old_release == 1:
        assert "newer than this release" in old_conductor.log()  # expand-only
    compute = dep.start("novalet-compute", "r2host", old=False)
    dep.heartbeats_grow(("r2host", "novalet-compute"))
    assert dep.services()[("r2host", "novalet-compute")][0] == CURRENT
    node = wait_for(lambda: dep.node("r2host"), 30, "the new compute's node")
    assert node[0] == 16
    if dep.old_release == 1:
        assert node[5] is None  # release 1 cannot store PCI pools: not sent
        compute.wait_for_log(r"Version cap for novalet-conductor: RPC 1\.0, "
                             r"objects of release 1", timeout=30)
    assert not _clean_errors(compute), _clean_errors(compute)
    assert not _clean_errors(old_conductor), _clean_errors(old_conductor)

    # Upgrade the conductor in place: the compute's caps rise by themselves.
    old_conductor.stop()
    new_conductor = dep.start("novalet-conductor", "cond", old=False)
    compute.wait_for_log(r"Version cap for novalet-conductor: RPC newest, "
                         r"objects newest", timeout=60)
    wait_for(lambda: (dep.node("r2host") or [None] * 6)[5], 30,
             "pci_stats written once the conductor is release 2")
    dep.heartbeats_grow(("r2host", "novalet-compute"))
    # The conductor was down for its restart: the compute may say calls
    # timed out then, and that it recovered; nothing else.
    errors = _clean_errors(compute)
    assert all("went away" in line or "did not answer" in line
               for line in errors), errors
    if any("went away" in line for line in errors):
        assert "model server recovered" in compute.log()
    assert not _clean_errors(new_conductor), _clean_errors(new_conductor)
    # Replies: the old conductor's were plain, accepted (and logged) while
    # [auth] require_reply_auth is false; the new one seals them.
    assert "Accepted an unauthenticated reply" in compute.log()

    # The roll is over: the compute requires authenticated replies, and
    # works with the upgraded conductor.
    compute.stop()
    strict = dep.start("novalet-compute", "r2host", old=False,
                       auth={"require_reply_auth": "true"})
    dep.heartbeats_grow(("r2host", "novalet-compute"))
    assert "unauthenticated reply" not in strict.log()
    assert "Refused the reply" not in strict.log()
    assert not _clean_errors(strict), _clean_errors(strict)
