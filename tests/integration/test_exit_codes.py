"""The exit codes of the service commands, from the installed commands as
separate processes: 0 done, 1 the operation failed, 2 usage, 3 a service
unreachable (the database or broker at a closed loopback port, a conductor
that never answers). ``novalet-manage`` and ``novalet-status`` have theirs
in tests/functional/test_manage.py and test_status.py."""

from __future__ import annotations

import os
import socket
from typing import Any

import pytest

from novalet import context, objects
from tests import processes
from tests.private_rabbit import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def _config(tmp_path: Any, name: str, **sections: dict[str, Any]) -> str:
    values: dict[str, dict[str, Any]] = {
        "DEFAULT": {"host": name, "startup_timeout": 2, "report_interval": 1,
                    "periodic_fuzzy_delay": 0, "rpc_response_timeout": 5,
                    "state_path": str(tmp_path / ("state-" + name))}}
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return processes.write_config(str(tmp_path / (name + ".conf")), values)


def _run(binary: str, *args: str) -> Any:
    return processes.run_command(binary, *args, timeout=120)


def _one_line(result: Any, code: int, *fragments: str) -> str:
    assert result.returncode == code, (result.returncode, result.stderr)
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    for fragment in fragments:
        assert fragment in line, line
    return line


def _closed_broker() -> str:
    return "rabbit://guest:s3cret@127.0.0.1:%d/" % free_port()


def _closed_database() -> str:
    return "postgresql+psycopg2://postgres:s3cret@127.0.0.1:%d/novalet" % free_port()


@pytest.mark.parametrize("binary", ["novalet-conductor", "novalet-compute",
                                    "novalet-allinone"])
