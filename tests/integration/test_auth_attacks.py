"""Host B attacks host A through the real path: a novalet-conductor (the
master key), host A's novalet-compute (its own key and broker user), and host
B as a separate process with its own key and broker user (``auth_attacker``),
on RabbitMQ, with PostgreSQL and with MariaDB. The broker users are made by running what
``novalet-manage auth rabbitmq HOST`` prints; the host keys by
``novalet-manage auth host-key``. Every attack is refused (by its typed error,
or by the broker), no row of A's changes, A keeps working and the conductor
keeps serving without a traceback."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, objects
from novalet.compute import rpcapi as compute_rpcapi
from tests import processes, services
from tests.conftest import service_unavailable
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUFFIX = os.urandom(3).hex()
HOST_A, HOST_B = "auth-a-" + SUFFIX, "auth-b-" + SUFFIX
#: Signed casts host B floods the conductor with, twice its replay cache.
FLOOD = 2000

#: Processes of a host hold its key only, never the master key the test
#: session gives everything it starts (tests/conftest.py).
HOST_ENV = {k: v for k, v in os.environ.items()
            if k != "OS_AUTH__MASTER_KEY_FILE"}


def _ctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([shutil.which("rabbitmqctl") or "rabbitmqctl", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module", params=["postgresql", "mysql"])
def deployment(request: Any, tmp_path_factory: Any) -> Any:
    """The deployment, on PostgreSQL and on MariaDB (the scope of every
    write is decided by the database, in the statement)."""
    tmp = tmp_path_factory.mktemp("auth")
    try:
        vhost = services.RabbitVhost()
        database = services.provision_database(request.param, str(tmp))
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    common = {"report_interval": 1, "service_down_time": 10,
              "startup_timeout": 10,
              "periodic_fuzzy_delay": 0, "update_resources_interval": 2,
              "rpc_response_timeout": 15, "state_path": str(tmp / "state")}
    topics = {"conductor": {"topic": "conductor-" + SUFFIX, "workers": 1},
              "compute": {"topic": "compute-" + SUFFIX}}
    vhost_path = vhost.name

    def config(name: str, transport: str, **sections: Any) -> str:
        return processes.write_config(str(tmp / (name + ".conf")), {
            "DEFAULT": dict(common, host=name, transport_url=transport),
            "database": {"connection": database.url}, **topics, **sections})

    admin_conf = config("admin", vhost.url)
    users, procs = [], []
    try:
        synced = processes.run_command("novalet-manage", "--config-file",
                                       admin_conf, "db", "sync")
        assert synced.returncode == 0, synced.stderr
        for host in (HOST_A, HOST_B):
            made = processes.run_command(
                "novalet-manage", "--config-file", admin_conf, "auth",
                "host-key", host, "--output", str(tmp / (host + ".key")))
            assert made.returncode == 0, made.stderr
            printed = processes.run_command(
                "novalet-manage", "--config-file", admin_conf, "auth",
                "rabbitmq", host, "--password", "pw-" + host)
            assert printed.returncode == 0, printed.stderr
            users.append(host)
            for line in printed.stdout.splitlines():
                if line.startswith("#"):
                    continue
                argv = shlex.split(line)
                assert argv[0] == "rabbitmqctl", line
                result = _ctl(*argv[1:])
                assert result.returncode == 0, (line, result.stderr)

        def host_url(host: str) -> str:
            return "rabbit://%s:pw-%s@%s:5672/%s" % (
                host, host, services.RABBIT_HOST, vhost_path)

        conductor = processes.ServiceProcess(
            "novalet-conductor", config("cond-" + SUFFIX, vhost.url,
                                        auth={"replay_cache_size": FLOOD // 2}),
            str(tmp / "conductor.log"))
        procs.append(conductor)
        conductor.wait_for_log("novalet-conductor started", timeout=90)
        compute = processes.ServiceProcess(
            "novalet-compute", config(HOST_A, host_url(HOST_A), fake={"nodes": 1},
                                      auth={"key_file": tmp / (HOST_A + ".key")}),
            str(tmp / "compute-a.log"), env=HOST_ENV)
        procs.append(compute)
        compute.wait_for_log("novalet-compute started", timeout=90)
        attacker_conf = config(HOST_B, host_url(HOST_B),
                               auth={"key_file": tmp / (HOST_B + ".key")})
        yield {"tmp": tmp, "db": database, "vhost": vhost, "topics": topics,
               "conductor": conductor, "compute": compute,
               "attacker_conf": attacker_conf}
    finally:
        for proc in reversed(procs):
            proc.stop()
        for user in users:
            _ctl("delete_user", user)
        vhost.delete()
        database.drop()


def _row(db: Any, sql: str, **params: Any) -> Any:
    rows = db.query(sql, **params)
    return rows[0] if rows else None


def _reply_queues(deployment: Any, host: str) -> list[str]:
    """The reply queues of ``host``'s processes on the broker."""
    listed = _ctl("list_queues", "-q", "--no-table-headers", "-p",
                  deployment["vhost"].name, "name")
    assert listed.returncode == 0, listed.stderr
    return sorted(name for name in listed.stdout.split()
                  if name.startswith("reply_%s:" % host))


