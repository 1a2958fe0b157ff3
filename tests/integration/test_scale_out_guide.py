"""The operator's scale-out guide (``doc/source/admin/scale-out.rst``),
deployed from its own text, as tests/integration/test_readme.py does for
the README. Each block it has carries a ``.. scale-out-test: NAME`` comment
on the line before its ``.. code-block::``; the guide's last section says
what is run and what is replaced (example hosts, names and paths by this
test's own; libvirt by the fake driver; 1 conductor worker).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from tests import processes
from tests.conftest import service_unavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GUIDE = os.path.join(ROOT, "doc", "source", "admin", "scale-out.rst")
BLOCK = re.compile(r"^\.\. code-block:: (\w+)\n\n((?:(?:   .*)?\n)+)", re.M)
MARKER = re.compile(r"^\.\. scale-out-test: ([\w-]+)\n$")
CONFIG_BLOCKS = ["config-common", "config-conductor", "config-compute"]
TESTED = {"rabbitmq-conf", "rabbitmq-join", "advanced-config", "broker-admin",
          "postgres-setup", "setup-commands", "start-conductor", "start-compute",
          "check-commands", *CONFIG_BLOCKS}
PG_ADMIN = {"PGHOST": "127.0.0.1", "PGPORT": "5432", "PGUSER": "postgres",
            "PGDATABASE": "postgres"}


def _blocks() -> dict[str | None, list[tuple[str, str]]]:
    """``{marker or None: [(language, text)]}`` of every code block."""
    with open(GUIDE) as f:
        text = f.read()
    found: dict[str | None, list[tuple[str, str]]] = {}
    for match in BLOCK.finditer(text):
        before = text[:match.start()].splitlines(keepends=True)
        marker = MARKER.match(before[-1]) if before else None
        body = "".join(line[3:] if line.startswith("   ") else line
                       for line in match.group(2).splitlines(keepends=True))
        found.setdefault(marker.group(1) if marker else None, []).append(
            (match.group(1), body.rstrip("\n") + "\n"))
    return found


def block(name: str) -> str:
    [(_language, text)] = _blocks()[name]
    return text


def _commands(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _ctl() -> str:
    ctl = shutil.which("rabbitmqctl")
    if ctl is None:
        service_unavailable("rabbitmqctl not found")
    return ctl  # type: ignore[return-value]


def test_every_block_is_marked() -> None:
    blocks = _blocks()
    assert None not in blocks, "blocks without a scale-out-test marker"
    assert set(blocks) == TESTED
    assert all(len(texts) == 1 for texts in blocks.values())


def test_rabbitmq_conf_is_the_fault_suites() -> None:
    """Every key is one the fault suite's private 3-node cluster really
    starts with (tests/faults/cluster.py), with the same partition
    handling."""
    with open(os.path.join(ROOT, "tests", "faults", "cluster.py")) as f:
        source = f.read()
    known = {re.sub(r"\.%d$", ".N", key)
             for key in re.findall(r'"([a-z_][a-z_.%0-9]*) = ', source)}
    written = dict(line.split(" = ", 1) for line in _commands(block("rabbitmq-conf")))
    assert {re.sub(r"\.\d+$", ".N", key) for key in written} <= known
    assert written["cluster_partition_handling"] == "pause_minority"
    assert "cluster_partition_handling = pause_minority" in source
    assert sorted(v for k, v in written.items() if ".nodes." in k) == [
        "rabbit@rabbit1", "rabbit@rabbit2", "rabbit@rabbit3"]


def test_advanced_config_is_erlang_terms(tmp_path: Any) -> None:
    erl = shutil.which("erl")
    if erl is None:
        service_unavailable("erl not found (comes with rabbitmq-server)")
    path = tmp_path / "advanced.config"
    path.write_text(block("advanced-config"))
    result = subprocess.run(
        [erl, "-noshell", "-eval",
         '{ok, [[{kernel, [{net_ticktime, T}]}]]} = file:consult("%s"), '
         'io:format("~p~n", [T]), halt().' % path],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert result.stdout.strip() == "8"


def test_join_commands_exist() -> None:
    ctl = _ctl()
    for line in _commands(block("rabbitmq-join")):
        argv = shlex.split(line)
        assert argv[0] == "rabbitmqctl"
        result = subprocess.run([ctl, "help", argv[1]], capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, (line, result.stderr)


@pytest.mark.parametrize("name", CONFIG_BLOCKS)
def test_config_block_parses(name: str, tmp_path: Any) -> None:
    """Each file, layered after the common one as the services read them,
    through novalet's own options: every value written is read back."""
    files = ["config-common"] if name == "config-common" else ["config-common", name]
    args = []
    for each in files:
        (tmp_path / each).write_text(block(each))
        args += ["--config-file", str(tmp_path / each)]
    code = ("import sys\n"
            "from oslo_config import cfg\n"
            "from novalet import conf\n"
            "conf.parse_args(sys.argv[1:])\n"
            "parser = cfg.ConfigParser(sys.argv[-1], {})\n"
            "parser.parse()\n"
            "for section, values in parser.sections.items():\n"
            "    group = conf.CONF if section == 'DEFAULT' else conf.CONF[section]\n"
            "    for key in values:\n"
            "        print(section, key, repr(group[key]))\n")
    env = {k: v for k, v in os.environ.items() if k != "OS_AUTH__MASTER_KEY_FILE"}
    result = subprocess.run([sys.executable, "-c", code, *args], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    read = dict((" ".join(line.split()[:2]), line.split(None, 2)[2])
                for line in result.stdout.splitlines())
    written = [line for line in _commands(block(name)) if "=" in line]
    assert len(read) == len(written), (read, written)
    spot = {"config-common": [("DEFAULT control_exchange", "'novalet'"),
                              ("conductor topic", "'conductor'"),
                              ("compute topic", "'compute'"),
                              ("oslo_concurrency lock_path", "'/var/lib/novalet/lock'")],
            "config-conductor": [("oslo_messaging_rabbit processname",
                                  "'novalet-conductor'"),
                                 ("auth master_key_file", "'/etc/novalet/master.key'")],
            "config-compute": [("oslo_messaging_rabbit processname", "'novalet-compute'"),
                               ("auth key_file", "'/etc/novalet/compute-1.key'")]}
    for key, value in spot[name]:
        assert read[key] == value, (key, read)


# -- the deployment ------------------------------------------------------------------

class Deployment:
    """Names of this run's own for the guide's examples, and what to undo."""

    def __init__(self, tmp_path: Any) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.tmp = tmp_path
        self.vhost = self.broker_user = "novalet-guide-%s" % suffix
        self.db = self.role = "novalet_guide_%s" % suffix
        self.password = uuid.uuid4().hex
        self.hosts = {"compute-1": "compute-1-%s" % suffix,
                      "compute-2": "compute-2-%s" % suffix}
        self.etc = tmp_path / "etc"
        self.etc.mkdir()
        self.state = tmp_path / "state"
        (self.state / "lock").mkdir(parents=True)
        self.broker_users = [self.broker_user]
        self.compute_urls: dict[str, str] = {}
        self.procs: list[processes.ServiceProcess] = []
        self.env = {k: v for k, v in os.environ.items()
                    if k != "OS_AUTH__MASTER_KEY_FILE"}
        self.env["PATH"] = processes.BIN_DIR + os.pathsep + self.env.get("PATH", "")

    def paths(self, text: str) -> str:
        return (text.replace("/etc/novalet", str(self.etc))
                .replace("/var/lib/novalet", str(self.state)))

    def run(self, argv: list[str], env: dict[str, str] | None = None) -> str:
        result = subprocess.run(argv, cwd=str(self.tmp), capture_output=True,
                                text=True, timeout=180, env=env or self.env)
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result.stdout

    def cleanup(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()
        ctl = shutil.which("rabbitmqctl")
        if ctl:
            for user in self.broker_users:
                subprocess.run([ctl, "delete_user", user], capture_output=True, timeout=60)
            subprocess.run([ctl, "delete_vhost", self.vhost], capture_output=True,
                           timeout=60)
        env = dict(os.environ, **PG_ADMIN)
        for sql in ("DROP DATABASE IF EXISTS %s WITH (FORCE)" % self.db,
                    "DROP ROLE IF EXISTS %s" % self.role):
            subprocess.run(["psql", "-c", sql], capture_output=True, env=env, timeout=60)


def _broker_admin(d: Deployment) -> None:
    for line in _commands(block("broker-admin")):
        argv = [d.vhost if word == "novalet" else
                d.password if word == "secret" else word for word in shlex.split(line)]
        d.run([_ctl(), *argv[1:]])


def _postgres_setup(d: Deployment) -> None:
    if shutil.which("psql") is None:
        service_unavailable("psql not found")
    env = dict(d.env, **PG_ADMIN)
    for line in _commands(block("postgres-setup")):
        argv = shlex.split(line)
        assert argv[:3] == ["sudo", "-u", "postgres"]  # the local one trusts us
        argv = [re.sub(r"\bnovalet\b", d.db, word).replace("secret", d.password)
                for word in argv[3:]]
        d.run(argv, env=env)


def _configs(d: Deployment) -> None:
    common = d.paths(block("config-common"))
    (d.etc / "novalet.conf").write_text(common)
    conductor = d.paths(block("config-conductor"))
    for example, real in [
            ("rabbit://novalet:secret@rabbit1:5672,novalet:secret@rabbit2:5672,"
             "novalet:secret@rabbit3:5672/novalet",
             "rabbit://%s:%s@127.0.0.1:5672/%s" % (d.broker_user, d.password, d.vhost)),
            ("novalet:secret@/novalet?host=db1:5432&host=db2:5432",
             "%s:%s@/%s?host=127.0.0.1:5432" % (d.role, d.password, d.db)),
            ("novalet:secret@db-replica:5432/novalet",
             "%s:%s@127.0.0.1:5432/%s" % (d.role, d.password, d.db)),
            ("workers = 4", "workers = 1")]:
        assert example in conductor, example
        conductor = conductor.replace(example, real)
    (d.etc / "conductor.conf").write_text(conductor)


def _compute_config(d: Deployment, example_host: str) -> str:
    text = d.paths(block("config-compute")).replace("compute-1", d.hosts[example_host])
    url = re.search(r"^transport_url = (.*)$", text, re.M).group(1)  # type: ignore[union-attr]
    for example, real in [(url, d.compute_urls[example_host]),
                          ("virt_driver = libvirt", "virt_driver = fake"),
                          ("connection_uri = qemu:///system\n", "")]:
        assert example in text, example
        text = text.replace(example, real)
    path = d.etc / ("compute-%s.conf" % example_host)
    path.write_text(text)
    return str(path)


def _setup_commands(d: Deployment) -> None:
    ctl = _ctl()
    lines = _commands(d.paths(block("setup-commands")))
    for example_host, host in d.hosts.items():
        for line in lines:
            argv = shlex.split(line.replace("compute-1", host))
            if example_host != "compute-1" and argv[-2:] in (["db", "sync"], ["auth", "init"]):
                continue  # once
            out = d.run(argv)
            if argv[-2:] != ["rabbitmq", host]:
                continue
            # What it printed: run on "a broker node", the URL for the host.
            d.broker_users.append(host)
            for printed in _commands(out):
                printed_argv = shlex.split(printed)
                assert printed_argv[0] == "rabbitmqctl", printed
                d.run([ctl, *printed_argv[1:]])
            found = re.search(r"transport_url = (rabbit://\S+)", out)
            assert found, out
            d.compute_urls[example_host] = found.group(1)
            assert "%s:" % host in found.group(1) and d.vhost in found.group(1)


def _start(d: Deployment, name: str, replace: tuple[str, str] | None = None) -> None:
    [line] = _commands(d.paths(block(name)))
    if replace:
        line = line.replace(*replace)
    argv = shlex.split(line)
    configs = [argv[i + 1] for i, word in enumerate(argv) if word == "--config-file"]
    extra = []
    for path in configs[1:]:
        extra += ["--config-file", path]
    proc = processes.ServiceProcess(argv[0], configs[0], str(d.tmp / ("%s-%d.log" % (
        argv[0], len(d.procs)))), *extra, env=d.env)
    d.procs.append(proc)
    proc.wait_for_log("%s started" % argv[0], timeout=180)


def test_deploy_the_guide(tmp_path: Any) -> None:
    d = Deployment(tmp_path)
    try:
        _broker_admin(d)
        _postgres_setup(d)
        _configs(d)
        _setup_commands(d)
        _start(d, "start-conductor")
        for example_host in d.hosts:
            path = _compute_config(d, example_host)
            _start(d, "start-compute",
                   (str(d.etc / "compute.conf"), path))
        checks = [shlex.split(line)
                  for line in _commands(d.paths(block("check-commands")))]

        def both_up() -> str | None:  # after each one's first heartbeat
            listing = d.run(checks[0])
            return listing if all(
                re.search(r"%s\s.*novalet-compute\s+enabled\s+up\b" % re.escape(host),
                          listing) for host in d.hosts.values()) else None

        processes.wait_for(both_up, 60, "both computes up in service list", 1)
        outputs = [d.run(argv) for argv in checks]
        assert re.search(r"count\s+2\b", outputs[1]), outputs[1]
        # Each compute signed with its own key, as its own broker user.
        engine = sa.create_engine("postgresql+psycopg2://postgres@127.0.0.1:5432/%s" % d.db,
                                  poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as conn:
                rows = dict(conn.execute(sa.text(
                    "SELECT host, last_auth FROM services "
                    'WHERE "binary" = \'novalet-compute\'')).all())
        finally:
            engine.dispose()
        assert rows == {host: "host" for host in d.hosts.values()}, rows
        users = d.run([_ctl(), "list_connections", "-q", "vhost", "user"])
        logged_in = {line.split("\t")[1] for line in users.splitlines()
                     if line.startswith(d.vhost + "\t")}
        assert set(d.hosts.values()) | {d.broker_user} <= logged_in, users
        for proc in reversed(d.procs):
            assert proc.stop() == 0
            assert not proc.errors(), proc.errors()
    finally:
        d.cleanup()
