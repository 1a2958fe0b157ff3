"""``novalet-status upgrade check``: each check's success and failure, the
exit code (the worst result: 0, 1 warning, 2 failure), both output formats,
and a bad command line (exit 2, one line on stderr)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, objects
from novalet.cmd import status
from novalet.db import engine as db_engine
from novalet.db import migration
from novalet.upgrade import releases
from tests import commands, processes
from tests.private_rabbit import free_port

SCHEMA = "Database schema"
VERSIONS = "Service versions"
CAPS = "Services holding the version caps"
TIMING = "Heartbeat timing"
NODES = "Compute nodes without a service"
JSON = "Stored JSON values"
SIGNING = "Signed requests"
SUCCESS, WARNING, FAILURE = 0, 1, 2


def _release(version: int) -> str:
    return str(releases.SERVICE_VERSION_HISTORY[version]["release"])


@pytest.fixture(autouse=True)
def _command_state() -> Iterator[None]:
    with commands.restored_command_state():
        yield


class Status(commands.InProcessCommand):
    """``novalet-status ARGS`` in this process."""

    def check(self) -> tuple[int, dict[str, tuple[int, str]]]:
        """``upgrade check --json``: exit code, ``{check: (result, details)}``."""
        code, out, err = self("upgrade", "check", "--json")
        assert err == ""
        report = json.loads(out)
        assert report["name"] == "novalet upgrade check results"
        results = {c["check"]: (c["result"], c["details"]) for c in report["checks"]}
        assert list(results) == [SCHEMA, VERSIONS, CAPS, TIMING, NODES, JSON,
                                 SIGNING]
        assert code == max(result for result, _details in results.values())
        return code, results


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> Status:
    config = processes.write_config(str(tmp_path / "empty.conf"), {"DEFAULT": {}})
    return Status(status.main, capsys, config)


def _compute(ctxt: Any, host: str, *, version: int | None = None,
             nodes: tuple[str, ...] = ("node-1",)) -> Any:
    service = objects.Service(ctxt, host=host, binary="novalet-compute",
                              topic="compute")
    if version is not None:
        service.version = version
    service.create()
    for name in nodes:
        objects.ComputeNode(ctxt, host=host, hypervisor_hostname=name, vcpus=4,
                            memory_mb=4096, local_gb=40, hypervisor_type="fake",
                            hypervisor_version=1, cpu_info="{}").create()
    return service


@pytest.fixture
def healthy(database: Any) -> Any:
    ctxt = context.get_admin_context()
    _compute(ctxt, "cmp1", nodes=("node-1", "node-2"))
    _compute(ctxt, "cmp2")
    objects.Service(ctxt, host="ctl", binary="novalet-conductor",
                    topic="conductor").create()
    return ctxt


def test_healthy_deployment_passes(run: Status, healthy: Any) -> None:
    code, results = run.check()
    assert code == SUCCESS
    assert results[SCHEMA] == (SUCCESS, "The database schema is at revision %s, "
                               "the newest this release knows."
                               % migration.head_revision())
    # The real minimum of the fleet (every service at this release's
    # version), then the oldest this release would accept.
    current = releases.SERVICE_VERSION
    oldest = releases.OLDEST_SUPPORTED_SERVICE_VERSION
    assert current != oldest  # else this test could not tell them apart
    assert results[VERSIONS] == (SUCCESS, "All 3 service(s) are at version %d "
                                 "(release %s) or newer; the oldest this release "
                                 "supports is version %d (release %s)."
                                 % (current, _release(current), oldest,
                                    _release(oldest)))
    assert results[TIMING] == (SUCCESS, "service_down_time (60s) is 6.0 times "
                               "report_interval (10s).")
    assert results[NODES] == (SUCCESS, "All 3 compute node(s) belong to a live "
                              "novalet-compute service.")


def test_service_versions_name_the_fleets_real_minimum(run: Status,
                                                       healthy: Any) -> None:
    """One service of an older (still supported) release: the minimum is
    its version, not this release's nor the oldest supported one."""
    older = releases.SERVICE_VERSION - 1
    assert releases.OLDEST_SUPPORTED_SERVICE_VERSION < older
    _compute(healthy, "cmp-old", version=older, nodes=())
    _code, results = run.check()
    result, details = results[VERSIONS]
    assert result == SUCCESS
    assert details.startswith("All 4 service(s) are at version %d (release %s) "
                              "or newer;" % (older, _release(older)))