def _as_admin(conf: Any, deployment: Any) -> Any:
    """This process as the admin of the deployment (the session's master
    key), over RabbitMQ to its conductor."""
    conf("transport_url", deployment["vhost"].url)
    conf("topic", deployment["topics"]["conductor"]["topic"], "conductor")
    conf("topic", deployment["topics"]["compute"]["topic"], "compute")
    conf("indirection", "rpc", "objects")
    from novalet import indirection

    indirection.configure(novalet_conf.CONF)
    return context.get_admin_context()


def test_host_b_attacks_host_a(deployment: Any, conf: Any) -> None:
    db = deployment["db"]
    ctxt = _as_admin(conf, deployment)
    # Host A works as before with its own key: its record, its node, its
    # heartbeats, and an instance an admin builds on it.
    service_a = wait_for(lambda: _row(
        db, "SELECT id, report_count, last_auth FROM services WHERE host = :h "
        "AND deleted = 0", h=HOST_A), 30, "host A's record")
    wait_for(lambda: _row(db, "SELECT report_count FROM services WHERE id = :i",
                          i=service_a.id).report_count >= 2, 30, "A's heartbeats")
    node_a = wait_for(lambda: _row(
        db, "SELECT id FROM compute_nodes WHERE host = :h AND deleted = 0",
        h=HOST_A), 30, "host A's node")
    instance = objects.Instance(ctxt, vcpus=1, memory_mb=128)
    instance.create()
    built = compute_rpcapi.ComputeAPI(novalet_conf.CONF).build_instance(
        ctxt, instance, HOST_A)
    assert (built.host, built.vm_state) == (HOST_A, "active")
    assert _row(db, "SELECT last_auth FROM services WHERE id = :i",
                i=service_a.id).last_auth == "host"

    # Migrations an admin started: A's instance to a third host, and one of
    # B's instances to A (in progress, and finished).
    node_a_name = _row(db, "SELECT hypervisor_hostname FROM compute_nodes "
                       "WHERE id = :i", i=node_a.id).hypervisor_hostname
    instance_b = objects.Instance(ctxt, vcpus=1, memory_mb=64, host=HOST_B,
                                  node="n1")
    instance_b.create()

    def migration(inst: Any, source: str, dest: str, status: str) -> Any:
        mig = objects.Migration(ctxt, instance_uuid=inst.uuid,
                                source_compute=source, dest_compute=dest,
                                source_node="n1", dest_node=node_a_name,
                                status=status, new_vcpus=1, new_memory_mb=64)
        mig.create()
        return mig

    migration_a = migration(instance, HOST_A, "auth-c-" + SUFFIX, "migrating")
    migration_ba = migration(instance_b, HOST_B, HOST_A, "migrating")
    migration_done = migration(instance_b, HOST_B, HOST_A, "error")
    reply_a = _reply_queues(deployment, HOST_A)
    assert reply_a, "host A's reply queue is named after it"
    world = {"host_a": HOST_A, "reply_a": reply_a[0],
             "service_a": service_a.id, "node_a": node_a.id,
             "instance_a": instance.uuid, "node_a_name": node_a_name,
             "instance_b": instance_b.uuid, "migration_a": migration_a.id,
             "migration_ba": migration_ba.id,
             "migration_done": migration_done.id, "flood": FLOOD}
    migrations_before = db.query("SELECT * FROM migrations ORDER BY id")
    instance_before = db.query("SELECT * FROM instances WHERE uuid = :u",
                               u=instance.uuid)
    world_file = deployment["tmp"] / "world.json"
    world_file.write_text(json.dumps(world))
    result = subprocess.run(
        [sys.executable, "-m", "tests.integration.auth_attacker",
         deployment["attacker_conf"], str(world_file)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, env=HOST_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])

    forbidden = ["save A's node", "save A's node as B's", "destroy A's node",
                 "destroy A's service", "create a node of A",
                 "create a node of A (case)", "create a node of A (look-alike)",
                 "heartbeat for A", "steal A's instance", "destroy A's instance",
                 "set A's last_seen_up", "context claiming admin",
                 "takeover: create a migration of A's instance to B",
                 "takeover: save A's instance",
                 "takeover: move A's instance to B",
                 "takeover: destroy A's instance",
                 "takeover: destroy A's migration",
                 "usage: create a migration onto A",
                 "usage: grow a migration onto A",
                 "usage: point a migration at A's other node",
                 "usage: revive a finished migration onto A",
                 "usage: destroy a migration onto A"]
    refused_signatures = [
        "unsigned", "replayed", "one byte changed", "signed for another method",
        "signed for another version", "signed for another server",
        "stale timestamp", "future timestamp", "signature not a dict",
        *["malformed: " + label for label in (
            "not base64", "oversized", "wrong type", "unknown key id",
            "claims host A", "claims admin", "claims host A in capitals",
            "claims host A with a space", "claims host A with a NUL",
            "claims a look-alike of A")]]
    expected = {
        "signs as": "host " + HOST_B,
        **dict.fromkeys(forbidden, "Forbidden"),
        **dict.fromkeys(refused_signatures, "SignatureRefused"),
        "create a node of A (whitespace)": "ObjectFieldInvalid",
        "create a node of A (NUL)": "MalformedRequest",
        "save a list holding A's node": "MethodNotRemotable",
        "A's node as an argument": "MalformedRequest",
        "signed, sent once": "done",
        "broker: publish to compute." + HOST_A: "AccessRefused",
        "broker: consume the conductor queue": "AccessRefused",
        "broker: bind its queue to the conductor topic": "AccessRefused",
        "broker: publish to the conductor": "done",
        "broker: consume A's queue": "AccessRefused",
        "broker: declare A's reply queue": "AccessRefused",
        "broker: consume A's reply queue": "AccessRefused",
        "broker: bind A's reply queue": "AccessRefused",
        "broker: declare a reply queue of A": "AccessRefused",
        "broker: declare its own reply queue": "done",
        # The broker lets it through (see novalet-manage auth rabbitmq);
        # host A refuses both (below).
        "broker: into A's queue by the default exchange": "done",
        "read after the attacks": "done",
        "flood of future-dated casts": "done",
    }
    assert outcomes == expected

    # A refused what came into its queue past the broker, and kept the
    # instance and its guest.
    deployment["compute"].wait_for_log(
        r"Refused a terminate_instance request to compute-\w+: unknown key",
        timeout=30)
    deployment["compute"].wait_for_log(
        r"Refused a terminate_instance request to compute-\w+: unsigned",
        timeout=30)
    # Nothing of A's changed; nothing was made for A.
    node = _row(db, "SELECT host, memory_mb_used, deleted FROM compute_nodes "
                "WHERE id = :i", i=node_a.id)
    assert (node.host, node.deleted) == (HOST_A, 0) and node.memory_mb_used < 999999
    service = _row(db, "SELECT host, deleted, last_seen_up FROM services "
                   "WHERE id = :i", i=service_a.id)
    assert (service.host, service.deleted) == (HOST_A, 0)
    assert service.last_seen_up.year < 2100
    inst = _row(db, "SELECT host, deleted FROM instances WHERE uuid = :u",
                u=instance.uuid)
    assert (inst.host, inst.deleted) == (HOST_A, 0)
    assert db.query("SELECT host FROM compute_nodes WHERE host <> :h",
                    h=HOST_A) == []
    # The migrations are as the admin made them, A's instance as it was
    # (the compute may only have run its periodic tasks meanwhile).
    assert db.query("SELECT * FROM migrations ORDER BY id") == migrations_before
    assert db.query("SELECT * FROM instances WHERE uuid = :u",
                    u=instance.uuid) == instance_before
    # A keeps beating; the conductor keeps serving, logged each refusal as a
    # warning naming the verified caller, and no traceback.
    count = _row(db, "SELECT report_count FROM services WHERE id = :i",
                 i=service_a.id).report_count
    wait_for(lambda: _row(db, "SELECT report_count FROM services WHERE id = :i",
                          i=service_a.id).report_count >= count + 2, 30,
             "A's heartbeats after the attacks")
    assert objects.Service.get_by_id(ctxt, service_a.id).host == HOST_A
    # B's flood filled the conductor's replay cache (B paid: its own older
    # casts refused) and refused nobody else: A's beats and the admin's
    # calls above were served meanwhile.
    deployment["conductor"].wait_for_log(
        "of host:%s \\(replay cache full\\)" % HOST_B, timeout=60)
    count = _row(db, "SELECT report_count FROM services WHERE id = :i",
                 i=service_a.id).report_count
    wait_for(lambda: _row(db, "SELECT report_count FROM services WHERE id = :i",
                          i=service_a.id).report_count >= count + 2, 30,
             "A's heartbeats after the flood")
    assert objects.Service.get_by_id(ctxt, service_a.id).host == HOST_A
    log = deployment["conductor"].log()
    assert "of host:%s (replay" % HOST_A not in log
    assert "of admin (replay" not in log
    assert "Refused: host %s may not update a compute node" % HOST_B in log
    assert "Refused a object_class_action_versions request" in log
    assert not deployment["conductor"].errors(), deployment["conductor"].errors()
    # A beats every second here (a 2 s call timeout): the one conductor
    # worker, busy with B's flood of 2,000 casts, has been seen on this
    # 2-core machine (PostgreSQL and MariaDB alike) to answer one of A's
    # beats after that timeout. Late, not refused: the beats after the flood
    # count (above), and no refusal of A is logged; anything else A logs is
    # a failure.
    errors = [line for line in deployment["compute"].errors()
              if "did not answer" not in line]
    assert not errors, errors


