"""``novalet-manage`` against a populated database, on SQLite, PostgreSQL and
MariaDB: every command in both output formats, and its errors (one line on
stderr, no traceback; exit 1 when the operation failed, 2 for a bad command
line). Most run ``manage.main`` in this process; a
few run the installed command to check real exit codes."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy

from novalet import context, exception, objects
from novalet.cmd import manage, manage_service, status
from novalet.db import migration
from novalet.upgrade import releases
from tests import commands, processes
from tests.private_rabbit import free_port

UTC = datetime.UTC


@pytest.fixture(autouse=True)
def _command_state() -> Iterator[None]:
    with commands.restored_command_state():
        yield


class Manage(commands.InProcessCommand):
    """``novalet-manage ARGS`` in this process: (exit code, stdout, stderr)."""

    def json(self, *argv: str) -> Any:
        code, out, err = self(*argv, "--format", "json")
        assert code == 0, err
        return json.loads(out)

    def fails(self, *argv: str, code: int = 1) -> str:
        """Run a command that must fail with exit ``code`` (1: the operation
        failed, 2: usage); its stderr line."""
        actual, out, err = self(*argv)
        assert actual == code, (out, err)
        assert out == ""
        assert len(err.strip().splitlines()) == 1, err
        assert "Traceback" not in err and "usage:" not in err
        return err.strip()


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> Manage:
    config = processes.write_config(str(tmp_path / "empty.conf"), {"DEFAULT": {}})
    return Manage(manage.main, capsys, config)


def _service(ctxt: Any, host: str, binary: str, *, beat: bool) -> Any:
    service = objects.Service(ctxt, host=host, binary=binary,
                              topic=binary.split("-")[-1])
    service.create()
    if beat:
        service.report_count += 1
        service.save()
    return service


def _node(ctxt: Any, host: str, name: str, **values: Any) -> Any:
    fields = dict(vcpus=16, memory_mb=32768, local_gb=1024, vcpus_used=4,
                  memory_mb_used=4096, local_gb_used=100, running_vms=1,
                  hypervisor_type="fake", hypervisor_version=1, cpu_info="{}")
    fields.update(values)
    node = objects.ComputeNode(ctxt, host=host, hypervisor_hostname=name, **fields)
    node.create()
    return node


def _populate(database: Any) -> dict[str, Any]:
    """cmp1 (up, 2 nodes, 1 instance), cmp2 (never reported, 2 nodes, one
    named like cmp1's), a conductor (up), a node on a host with no service."""
    ctxt = context.get_admin_context()
    services = {
        "cmp1": _service(ctxt, "cmp1", "novalet-compute", beat=True),
        "cmp2": _service(ctxt, "cmp2", "novalet-compute", beat=False),
        "ctl": _service(ctxt, "ctl", "novalet-conductor", beat=True),
    }
    nodes = [
        _node(ctxt, "cmp1", "node-a"),
        _node(ctxt, "cmp1", "node-b", vcpus=8, vcpus_used=0, running_vms=0),
        _node(ctxt, "cmp2", "node-a", memory_mb=16384, memory_mb_used=0,
              free_ram_mb=16384),
        _node(ctxt, "cmp2", "node-c"),
        _node(ctxt, "gone", "node-z", vcpus=2, vcpus_used=0, running_vms=None),
    ]
    objects.Instance(ctxt, host="cmp1", node="node-a", vcpus=4,
                     memory_mb=4096).create()
    return {"ctxt": ctxt, "services": services, "nodes": nodes,
            "database": database}


@pytest.fixture
def cloud(database: Any) -> dict[str, Any]:
    """The populated database, on each backend."""
    return _populate(database)


@pytest.fixture
def sqlite_cloud(sqlite_db: Any) -> dict[str, Any]:
    """The populated database, on SQLite only."""
    return _populate(sqlite_db)


def _fetch(ctxt: Any, host: str, binary: str) -> Any:
    return objects.Service.get_by_host_and_binary(ctxt, host, binary)


# -- db ------------------------------------------------------------------

def test_db_version_and_sync_and_empty_listings(run: Manage, sqlite_db: Any) -> None:
    head = migration.head_revision()
    assert run("db", "version") == (0, "%s\n" % head, "")
    code, out, _err = run("db", "sync")
    assert code == 0 and out == "Database is at %s\n" % head
    assert run.json("service", "list") == run.json("hypervisor", "list") == []
    assert run.json("hypervisor", "stats")["count"] == 0
    code, out, _err = run("service", "list")
    assert code == 0 and len(out.splitlines()) == 2  # header and rule only


@pytest.mark.parametrize("argv", [["service", "list"], ["hypervisor", "list"],
                                  ["hypervisor", "stats"], ["hypervisor", "show", "n1"]])
def test_a_database_without_schema_asks_for_db_sync(
        capsys: pytest.CaptureFixture[str], tmp_path: Any, argv: list[str]) -> None:
    path = tmp_path / "novalet.sqlite"
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "database": {"connection": "sqlite:///%s" % path}})
    run = Manage(manage.main, capsys, config)
    # No file: nothing is created, and the operator is told what to do.
    line = run.fails(*argv)
    assert line == ("novalet-manage: the database at sqlite:///%s has no schema: run "
                    "'novalet-manage db sync'" % path)
    assert not path.exists()
    assert run("db", "version")[:2] == (0, "None (not synced)\n")
    assert not path.exists()
    # An empty database says the same.
    path.touch()
    assert run.fails(*argv) == line
    # A table missing under a synced schema names the table (SchemaIncomplete).
    assert run("db", "sync")[0] == 0
    engine = sqlalchemy.create_engine("sqlite:///%s" % path)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE compute_nodes")
    engine.dispose()
    if argv[0] == "hypervisor":
        head = migration.head_revision()
        assert run.fails(*argv) == (
            "novalet-manage: database schema has no table compute_nodes (the "
            "database is at %s, the code's head is %s): run 'novalet-manage db "
            "sync'; if it is at the head already, the app's migrations lack it"
            % (head, head))