def test_table_output(run: Status, healthy: Any) -> None:
    code, out, err = run("upgrade", "check")
    assert code == 0 and err == ""
    assert "novalet upgrade check results" in out
    for name in (SCHEMA, VERSIONS, CAPS, TIMING, NODES, JSON, SIGNING):
        assert "Check: %s" % name in out
    assert out.count("Result: Success") == 7


# -- database schema -------------------------------------------------------------

@pytest.fixture
def scratch_db(conf: Any, tmp_path: Any) -> Any:
    """A database of this test's own, not migrated."""
    conf("connection", "sqlite:///%s" % (tmp_path / "scratch.sqlite"), "database")
    db_engine.configure(novalet_conf.CONF)
    return db_engine.get_engine()


def test_schema_never_synced(run: Status, scratch_db: Any) -> None:
    code, results = run.check()
    assert code == FAILURE
    assert results[SCHEMA] == (FAILURE, "The database has no novalet schema (never "
                               "synced); run 'novalet-manage db sync'.")
    # The checks that read records do not query a schema they cannot trust.
    for name in (VERSIONS, NODES, JSON):
        assert results[name][0] == WARNING
        assert results[name][1].startswith("Not checked: the database schema")


def test_schema_behind(run: Status, scratch_db: Any) -> None:
    migration.db_sync()
    with scratch_db.begin() as connection:
        connection.exec_driver_sql("UPDATE alembic_version SET version_num = '0000_old'")
    code, results = run.check()
    assert code == FAILURE
    assert results[SCHEMA] == (FAILURE, "The database schema is at revision "
                               "0000_old; this release needs %s. Run "
                               "'novalet-manage db sync'." % migration.head_revision())
    assert results[VERSIONS][0] == WARNING