def test_help_names_the_exit_codes(binary: str) -> None:
    result = _run(binary, "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "Exit codes: 0 done; 1 the operation failed" in text
    assert "2 usage error" in text and "3 a service is unreachable" in text


@pytest.mark.parametrize("binary", ["novalet-conductor", "novalet-compute"])
def test_usage_errors(tmp_path: Any, binary: str) -> None:
    config = _config(tmp_path, "usage")
    result = _run(binary, "--config-file", config, "--no-such-option")
    assert result.returncode == 2, result.stderr
    assert "--no-such-option" in result.stderr
    bad_value = _config(tmp_path, "bad-value",
                        DEFAULT={"servicegroup_driver": "carrier-pigeon",
                                 "transport_url": _closed_broker()},
                        database={"connection": _closed_database()})
    _one_line(_run(binary, "--config-file", bad_value), 2, "carrier-pigeon")


def test_conductor_unreachable_database_and_broker(tmp_path: Any,
                                                   sqlite_db: Any) -> None:
    no_db = _config(tmp_path, "no-db", database={"connection": _closed_database()})
    _one_line(_run("novalet-conductor", "--config-file", no_db), 3,
              "novalet-conductor: cannot start: Database", "unreachable")
    no_broker = _config(tmp_path, "no-broker",
                        DEFAULT={"transport_url": _closed_broker()},
                        database={"connection": sqlite_db.url})
    line = _one_line(_run("novalet-conductor", "--config-file", no_broker), 3,
                     "Message broker", "refused")
    assert "s3cret" not in line


def test_compute_codes(tmp_path: Any, rabbit_vhost: Any, sqlite_db: Any,
                       conf: Any) -> None:
    topic = "conductor-%s" % os.urandom(4).hex()
    shared = {"DEFAULT": {"transport_url": rabbit_vhost.url},
              "conductor": {"topic": topic, "workers": 1},
              "compute": {"topic": "compute-%s" % os.urandom(4).hex()},
              "database": {"connection": sqlite_db.url}}
    # 2: a configuration that cannot work (a compute with database access).
    direct = _config(tmp_path, "direct", **shared, objects={"indirection": "direct"})
    _one_line(_run("novalet-compute", "--config-file", direct), 2,
              "indirection=direct")
    # 3: the broker at a closed port; then a broker but no conductor.
    no_broker = _config(tmp_path, "no-broker",
                        DEFAULT={"transport_url": _closed_broker()})
    _one_line(_run("novalet-compute", "--config-file", no_broker), 3,
              "Message broker", "unreachable")
    alone = _config(tmp_path, "alone", **shared)
    _one_line(_run("novalet-compute", "--config-file", alone), 3,
              "did not answer")
    # 1: the conductor answers that an unsupported old service is registered.
    conductor = processes.ServiceProcess(
        "novalet-conductor", _config(tmp_path, "cond", **shared),
        str(tmp_path / "cond.log"))
    try:
        conductor.wait_for_log("novalet-conductor started")
        ctxt = context.get_admin_context()
        objects.Service(ctxt, host="ancient", binary="novalet-compute",
                        version=0).create()
        _one_line(_run("novalet-compute", "--config-file", alone), 1,
                  "ancient", "oldest this release supports")
        objects.Service.get_by_host_and_binary(
            ctxt, "ancient", "novalet-compute").destroy()
        # 1: the metrics port is held by another process: the line names
        # the port and the option (the compute binds it after the checks).
        with socket.socket() as held:
            held.bind(("127.0.0.1", 0))
            held.listen()
            port = held.getsockname()[1]
            busy = _config(tmp_path, "busy", **shared,
                           metrics={"bind_host": "127.0.0.1", "bind_port": port})
            _one_line(_run("novalet-compute", "--config-file", busy), 1,
                      "novalet-compute: cannot start: [metrics] bind_port %d "
                      "(bind_host 127.0.0.1) cannot be used: Address already in "
                      "use" % port)
    finally:
        conductor.stop()


def test_conductor_metrics_port_in_use(tmp_path: Any, rabbit_vhost: Any,
                                       sqlite_db: Any) -> None:
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        config = _config(tmp_path, "busy-cond",
                         DEFAULT={"transport_url": rabbit_vhost.url},
                         conductor={"workers": 1},
                         database={"connection": sqlite_db.url},
                         metrics={"bind_host": "127.0.0.1", "bind_port": port})
        line = _one_line(_run("novalet-conductor", "--config-file", config), 1,
                         "[metrics] bind_port %d" % port, "Address already in use",
                         "set another [metrics] bind_port")
    assert "OSError" not in line and "Errno" not in line


@pytest.mark.parametrize("binary", ["novalet-conductor", "novalet-compute"])
def test_queue_manager_without_lock_path(tmp_path: Any, rabbit_vhost: Any,
                                         sqlite_db: Any, binary: str) -> None:
    """use_queue_manager needs a lock directory: one line naming both
    options (exit 2), not a traceback from the first call."""
    config = _config(tmp_path, "qm",
                     DEFAULT={"transport_url": rabbit_vhost.url},
                     conductor={"workers": 1},
                     database={"connection": sqlite_db.url},
                     oslo_messaging_rabbit={"use_queue_manager": True})
    env = {k: v for k, v in os.environ.items() if k != "OSLO_LOCK_PATH"}
    result = processes.run_command(binary, "--config-file", config, timeout=120,
                                   env=env)
    _one_line(result, 2, "%s: cannot start: Configuration error: "
              "[oslo_messaging_rabbit] use_queue_manager = true needs "
              "[oslo_concurrency] lock_path" % binary)


@pytest.mark.parametrize("content, reason", [
    (None, "No such file or directory"),
    ("not json\n", "not a novalet key file"),
])
def test_compute_key_file_errors_come_first(tmp_path: Any, content: str | None,
                                            reason: str) -> None:
    """A bad ``[auth] key_file`` is named with its problem, not as an
    ``[objects] indirection`` the operator never set (exit 2)."""
    key = tmp_path / "host.key"
    if content is not None:
        key.write_text(content)
        key.chmod(0o600)
    config = _config(tmp_path, "keyed",
                     DEFAULT={"transport_url": _closed_broker()},
                     auth={"key_file": str(key)})
    line = _one_line(_run("novalet-compute", "--config-file", config), 2)
    assert line.startswith("novalet-compute: cannot start: Key file %s: %s"
                           % (key, reason)), line
    assert "indirection" not in line and "entry point" not in line


def test_allinone_codes(tmp_path: Any, sqlite_db: Any) -> None:
    config = _config(tmp_path, "aio")
    sizes = ["--computes", "1", "--nodes", "1", "--instances", "0"]
    result = _run("novalet-allinone", "--config-file", config, "--once", *sizes)
    assert result.returncode == 0, result.stderr
    assert "novalet-allinone: stopped" in result.stdout

    result = _run("novalet-allinone", "--computes", "0")
    assert result.returncode == 2 and "--computes" in result.stderr

    _one_line(_run("novalet-allinone", "--config-file", config, "--once", *sizes,
                   "--database-connection", _closed_database()), 3,
              "Database", "unreachable")
    _one_line(_run("novalet-allinone", "--config-file", config, "--once", *sizes,
                   "--transport-url", _closed_broker(),
                   "--database-connection", sqlite_db.url), 3,
              "Message broker", "unreachable")
    # 1: the database is at a revision this release does not know.
    sqlite_db.query("UPDATE alembic_version SET version_num = '9999_future'")
    try:
        _one_line(_run("novalet-allinone", "--config-file", config, "--once",
                       *sizes, "--database-connection", sqlite_db.url), 1,
                  "9999_future")
    finally:
        from novalet.db import migration

        sqlite_db.query("UPDATE alembic_version SET version_num = :v",
                        v=migration.head_revision())