# -- service list --------------------------------------------------------

def test_service_list_json(run: Manage, cloud: dict[str, Any]) -> None:
    records = run.json("service", "list")
    assert [r["host"] for r in records] == ["cmp1", "cmp2", "ctl"]
    for record in records:
        assert tuple(record) == manage_service.KEYS
    cmp1, cmp2, ctl = records
    assert cmp1["id"] == cloud["services"]["cmp1"].id
    assert (cmp1["binary"], cmp1["status"], cmp1["state"]) == (
        "novalet-compute", "enabled", "up")
    assert cmp1["forced_down"] is False and cmp1["disabled_reason"] is None
    assert cmp1["report_count"] == 1
    assert cmp1["version"] == releases.SERVICE_VERSION
    assert cmp1["last_seen_up"].endswith("Z")
    assert 0 <= cmp1["seconds_since_heartbeat"] < 60
    # Never reported: down, no heartbeat at all.
    assert (cmp2["state"], cmp2["last_seen_up"], cmp2["seconds_since_heartbeat"],
            cmp2["report_count"]) == ("down", None, None, 0)
    assert (ctl["binary"], ctl["state"]) == ("novalet-conductor", "up")


def test_service_list_table(run: Manage, cloud: dict[str, Any]) -> None:
    code, out, err = run("service", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split("  ")[0] == "ID"
    for header in ("Host", "Binary", "Status", "State", "Forced Down",
                   "Last Seen Up (UTC)", "Seconds Since Heartbeat",
                   "Report Count", "Version"):
        assert header in lines[0]
    assert set(lines[1]) <= {"-", " "}
    rows = {line.split()[1]: line.split() for line in lines[2:]}
    assert set(rows) == {"cmp1", "cmp2", "ctl"}
    assert rows["cmp1"][2:5] == ["novalet-compute", "enabled", "up"]
    assert rows["cmp2"][2:8] == ["novalet-compute", "enabled", "down", "no", "-", "-"]
    # Columns line up: every row starts each column where the header does.
    state_at = lines[0].index("State")
    assert all(line[state_at:state_at + 2] in ("up", "do") for line in lines[2:])


def test_service_list_filters(run: Manage, cloud: dict[str, Any]) -> None:
    assert [r["host"] for r in run.json("service", "list", "--binary",
                                        "novalet-compute")] == ["cmp1", "cmp2"]
    assert [r["binary"] for r in run.json("service", "list", "--host", "ctl")] == [
        "novalet-conductor"]
    assert run.json("service", "list", "--host", "nowhere") == []


# -- disable / enable / force-down ---------------------------------------

def test_disable_and_enable_never_move_last_seen_up(
        run: Manage, cloud: dict[str, Any]) -> None:
    ctxt, database = cloud["ctxt"], cloud["database"]
    seen = datetime.datetime(2020, 1, 2, 3, 4, 5)
    database.query("UPDATE services SET last_seen_up = :t WHERE host = 'cmp1'", t=seen)

    code, out, err = run("service", "disable", "cmp1", "novalet-compute",
                         "--reason", "disk swap")
    assert code == 0, err
    assert "disabled (disk swap)" in out.splitlines()[2]
    service = _fetch(ctxt, "cmp1", "novalet-compute")
    assert (service.disabled, service.disabled_reason) == (True, "disk swap")
    assert service.last_seen_up == seen.replace(tzinfo=UTC)
    assert service.report_count == 1

    record = run.json("service", "enable", "cmp1", "novalet-compute")
    assert (record["status"], record["disabled_reason"]) == ("enabled", None)
    assert record["last_seen_up"] == "2020-01-02T03:04:05Z"
    service = _fetch(ctxt, "cmp1", "novalet-compute")
    assert (service.disabled, service.disabled_reason) == (False, None)
    assert service.last_seen_up == seen.replace(tzinfo=UTC)

    record = run.json("service", "disable", "cmp1", "novalet-compute")
    assert (record["status"], record["disabled_reason"]) == ("disabled", None)
    assert _fetch(ctxt, "cmp1", "novalet-compute").last_seen_up == seen.replace(
        tzinfo=UTC)


def test_force_down_and_unset(run: Manage, cloud: dict[str, Any]) -> None:
    ctxt = cloud["ctxt"]
    record = run.json("service", "force-down", "cmp1", "novalet-compute")
    assert (record["forced_down"], record["state"]) == (True, "down")
    assert _fetch(ctxt, "cmp1", "novalet-compute").forced_down is True
    # A forced-down service is down even though its heartbeat is fresh.
    listed = {r["host"]: r for r in run.json("service", "list")}
    assert listed["cmp1"]["state"] == "down"
    assert 0 <= listed["cmp1"]["seconds_since_heartbeat"] < 60

    code, out, err = run("service", "force-down", "cmp1", "novalet-compute", "--unset")
    assert code == 0, err
    assert out.splitlines()[2].split()[3:6] == ["enabled", "up", "no"]
    assert _fetch(ctxt, "cmp1", "novalet-compute").forced_down is False


# -- delete ----------------------------------------------------------------

def test_delete_compute_deletes_its_nodes(run: Manage, cloud: dict[str, Any]) -> None:
    ctxt = cloud["ctxt"]
    cmp2 = cloud["services"]["cmp2"]
    result = run.json("service", "delete", "cmp2", "novalet-compute")
    assert result["deleted_service"] == {"id": cmp2.id, "host": "cmp2",
                                         "binary": "novalet-compute"}
    assert sorted(n["hypervisor_hostname"] for n in result["deleted_compute_nodes"]) == [
        "node-a", "node-c"]
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp2")) == 0
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp1")) == 2
    assert [s.host for s in objects.ServiceList.get_all(ctxt)] == ["cmp1", "ctl"]
    assert run.fails("service", "delete", "cmp2", "novalet-compute") == (
        "novalet-manage: Service cmp2/novalet-compute could not be found.")


def test_delete_compute_with_instances_is_refused(
        run: Manage, cloud: dict[str, Any]) -> None:
    ctxt = cloud["ctxt"]
    line = run.fails("service", "delete", "cmp1", "novalet-compute", "--force")
    assert line == ("novalet-manage: Service cmp1/novalet-compute still hosts 1 "
                    "instance(s); move or delete them first.")
    assert _fetch(ctxt, "cmp1", "novalet-compute").id == cloud["services"]["cmp1"].id
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp1")) == 2


def test_delete_other_service_table(run: Manage, cloud: dict[str, Any]) -> None:
    ctl = cloud["services"]["ctl"]
    assert run("service", "delete", "ctl", "novalet-conductor", "--force") == (
        0, "Deleted service %d (ctl/novalet-conductor)\n" % ctl.id, "")
    code, out, _err = run("service", "delete", "cmp2", "novalet-compute")
    assert code == 0
    assert out.startswith("Deleted service %d (cmp2/novalet-compute) and 2 "
                          "compute node(s): node-" % cloud["services"]["cmp2"].id)
    assert len(objects.ComputeNodeList.get_all(cloud["ctxt"])) == 3


def test_delete_refuses_a_service_that_is_up(run: Manage, cloud: dict[str, Any]) -> None:
    ctxt = cloud["ctxt"]
    ctl = cloud["services"]["ctl"]
    line = run.fails("service", "delete", "ctl", "novalet-conductor")
    assert line.startswith("novalet-manage: Service ctl/novalet-conductor is up "
                           "(last heartbeat ")
    assert "stop novalet-conductor on ctl first" in line and "--force" in line
    assert _fetch(ctxt, "ctl", "novalet-conductor").id == ctl.id
    # Forced down (fenced) is down: the delete goes through.
    assert run("service", "force-down", "ctl", "novalet-conductor")[0] == 0
    code, out, err = run("service", "delete", "ctl", "novalet-conductor")
    assert code == 0 and out.startswith("Deleted service %d" % ctl.id), err


def test_forced_delete_takes_the_nodes_in_one_transaction(
        run: Manage, cloud: dict[str, Any]) -> None:
    ctxt = cloud["ctxt"]
    cmp1 = cloud["services"]["cmp1"]
    for instance in objects.InstanceList.get_by_host(ctxt, "cmp1"):
        instance.destroy()
    # A node of another host linked to cmp1's record goes with it too.
    linked = _node(ctxt, "elsewhere", "node-l", service_id=cmp1.id)
    result = run.json("service", "delete", "cmp1", "novalet-compute", "--force")
    assert result["deleted_service"]["id"] == cmp1.id
    database = cloud["database"]
    rows = database.query("SELECT id, deleted, deleted_at FROM compute_nodes "
                          "WHERE host = 'cmp1' OR id = :i", i=linked.id)
    assert len(rows) == 3 and all(r.deleted == r.id for r in rows)
    live = database.query("SELECT COUNT(*) AS n FROM compute_nodes WHERE deleted = 0 "
                          "AND service_id = :i", i=cmp1.id)
    assert live[0].n == 0


def test_service_delete_is_one_transaction(cloud: dict[str, Any],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """If deleting the service row fails after its nodes were deleted, the
    nodes come back with the rollback: never nodes gone and service live."""
    from novalet.db import rows as db_rows

    ctxt = cloud["ctxt"]
    cmp2 = cloud["services"]["cmp2"]

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("the service row cannot be written")

    monkeypatch.setattr(db_rows, "soft_delete", fail)
    with pytest.raises(RuntimeError):
        cmp2.destroy()
    monkeypatch.undo()
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp2")) == 2
    cmp2.destroy()
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp2")) == 0


def test_delete_with_instances_deletes_nothing(cloud: dict[str, Any]) -> None:
    """The instance check and the deletes run in one transaction: refused,
    the service and its nodes are all still there."""
    ctxt = cloud["ctxt"]
    cmp1 = cloud["services"]["cmp1"]
    with pytest.raises(exception.ServiceHasInstances):
        cmp1.destroy()
    assert _fetch(ctxt, "cmp1", "novalet-compute").id == cmp1.id
    assert len(objects.ComputeNodeList.get_by_host(ctxt, "cmp1")) == 2


# -- errors ------------------------------------------------------------------

@pytest.mark.parametrize("action", [["disable"], ["enable"], ["force-down"],
                                    ["delete"], ["disable", "--reason", "x"]])
def test_unknown_service(run: Manage, cloud: dict[str, Any], action: list[str]) -> None:
    args = ["service", action[0], "nowhere", "novalet-compute", *action[1:]]
    assert run.fails(*args) == (
        "novalet-manage: Service nowhere/novalet-compute could not be found.")
    assert run.fails("service", action[0], "cmp1", "novalet-bogus") == (
        "novalet-manage: Service cmp1/novalet-bogus could not be found.")


@pytest.mark.parametrize("argv, fragment", [
    ([], "the following arguments are required: COMMAND"),
    (["bogus"], "invalid choice: 'bogus'"),
    (["service"], "novalet-manage service: error: the following arguments are "
                  "required: ACTION"),
    (["service", "frobnicate"], "invalid choice: 'frobnicate'"),
    (["service", "disable", "cmp1"], "novalet-manage service disable: error: "
                                     "the following arguments are required: BINARY"),
    (["service", "list", "--format", "xml"], "invalid choice: 'xml'"),
    (["service", "enable", "a", "b", "c"], "unrecognized arguments: c"),
    (["hypervisor", "show"], "required: NODE"),
    (["hypervisor", "stats", "--frob"], "unrecognized arguments: --frob"),
])
def test_bad_arguments(run: Manage, sqlite_db: Any, argv: list[str],
                       fragment: str) -> None:
    line = run.fails(*argv, code=2)
    assert fragment in line
    assert line.startswith("novalet-manage")
    assert line.endswith("--help)")


def test_help_exits_zero(run: Manage) -> None:
    code, out, err = run("service", "disable", "--help")
    assert code == 0 and "--reason" in out and err == ""


# -- hypervisor ----------------------------------------------------------------

def test_hypervisor_list_json(run: Manage, cloud: dict[str, Any]) -> None:
    records = run.json("hypervisor", "list")
    assert [(r["host"], r["hypervisor_hostname"]) for r in records] == [
        ("cmp1", "node-a"), ("cmp1", "node-b"), ("cmp2", "node-a"),
        ("cmp2", "node-c"), ("gone", "node-z")]
    by_id = {r["id"]: r for r in records}
    first = by_id[cloud["nodes"][0].id]
    assert list(first) == ["id", "uuid", "hypervisor_hostname", "host",
                           "hypervisor_type", "state", "status", "vcpus",
                           "vcpus_used", "memory_mb", "memory_mb_used",
                           "local_gb", "local_gb_used", "running_vms"]
    assert (first["state"], first["status"], first["vcpus"], first["vcpus_used"]) == (
        "up", "enabled", 16, 4)
    states = [(r["host"], r["state"], r["status"]) for r in records]
    assert states[2:] == [("cmp2", "down", "enabled"), ("cmp2", "down", "enabled"),
                          ("gone", "down", None)]


def test_hypervisor_list_table(run: Manage, cloud: dict[str, Any]) -> None:
    code, out, err = run("hypervisor", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["ID", "Hypervisor", "Hostname"]
    rows = [line.split() for line in lines[2:]]
    assert rows[0][1:8] == ["node-a", "cmp1", "fake", "up", "enabled", "4/16",
                            "4096/32768"]
    assert rows[4][1:6] == ["node-z", "gone", "fake", "down", "-"]
    assert rows[4][-1] == "-"  # running_vms unknown


def test_hypervisor_show(run: Manage, cloud: dict[str, Any]) -> None:
    node_b = cloud["nodes"][1]
    record = run.json("hypervisor", "show", "node-b")
    assert (record["id"], record["uuid"], record["host"]) == (node_b.id, node_b.uuid,
                                                              "cmp1")
    assert (record["vcpus"], record["memory_mb"], record["state"],
            record["status"]) == (8, 32768, "up", "enabled")
    assert record["created_at"].endswith("Z") and record["stats"] == {}

    code, out, err = run("hypervisor", "show", "cmp2/node-a")
    assert code == 0, err
    fields = dict(line.split(None, 1) for line in out.splitlines()[2:])
    assert fields["host"] == "cmp2" and fields["memory_mb"] == "16384"
    assert fields["state"] == "down" and fields["id"] == str(cloud["nodes"][2].id)


def test_hypervisor_show_errors(run: Manage, cloud: dict[str, Any]) -> None:
    line = run.fails("hypervisor", "show", "node-a")
    assert "ambiguous" in line and "cmp1, cmp2" in line and "HOST/NODE" in line
    assert run.fails("hypervisor", "show", "node-q") == (
        "novalet-manage: Compute node node-q could not be found.")
    assert run.fails("hypervisor", "show", "cmp2/node-b") == (
        "novalet-manage: Compute node cmp2/node-b could not be found.")


def test_hypervisor_stats(run: Manage, cloud: dict[str, Any]) -> None:
    stats = run.json("hypervisor", "stats")
    assert stats == {
        "count": 5, "vcpus": 16 + 8 + 16 + 16 + 2, "vcpus_used": 4 + 0 + 4 + 4 + 0,
        "memory_mb": 32768 * 4 + 16384, "memory_mb_used": 4096 * 4,
        "free_ram_mb": 28672 * 4 + 16384,  # unset free = total - used
        "local_gb": 1024 * 5, "local_gb_used": 500, "free_disk_gb": 924 * 5,
        "disk_available_least": 0, "running_vms": 3, "current_workload": 0}
    code, out, _err = run("hypervisor", "stats")
    table = dict(line.split() for line in out.splitlines()[2:])
    assert code == 0 and table["count"] == "5" and table["vcpus"] == "58"


def test_main_runs_again_after_other_commands(run: Manage, sqlite_db: Any) -> None:
    assert run("db", "version")[0] == 0
    assert status.main(["--config-file", run.config, "upgrade", "check"]) == 0
    assert run("service", "list")[0] == 0
    assert run("bogus")[0] == 2
    assert run("db", "version")[0] == 0


# -- the installed command -----------------------------------------------------

def test_command_exit_codes(tmp_path: Any, sqlite_cloud: dict[str, Any]) -> None:
    """0 done, 1 the operation failed, 2 usage, 3 the database unreachable
    (a closed loopback port), from the installed command."""
    cloud = sqlite_cloud
    database = cloud["database"]
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "database": {"connection": database.url}})
    down = processes.write_config(str(tmp_path / "down.conf"), {
        "database": {"connection": "postgresql+psycopg2://postgres:s3cret@"
                                   "127.0.0.1:%d/novalet" % free_port()}})

    def manage_cmd(*args: str, config: str = config) -> Any:
        return processes.run_command("novalet-manage", "--config-file", config, *args)

    result = manage_cmd("service", "list", "--format", "json")
    assert result.returncode == 0, result.stderr
    assert [r["host"] for r in json.loads(result.stdout)] == ["cmp1", "cmp2", "ctl"]
    for args, code, message in [
            (("service", "delete", "cmp1", "novalet-compute"), 1, "is up"),
            (("service", "delete", "cmp1", "novalet-compute", "--force"), 1,
             "still hosts 1 instance"),
            (("service", "disable", "nowhere", "novalet-compute"), 1,
             "could not be found"),
            (("hypervisor", "show", "node-a"), 1, "ambiguous"),
            (("service", "disable", "cmp1"), 2, "required: BINARY"),
            (("service", "list", "--format", "xml"), 2, "invalid choice"),
            (("--config-file", str(tmp_path / "missing.conf"), "db", "version"),
             2, "missing.conf"),
            (("db", "version", "--config", down), 3, "127.0.0.1:"),
            (("service", "list", "--config", down), 3, "unreachable"),
            (("db", "sync", "--config", down), 3, "unreachable")]:
        argv = [a for a in args if a != "--config" and a != down]
        result = manage_cmd(*argv, config=down if down in args else config)
        assert result.returncode == code, (args, result.stderr)
        assert result.stdout == ""
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        assert message in result.stderr and "Traceback" not in result.stderr
        assert "s3cret" not in result.stderr
    assert _fetch(cloud["ctxt"], "cmp1", "novalet-compute").disabled is False


def test_help_names_the_exit_codes(run: Manage) -> None:
    code, out, _err = run("--help")
    assert code == 0
    text = " ".join(out.split())
    assert "Exit codes: 0 done; 1 the operation failed" in text
    assert "2 usage error" in text and "3 a service is unreachable" in text