def test_check_that_crashes_is_a_failure(run: Status, healthy: Any,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> None:
        raise RuntimeError("database on fire\nsecond line")

    monkeypatch.setattr(migration, "db_version", broken)
    code, results = run.check()
    assert code == FAILURE
    expected = (FAILURE, "This check could not run: RuntimeError: database on fire")
    assert results[SCHEMA] == results[VERSIONS] == results[NODES] == expected
    assert results[TIMING][0] == SUCCESS


# -- service versions ------------------------------------------------------------

def test_service_older_than_oldest_supported(run: Status, healthy: Any) -> None:
    _compute(healthy, "old1", version=0, nodes=())
    code, results = run.check()
    assert code == FAILURE
    result, details = results[VERSIONS]
    assert result == FAILURE
    oldest = releases.OLDEST_SUPPORTED_SERVICE_VERSION
    assert details.startswith("1 service(s) are older than the oldest this release "
                              "supports (version %d, release %s): old1/novalet-compute "
                              "(version 0)." % (oldest, _release(oldest)))
    assert "novalet-manage service delete" in details


def test_oldest_supported_version_is_the_constant(
        run: Status, healthy: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    current = releases.SERVICE_VERSION
    monkeypatch.setattr(releases, "OLDEST_SUPPORTED_SERVICE_VERSION", current + 1)
    _code, results = run.check()
    result, details = results[VERSIONS]
    assert result == FAILURE
    assert details.startswith(
        "3 service(s) are older than the oldest this release supports (version %d, "
        "release ?): cmp1/novalet-compute (version %d), cmp2/novalet-compute "
        "(version %d), ctl/novalet-conductor (version %d)."
        % (current + 1, current, current, current))


def test_deleted_old_service_does_not_count(run: Status, healthy: Any) -> None:
    _compute(healthy, "old1", version=0, nodes=()).destroy()
    assert run.check()[1][VERSIONS][0] == SUCCESS


def test_no_records(run: Status, database: Any) -> None:
    code, results = run.check()
    assert code == SUCCESS
    assert results[VERSIONS] == (SUCCESS, "No services are registered.")
    assert results[NODES] == (SUCCESS, "No compute nodes are registered.")


# -- services holding the version caps down ---------------------------------------

def _beat(service: Any) -> None:
    service.report_count += 1
    service.save()  # last_seen_up: now, by the database clock


def test_nothing_older_holds_the_caps(run: Status, healthy: Any) -> None:
    assert run.check()[1][CAPS] == (SUCCESS, "No service of an older release "
                                    "holds the version caps down.")


def test_a_down_service_of_an_older_release_is_named_with_its_delete(
        run: Status, healthy: Any) -> None:
    old = releases.SERVICE_VERSION - 1
    _compute(healthy, "gone1", version=old, nodes=())  # never beat: down
    _beat(_compute(healthy, "live1", version=old, nodes=()))
    code, results = run.check()
    assert code == WARNING
    assert results[CAPS] == (WARNING, "1 service(s) of an older release are down, "
                             "and [upgrade_levels] auto still counts them: callers "
                             "keep speaking release %s. gone1/novalet-compute "
                             "(version %d, down). Delete the record of each one "
                             "that will not come back: novalet-manage service "
                             "delete gone1 novalet-compute." % (_release(old), old))


def test_running_services_of_an_older_release_are_an_upgrade_in_progress(
        run: Status, healthy: Any) -> None:
    old = releases.SERVICE_VERSION - 1
    _beat(_compute(healthy, "live1", version=old, nodes=()))
    code, results = run.check()
    assert code == SUCCESS
    assert results[CAPS] == (SUCCESS, "1 running service(s) are of an older "
                             "release; the version caps follow them until they "
                             "are upgraded: live1/novalet-compute (version %d)." % old)


def test_forced_down_services_do_not_hold_the_caps(run: Status, healthy: Any) -> None:
    service = _compute(healthy, "gone1", version=releases.SERVICE_VERSION - 1,
                       nodes=())
    service.forced_down = True
    service.save()
    assert run.check()[1][CAPS][0] == SUCCESS


# -- heartbeat timing --------------------------------------------------------------

@pytest.mark.parametrize("report_interval, service_down_time, expected, fragment", [
    (10, 60, SUCCESS, "service_down_time (60s) is 6.0 times report_interval (10s)."),
    (10, 20, SUCCESS, "is 2.0 times"),
    (10, 19, WARNING, "service_down_time (19s) is less than twice report_interval "
                      "(10s): one late heartbeat marks a service down. Set "
                      "service_down_time to at least 20."),
    (30, 30, FAILURE, "service_down_time (30s) must be larger than report_interval "
                      "(30s)"),
    (30, 20, FAILURE, "services override it with 75s and log a warning. Set "
                      "service_down_time to at least 60."),
])
def test_heartbeat_timing(run: Status, sqlite_db: Any, conf: Any,
                          report_interval: int, service_down_time: int,
                          expected: int, fragment: str) -> None:
    conf("report_interval", report_interval)
    conf("service_down_time", service_down_time)
    code, results = run.check()
    assert code == expected
    assert results[TIMING][0] == expected
    assert fragment in results[TIMING][1]


# -- compute nodes without a service ----------------------------------------------

def test_orphan_compute_nodes(run: Status, healthy: Any, database: Any) -> None:
    ctxt = healthy
    # Deleted as a release before 3 did (Service.destroy() now takes the
    # nodes with it): the nodes stay behind.
    database.query("UPDATE services SET deleted = id WHERE host = 'cmp2'")
    objects.ComputeNode(ctxt, host="ghost", hypervisor_hostname="node-9", vcpus=1,
                        memory_mb=1, local_gb=1, hypervisor_type="fake",
                        hypervisor_version=1, cpu_info="{}").create()
    # A conductor on the host does not make its nodes any less orphaned.
    objects.Service(ctxt, host="ghost", binary="novalet-conductor").create()
    orphans = [n for n in objects.ComputeNodeList.get_all(ctxt)
               if n.host in ("cmp2", "ghost")]
    code, results = run.check()
    assert code == WARNING
    result, details = results[NODES]
    assert result == WARNING
    assert details.startswith("2 compute node(s) have no live novalet-compute "
                              "service on their host: cmp2/node-1 (id %d), "
                              "ghost/node-9 (id %d)." % (orphans[0].id, orphans[1].id))


def test_long_listings_are_cut(run: Status, sqlite_db: Any) -> None:
    ctxt = context.get_admin_context()
    for i in range(status.MAX_LISTED + 3):
        objects.ComputeNode(ctxt, host="ghost", hypervisor_hostname="n%02d" % i,
                            vcpus=1, memory_mb=1, local_gb=1, hypervisor_type="fake",
                            hypervisor_version=1, cpu_info="{}").create()
    details = run.check()[1][NODES][1]
    assert "ghost/n09" in details and "ghost/n10" not in details
    assert "and 3 more." in details


# -- the command line ----------------------------------------------------------------

@pytest.mark.parametrize("argv, fragment", [
    ([], "the following arguments are required: COMMAND"),
    (["upgrade"], "the following arguments are required: ACTION"),
    (["upgrade", "fix"], "unknown upgrade action 'fix'"),
    (["downgrade", "check"], "invalid choice: 'downgrade'"),
    (["upgrade", "check", "--yaml"], "unrecognized arguments: --yaml"),
])
def test_bad_command_line(run: Status, sqlite_db: Any, argv: list[str],
                          fragment: str) -> None:
    code, out, err = run(*argv)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert fragment in err and err.startswith("novalet-status")
    assert "Traceback" not in err


def test_stored_json_that_does_not_parse(run: Status, healthy: Any,
                                        database: Any) -> None:
    assert run.check()[1][JSON] == (SUCCESS, "Every stored JSON value of 3 "
                                    "compute node(s) parses.")
    [node] = objects.ComputeNodeList.get_by_host(healthy, "cmp2")
    database.query("UPDATE compute_nodes SET pci_stats = '[{', stats = '[]' "
                   "WHERE id = :i", i=node.id)
    code, out, err = run("upgrade", "check", "--json")
    assert code == WARNING
    # The orphan check read the node: one warning, on stderr (stdout is JSON).
    assert err.count("corrupt value") == 2, err  # stats and pci_stats
    results = {c["check"]: (c["result"], c["details"])
               for c in json.loads(out)["checks"]}
    result, details = results[JSON]
    assert result == WARNING
    assert details.startswith("1 row(s) hold stored JSON that does not parse: "
                              "compute_nodes id %d (cmp2/node-1): stats, "
                              "pci_stats." % node.id)
    # Readable meanwhile; a save() writes them again and the check passes.
    read = objects.ComputeNode.get_by_id(healthy, node.id)
    assert read.stats == {} and len(read.pci_device_pools) == 0
    read.save()
    assert run.check()[1][JSON][0] == SUCCESS


def test_help_names_the_exit_codes(run: Status) -> None:
    code, out, _err = run("--help")
    assert code == 0
    text = " ".join(out.split())
    assert "Exit codes (oslo.upgradecheck's, for 'upgrade check'): 0 every " \
           "check succeeded; 1 a warning; 2 a failure, or a bad command line; " \
           "3 the database is unreachable" in text


def test_command_exit_codes(tmp_path: Any, sqlite_db: Any) -> None:
    ctxt = context.get_admin_context()
    _compute(ctxt, "cmp1")
    good = processes.write_config(str(tmp_path / "good.conf"), {
        "database": {"connection": sqlite_db.url}})
    result = processes.run_command("novalet-status", "--config-file", good,
                                   "upgrade", "check", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    assert [c["result"] for c in json.loads(result.stdout)["checks"]] == [0] * 7

    bad = processes.write_config(str(tmp_path / "bad.conf"), {
        "DEFAULT": {"report_interval": 30, "service_down_time": 45},
        "database": {"connection": sqlite_db.url}})
    result = processes.run_command("novalet-status", "--config-file", bad,
                                   "upgrade", "check")
    assert result.returncode == WARNING, result.stdout + result.stderr
    assert "Result: Warning" in result.stdout and "Traceback" not in result.stdout

    # 2: a failure (a database never synced); 3: the database unreachable.
    (tmp_path / "new.sqlite").touch()  # an empty database
    empty = processes.write_config(str(tmp_path / "empty.conf"), {
        "database": {"connection": "sqlite:///%s" % (tmp_path / "new.sqlite")}})
    result = processes.run_command("novalet-status", "--config-file", empty,
                                   "upgrade", "check")
    assert result.returncode == FAILURE, result.stdout + result.stderr
    assert "Result: Failure" in result.stdout
    # No database file at all: one line, and none is created.
    missing = processes.write_config(str(tmp_path / "missing.conf"), {
        "database": {"connection": "sqlite:///%s" % (tmp_path / "none.sqlite")}})
    result = processes.run_command("novalet-status", "--config-file", missing,
                                   "upgrade", "check")
    assert result.returncode == FAILURE, result.stdout + result.stderr
    assert result.stderr.strip().endswith("has no schema: run 'novalet-manage db sync'")
    assert not (tmp_path / "none.sqlite").exists()
    down = processes.write_config(str(tmp_path / "down.conf"), {
        "database": {"connection": "postgresql+psycopg2://postgres:s3cret@"
                                   "127.0.0.1:%d/novalet" % free_port()}})
    result = processes.run_command("novalet-status", "--config-file", down,
                                   "upgrade", "check")
    assert result.returncode == 3, result.stdout + result.stderr
    assert result.stdout == "" and "s3cret" not in result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and "unreachable" in line, line


# -- signed requests ------------------------------------------------------------

def _last_auth(database: Any, host: str, how: str | None) -> None:
    database.query("UPDATE services SET last_auth = :a WHERE host = :h",
                   a=how, h=host)


def test_every_service_signs(run: Status, healthy: Any, database: Any,
                             conf: Any) -> None:
    _last_auth(database, "cmp1", "host")
    _last_auth(database, "cmp2", "admin")  # ctl: local (the conductor's own)
    assert run.check()[1][SIGNING] == (SUCCESS, "All 3 service(s) sign their "
                                                "requests.")
    conf("enforce", False, "auth")
    result, details = run.check()[1][SIGNING]
    assert result == SUCCESS and "set [auth] enforce = true" in details


def test_services_that_do_not_sign(run: Status, healthy: Any, database: Any,
                                   conf: Any) -> None:
    _last_auth(database, "cmp1", "unsigned")  # a release 3 compute without key
    _last_auth(database, "cmp2", None)        # never recorded: release 2
    database.query("UPDATE services SET version = 2 WHERE host = 'cmp2'")
    conf("enforce", False, "auth")
    result, details = run.check()[1][SIGNING]
    assert result == WARNING, details
    assert ("2 service(s) do not sign their requests yet: cmp1/novalet-compute "
            "(heartbeat unsigned), cmp2/novalet-compute (version 2). Keep "
            "[auth] enforce = false") in details
    conf("enforce", True, "auth")
    result, details = run.check()[1][SIGNING]
    assert result == FAILURE and "their requests are refused" in details
    # A service forced down (fenced) does not count.
    database.query("UPDATE services SET forced_down = :t", t=True)
    assert run.check()[1][SIGNING] == (SUCCESS, "No services are registered.")
