"""``novalet-manage auth`` and the start-up checks of [auth]: what is
written, what is refused, and with which exit code."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from typing import Any

import oslo_messaging as messaging
import pytest

from novalet import auth
from novalet import conf as novalet_conf
from novalet.cmd import manage
from tests import commands, processes
from tests.conftest import MASTER_KEY_FILE


@pytest.fixture(autouse=True)
def _command_state(monkeypatch: Any) -> Iterator[None]:
    # This deployment's own master key, not the test session's.
    monkeypatch.delenv("OS_AUTH__MASTER_KEY_FILE")
    with commands.restored_command_state():
        yield


@pytest.fixture
def run(capsys: Any, tmp_path: Any) -> Any:
    config = processes.write_config(str(tmp_path / "admin.conf"), {
        "DEFAULT": {"transport_url":
                    "rabbit://novalet:secret@rabbit.example:5672/novalet"},
        "auth": {"master_key_file": tmp_path / "keys" / "master.key"}})
    return commands.InProcessCommand(manage.main, capsys, config)


def test_init_host_key_rotate_retire(run: Any, tmp_path: Any) -> None:
    master = tmp_path / "keys" / "master.key"
    code, out, err = run("auth", "init")
    assert code == 0, err
    assert stat.S_IMODE(os.stat(master).st_mode) == 0o600
    first = auth.keys.read_file(str(master), "master")["keys"][0][0]
    assert out.startswith("Wrote master key %s in %s" % (first, master))
    before = master.read_text()
    code, out, err = run("auth", "init")
    assert (code, master.read_text()) == (1, before)
    assert "exists already" in err and "--rotate" in err
    code, out, err = run("auth", "host-key", "compute-1", "--output",
                         str(tmp_path / "c1.key"))
    assert code == 0, err
    assert "set [auth] key_file = %s on compute-1" % (tmp_path / "c1.key") in out
    code, _, err = run("auth", "host-key", "compute-1", "--output",
                       str(tmp_path / "c1.key"))
    assert code == 1 and "exists already" in err
    code, out, err = run("auth", "init", "--rotate")
    assert code == 0, err
    second = auth.keys.read_file(str(master), "master")["keys"][0][0]
    assert second != first
    code, out, err = run("auth", "retire", first)
    assert code == 0, err
    assert [k for k, _ in auth.keys.read_file(str(master), "master")["keys"]] \
        == [second]


def test_key_directories_are_made_0700_whatever_the_umask(
        run: Any, tmp_path: Any) -> None:
    old = os.umask(0)
    try:
        code, _, err = run("auth", "init")
        assert code == 0, err
        nested = tmp_path / "hosts" / "compute-1" / "c1.key"
        code, _, err = run("auth", "host-key", "compute-1", "--output",
                           str(nested))
        assert code == 0, err
    finally:
        os.umask(old)
    for directory in (tmp_path / "keys", tmp_path / "hosts",
                      tmp_path / "hosts" / "compute-1"):
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o700, directory
    assert stat.S_IMODE(os.stat(nested).st_mode) == 0o600


@pytest.mark.parametrize("host", ["Compute-1", "compute_1", "compute-1 ",
                                  "c\u043empute-1"])
def test_host_key_of_a_non_canonical_host_is_a_usage_error(
        run: Any, tmp_path: Any, host: str) -> None:
    assert run("auth", "init")[0] == 0
    code, out, err = run("auth", "host-key", host, "--output",
                         str(tmp_path / "x.key"))
    assert code == 2 and "is not canonical" in err
    assert not (tmp_path / "x.key").exists()


def test_rabbitmq_commands(run: Any) -> None:
    code, out, err = run("auth", "rabbitmq", "compute-1", "--password", "pw")
    assert code == 0, err
    assert out.splitlines() == [
        "rabbitmqctl add_vhost novalet",
        "rabbitmqctl add_user compute-1 pw",
        "rabbitmqctl set_permissions -p novalet compute-1 "
        "'^(novalet|compute|compute\\.compute\\-1|compute_fanout|"
        "compute_fanout_.*|reply_compute\\-1:.*)$' "
        "'^(novalet|compute|compute\\.compute\\-1|compute_fanout|"
        "compute_fanout_.*|reply_compute\\-1:.*|amq\\.default)$' "
        "'^(novalet|compute|compute\\.compute\\-1|compute_fanout|"
        "compute_fanout_.*|reply_compute\\-1:.*)$'",
        "rabbitmqctl set_topic_permissions -p novalet compute-1 novalet "
        "'^(conductor|novalet\\-startup\\-check\\-.*)$' "
        "'^compute(\\.compute\\-1)?$'",
        "# conductors and admin hosts, once: rabbitmqctl add_user novalet "
        "'<password>'; rabbitmqctl set_permissions -p novalet novalet "
        "'.*' '.*' '.*'",
        "# on compute-1: transport_url = "
        "rabbit://compute-1:pw@rabbit.example:5672/novalet"]
    assert "secret" not in out


def _rabbitmq(capsys: Any, tmp_path: Any, transport_url: str | None,
              *args: str) -> tuple[int, str, str]:
    default = {} if transport_url is None else {"transport_url": transport_url}
    config = processes.write_config(str(tmp_path / "other.conf"),
                                    {"DEFAULT": default})
    return commands.InProcessCommand(manage.main, capsys, config)(
        "auth", "rabbitmq", "compute-1", *args)


def test_rabbitmq_url_of_a_cluster_has_the_credentials_on_every_host(
        capsys: Any, tmp_path: Any) -> None:
    code, out, err = _rabbitmq(
        capsys, tmp_path,
        "rabbit://admin:s3cret@h1:5672,admin:s3cret@[fd00::2]:5673,"
        "admin:s3cret@h3/nova%2Fprod", "--password", "p@ss:w/rd", "-n",
        "rabbit@h1")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == "rabbitmqctl -n rabbit@h1 add_vhost nova/prod"
    assert all(line.startswith(("rabbitmqctl -n rabbit@h1 ", "#"))
               for line in lines), out
    assert lines[-1] == (
        "# on compute-1: transport_url = "
        "rabbit://compute-1:p%40ss%3Aw%2Frd@h1:5672,"
        "compute-1:p%40ss%3Aw%2Frd@[fd00::2]:5673,"
        "compute-1:p%40ss%3Aw%2Frd@h3:5672/nova%2Fprod")
    assert "add_user admin '<password>'" in out and "s3cret" not in out
    # What oslo.messaging reads back: the user on every host.
    url = messaging.TransportURL.parse(novalet_conf.CONF,
                                       lines[-1].split(" = ", 1)[1])
    assert [(h.username, h.password, h.hostname, h.port) for h in url.hosts] \
        == [("compute-1", "p@ss:w/rd", "h1", 5672),
            ("compute-1", "p@ss:w/rd", "fd00::2", 5673),
            ("compute-1", "p@ss:w/rd", "h3", 5672)]
    assert url.virtual_host == "nova/prod"
    code, out, err = _rabbitmq(capsys, tmp_path, "rabbit://a:b@h1,a:b@h2/v",
                               "--password", "pw")
    assert code == 0, err
    assert out.splitlines()[0].startswith("# users, vhosts and permissions "
                                          "are the cluster's")


@pytest.mark.parametrize("transport_url", [None, "fake://"])
def test_rabbitmq_without_a_broker_url_warns_and_prints_nothing(
        capsys: Any, tmp_path: Any, transport_url: str | None) -> None:
    code, out, err = _rabbitmq(capsys, tmp_path, transport_url)
    assert (code, out) == (2, "")
    assert "warning: [DEFAULT] transport_url is" in err
    assert "not a RabbitMQ broker" in err


def test_without_a_master_key_file_option(capsys: Any, tmp_path: Any) -> None:
    config = processes.write_config(str(tmp_path / "none.conf"), {"DEFAULT": {}})
    run = commands.InProcessCommand(manage.main, capsys, config)
    novalet_conf.CONF.set_default("master_key_file", None, "auth")
    try:
        code, out, err = run("auth", "init")
    finally:
        novalet_conf.CONF.set_default("master_key_file", MASTER_KEY_FILE, "auth")
    assert code == 2 and "[auth] master_key_file is not set" in err


# -- services that cannot work with their keys -------------------------------------

def _start(binary: str, tmp_path: Any, auth_section: dict[str, Any],
           host: str = "compute-1") -> Any:
    config = processes.write_config(str(tmp_path / (binary + ".conf")), {
        "DEFAULT": {"host": host, "startup_timeout": 0,
                    "transport_url": "rabbit://guest:guest@127.0.0.1:1/x"},
        "database": {"connection": "sqlite:///%s" % (tmp_path / "db.sqlite")},
        "auth": auth_section})
    env = {k: v for k, v in os.environ.items() if k != "OS_AUTH__MASTER_KEY_FILE"}
    return subprocess.run([os.path.join(processes.BIN_DIR, binary),
                           "--config-file", config], capture_output=True,
                          text=True, timeout=120, env=env)


def test_services_refuse_to_start_without_the_keys_they_need(
        tmp_path: Any) -> None:
    result = _start("novalet-conductor", tmp_path, {})
    assert result.returncode == 2
    assert "needs [auth] master_key_file" in result.stderr
    result = _start("novalet-compute", tmp_path, {})
    assert result.returncode == 2
    assert "must sign its requests: set [auth] key_file" in result.stderr
    master = str(tmp_path / "master.key")
    auth.keys.init_master(master)
    auth.keys.write_host_key(master, "compute-2", str(tmp_path / "c2.key"))
    result = _start("novalet-compute", tmp_path,
                    {"key_file": tmp_path / "c2.key"})
    assert result.returncode == 2
    assert "is the key of host compute-2, but [DEFAULT] host is " \
           "'compute-1'" in result.stderr
    os.chmod(master, 0o644)
    result = _start("novalet-conductor", tmp_path, {"master_key_file": master})
    assert result.returncode == 2 and "chmod 600" in result.stderr


def test_a_hosts_broker_user_reaches_its_own_reply_queues_only(
        rabbit_vhost: Any) -> None:
    """What ``auth rabbitmq`` prints, run on a real broker for two hosts
    whose names are a prefix of one another: each may declare, consume and
    bind its own reply queues (as its processes name them,
    ``novalet.rpc.replies``), never the other's."""
    import shlex
    import shutil

    import amqp.exceptions
    import kombu

    from novalet.cmd import manage_auth
    from novalet.rpc import replies
    from tests import services

    suffix = os.urandom(3).hex()
    short, long = "rq%s-1" % suffix, "rq%s-10" % suffix
    novalet_conf.CONF.set_override("transport_url", rabbit_vhost.url)
    ctl = shutil.which("rabbitmqctl") or "rabbitmqctl"
    try:
        for host in (short, long):
            for line in manage_auth.rabbitmq_commands(novalet_conf.CONF, host,
                                                      "pw-" + host):
                argv = shlex.split(line)
                made = subprocess.run([ctl, *argv[1:]], capture_output=True,
                                      text=True, timeout=60)
                assert made.returncode == 0, (line, made.stderr)

        def attempt(user: str, queue: str, action: str) -> str:
            conn = kombu.Connection(
                hostname=services.RABBIT_HOST, port=5672, userid=user,
                password="pw-" + user, virtual_host=rabbit_vhost.name)
            try:
                channel = conn.channel()
                if action == "declare":
                    channel.queue_declare(queue, auto_delete=True)
                elif action == "consume":
                    channel.basic_consume(queue, callback=lambda m: None)
                else:  # bind, as oslo.messaging binds a reply queue
                    channel.exchange_declare(queue, "direct", auto_delete=True)
                    channel.queue_bind(queue, queue, routing_key=queue)
                return "done"
            except amqp.exceptions.AccessRefused:
                return "AccessRefused"
            finally:
                conn.release()

        def reply_queue(host: str) -> str:
            return replies.reply_queue_prefix(host, "novalet-compute") + "1"

        outcomes = {}
        for user, host in ((short, short), (long, long), (short, long),
                           (long, short)):
            for action in ("declare", "bind", "consume"):
                outcomes[(user, host, action)] = attempt(
                    user, reply_queue(host), action)
        assert outcomes == {
            (user, host, action): "done" if user == host else "AccessRefused"
            for (user, host, action) in outcomes}
    finally:
        novalet_conf.CONF.clear_override("transport_url")
        for host in (short, long):
            subprocess.run([ctl, "delete_user", host], capture_output=True,
                           timeout=60)
