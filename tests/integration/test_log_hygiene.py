"""What a hostile caller can make a conductor write into its log, through
the real path: a ``novalet-conductor`` process on RabbitMQ and PostgreSQL
(``[auth] enforce = true``), and a host as a separate process
(``log_attacker``) with its own key. Caller text with newlines and terminal
escapes in every field that reaches a log line stays on one line; 300
messages oslo.messaging cannot parse cost a few lines, not 300 tracebacks;
a password in the database URL's query is never written."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from novalet import auth
from tests import processes, services
from tests.conftest import service_unavailable
from tests.private_rabbit import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUFFIX = os.urandom(3).hex()
HOST = "log-b-" + SUFFIX
HOST_ENV = {k: v for k, v in os.environ.items()
            if k != "OS_AUTH__MASTER_KEY_FILE"}
#: A line the formatter starts (timestamp, pid, level).
RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \d+ [A-Z]+ ")


@pytest.fixture(scope="module")
def conductor(tmp_path_factory: Any) -> Any:
    tmp = tmp_path_factory.mktemp("logs")
    try:
        vhost = services.RabbitVhost()
        database = services.provision_database("postgresql", str(tmp))
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    # The server trusts local connections: the query's password is unused,
    # but it is what a deployment would write, and must never be logged.
    db_url = database.url + "?password=s3cret-in-query"
    common = {"startup_timeout": 10, "report_interval": 1,
              "periodic_fuzzy_delay": 0, "rpc_response_timeout": 15,
              "state_path": str(tmp / "state")}
    topics = {"conductor": {"topic": "conductor-" + SUFFIX, "workers": 1},
              "compute": {"topic": "compute-" + SUFFIX}}

    def config(name: str, **sections: Any) -> str:
        return processes.write_config(str(tmp / (name + ".conf")), {
            "DEFAULT": dict(common, host=name, transport_url=vhost.url),
            "database": {"connection": db_url}, **topics, **sections})

    procs = []
    try:
        synced = processes.run_command("novalet-manage", "--config-file",
                                       config("admin"), "db", "sync")
        assert synced.returncode == 0, synced.stderr
        assert "s3cret" not in synced.stdout + synced.stderr
        proc = processes.ServiceProcess(
            "novalet-conductor", config("cond-" + SUFFIX), str(tmp / "cond.log"),
            "--debug")
        procs.append(proc)
        proc.wait_for_log("novalet-conductor started", timeout=90)
        auth.keys.write_host_key(os.environ["OS_AUTH__MASTER_KEY_FILE"], HOST,
                                 str(tmp / "host.key"))
        yield {"proc": proc, "host_conf": config(
            HOST, auth={"key_file": tmp / "host.key"},
            objects={"indirection": "rpc"})}
    finally:
        for proc in procs:
            proc.stop()
        vhost.delete()
        database.drop()


def _attack(conductor: Any, *args: str) -> dict[str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.log_attacker",
         conductor["host_conf"], *args],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=HOST_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_database_password_in_the_query_is_never_logged(conductor: Any) -> None:
    log = conductor["proc"].log()
    assert "s3cret" not in log
    start = [line for line in log.splitlines() if "starting on" in line]
    assert start and "password=***" in start[0], start


def test_caller_text_stays_on_one_line(conductor: Any) -> None:
    proc = conductor["proc"]
    outcomes = _attack(conductor, "forge")
    assert outcomes == {"unsigned, method name": "SignatureRefused",
                        "signed, another host's service": "Forbidden"}
    processes.wait_for(lambda: "FORGED-HOST" in proc.log(), 15,
                       "the refusal's warning")
    lines = proc.log().splitlines()
    forged = [line for line in lines if "FORGED" in line]
    # Each field reached a record of the conductor's, escaped.
    for field in ("METHOD", "RID", "GRID", "USER", "PROJECT", "HOST"):
        assert any("FORGED-" + field in line for line in forged), (
            field, "\n".join(forged))
    assert all(RECORD.match(line) for line in forged), forged
    assert not any("\x1b" in line or "\r" in line for line in lines)
    assert not any(line.startswith("2026-01-01") for line in lines)


def test_a_flood_of_unparsable_messages_costs_a_few_lines(
        conductor: Any) -> None:
    proc = conductor["proc"]
    before = proc.log()
    assert _attack(conductor, "flood", "300") == {"flood": "done"}
    # Everything was consumed: a signed call behind the flood is answered.
    assert _attack(conductor, "forge")["signed, another host's service"] \
        == "Forbidden"
    new = proc.log()[len(before):].splitlines()
    library = [line for line in new if " oslo.messaging" in line
               and re.search(r" (WARNING|ERROR|CRITICAL) ", line)]
    assert 1 <= len(library) <= 6, "\n".join(new[-60:])
    assert not any(line.startswith("Traceback") or "Traceback (most recent"
                   in line for line in new), "\n".join(new[:40])
    assert proc.proc.poll() is None


@pytest.mark.parametrize("argv", [
    ["novalet-conductor"], ["novalet-manage", "db", "version"],
    ["novalet-status", "upgrade", "check"],
    ["novalet-allinone", "--once", "--computes", "1", "--instances", "0"]])
def test_commands_never_print_a_password_of_the_database_url(
        tmp_path: Any, argv: list[str]) -> None:
    port = free_port()
    config = processes.write_config(str(tmp_path / "c.conf"), {
        "DEFAULT": {"host": "pw-check", "startup_timeout": 1,
                    "state_path": str(tmp_path / "state")},
        "database": {"connection": "postgresql+psycopg2://u:s3cret-user@"
                     "127.0.0.1:%d/db?password=s3cret-query&sslmode=disable"
                     % port}})
    result = processes.run_command(argv[0], "--config-file", config, "--debug",
                                   *argv[1:])
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "127.0.0.1:%d" % port in output, output
    assert "s3cret" not in output, output