def test_forged_replies_to_host_a_are_refused(deployment: Any) -> None:
    """Someone with the broker's administrator rights (the vhost's guest
    user here) copies every request to the conductor and answers host A's
    first, straight into A's reply queue: its heartbeats are told their
    record is gone (plain, as release 3 replied), or get a reply sealed
    with another key. A refuses each reply (logged), registers nothing
    again, its row is unchanged; once the forger stops, it beats again."""
    import threading
    import time

    import kombu
    from oslo_messaging._drivers import common as wire

    db = deployment["db"]
    compute = deployment["compute"]
    errors_before = len(compute.errors())
    service_a = _row(db, "SELECT id, report_count FROM services WHERE host = "
                     ":h AND deleted = 0", h=HOST_A)
    before = db.query("SELECT id, host, topic, deleted, created_at FROM "
                      "services WHERE host = :h ORDER BY id", h=HOST_A)
    topic = deployment["topics"]["conductor"]["topic"]
    url = deployment["vhost"].url.replace("rabbit://", "amqp://", 1)
    forged: list[str] = []
    stop = threading.Event()

    def answer(request: dict[str, Any]) -> dict[str, Any]:
        if len(forged) % 2:  # sealed, with a key that is not A's
            from novalet.auth import signing

            result: Any = signing.seal_reply(
                b"k" * 32, request["_context_novalet_auth"]["n"],
                signing.REPLY_OK, json.dumps([service_a.id]))
        else:  # plain: "your record is missing", as a release 3 conductor
            result = [service_a.id]
        return {"result": result, "failure": None, "ending": True,
                "_msg_id": request["_msg_id"]}

    def forge() -> None:
        with kombu.Connection(url) as conn:
            exchange = kombu.Exchange(novalet_conf.CONF.control_exchange,
                                      type="topic", durable=False)
            copies = kombu.Queue("copies-" + SUFFIX, exchange=exchange,
                                 routing_key=topic, auto_delete=True)(
                                     conn.channel())
            copies.declare()
            while not stop.is_set():
                message = copies.get(no_ack=True)
                if message is None:
                    time.sleep(0.01)
                    continue
                request = json.loads(message.payload["oslo.message"])
                signed = request.get("_context_novalet_auth") or {}
                if (signed.get("p") != "host:" + HOST_A
                        or "_reply_q" not in request
                        or request.get("method") != "object_class_action_versions"
                        or request["args"].get("objmethod") != "report_heartbeats"):
                    continue
                conn.Producer().publish(wire.serialize_msg(answer(request)),
                                        exchange="",
                                        routing_key=request["_reply_q"])
                forged.append(request["_reply_q"])

    # The forger answers first: the conductor is frozen meanwhile (a real
    # forger has to win the race; on a loaded machine the conductor often
    # would, and A would see no forged reply at all).
    conductor = deployment["conductor"]
    thread = threading.Thread(target=forge, daemon=True)
    conductor.signal(signal.SIGSTOP)
    try:
        thread.start()
        wait_for(lambda: len(forged) >= 4, 60, "forged heartbeat replies")
        compute.wait_for_log("Refused the reply to %s.object_class_action_versions: "
                             "not authenticated" % topic, timeout=30)
        compute.wait_for_log("Refused the reply to %s.object_class_action_versions: "
                             "bad MAC" % topic, timeout=30)
    finally:
        stop.set()
        thread.join(10)
        conductor.signal(signal.SIGCONT)
    assert all(q.startswith("reply_%s:novalet-compute:" % HOST_A) for q in forged)
    # A believed none of it: its record is the one it had, never made again.
    assert "registering it again" not in compute.log()
    assert db.query("SELECT id, host, topic, deleted, created_at FROM "
                    "services WHERE host = :h ORDER BY id", h=HOST_A) == before
    count = _row(db, "SELECT report_count FROM services WHERE id = :i",
                 i=service_a.id).report_count
    wait_for(lambda: _row(db, "SELECT report_count FROM services WHERE id = :i",
                          i=service_a.id).report_count >= count + 2, 90,
             "A's heartbeats after the forger stopped")
    # What A logged at ERROR is the heartbeats the forger spoiled, nothing
    # else (no traceback).
    errors = compute.errors()[errors_before:]
    assert all("Refused the reply" in line for line in errors), errors
