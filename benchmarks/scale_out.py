"""One RabbitMQ node with classic queues and one conductor, against a
3-node cluster with quorum queues and two conductors: ``ComputeNode.save()``
calls/s and latency, both set-ups in one run.

Everything is private (the fault suite's helpers): a PostgreSQL cluster of
its own, a 1-node and a 3-node RabbitMQ cluster on their own ports, the
conductors as separate ``novalet-conductor`` processes (workers=1 each).
``--callers`` threads of this process call sequentially, each on its own
ComputeNode row, for ``--seconds`` per round; the set-ups take turns in
``--rounds`` rounds so a busy spell on the machine falls on both. Not a test;
exits 0 either way.

Signed as a deployment is: the conductors hold a master key (``[auth]
enforce`` on) and this process, the compute ``bench``, its own host key.

``--shared``: no private servers (the smoke test's mode, and for a machine
without RabbitMQ's and PostgreSQL's binaries): the machine's RabbitMQ, a
vhost of its own per set-up (the quorum queues on its one node), and a
database of its own on the machine's PostgreSQL.

    python benchmarks/scale_out.py [--callers 8] [--seconds 10] [--rounds 3]
        [--shared] [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
from oslo_concurrency import lockutils  # noqa: E402,F401  (registers lock_path)
import figures  # noqa: E402
from novalet import auth, context, indirection, objects, rpc  # noqa: E402
from novalet import conf as novalet_conf  # noqa: E402
from tests import processes, services  # noqa: E402
from tests.faults.cluster import RabbitCluster  # noqa: E402
from tests.faults.postgres import PrivatePostgres  # noqa: E402
# isort: on

CONF = novalet_conf.CONF


def rabbit_section(quorum: bool, host: str, binary: str) -> dict[str, Any]:
    section: dict[str, Any] = {"heartbeat_timeout_threshold": 4,
                               "heartbeat_rate": 2}
    if quorum:
        # Reply and fanout queues classic, as doc/source/admin/scale-out.rst recommends.
        section.update(rabbit_quorum_queue=True,
                       rabbit_transient_quorum_queue=False,
                       use_queue_manager=True, hostname=host,
                       processname=binary, kombu_failover_strategy="shuffle")
    return section


class SharedBroker:
    """The machine's RabbitMQ, a vhost of its own (as ``RabbitCluster`` is
    used here: ``start``, ``transport_url``, ``close``)."""

    def __init__(self) -> None:
        self.vhost: services.RabbitVhost | None = None

    def start(self) -> None:
        self.vhost = services.RabbitVhost()

    def transport_url(self) -> str:
        assert self.vhost is not None
        return self.vhost.url

    def close(self) -> None:
        if self.vhost is not None:
            self.vhost.delete()


class SetUp:
    def __init__(self, name: str, base: str, size: int, conductors: int,
                 db_url: str, master_key: str, *, quorum: bool | None = None,
                 shared: bool = False) -> None:
        self.name = name
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.quorum = size > 1 if quorum is None else quorum
        self.cluster: RabbitCluster | SharedBroker = (
            SharedBroker() if shared else
            RabbitCluster(os.path.join(self.dir, "rabbit"), size=size))
        self.size = size
        self.db_url = db_url
        self.master_key = master_key
        self.n_conductors = conductors
        self.conductors: list[processes.ServiceProcess] = []
        self.latencies: list[float] = []
        self.rounds: list[tuple[float, float]] = []  # (calls/s, p99 s) of each round
        self.calls = 0
        self.seconds = 0.0

    def start(self) -> None:
        self.cluster.start()
        for i in range(self.n_conductors):
            host = "%s-cond-%d" % (self.name, i)
            config = processes.write_config(
                os.path.join(self.dir, host + ".conf"), {
                    "DEFAULT": {"host": host,
                                "transport_url": self.cluster.transport_url()},
                    "database": {"connection": self.db_url},
                    "conductor": {"workers": 1},
                    "auth": {"master_key_file": self.master_key},
                    "oslo_messaging_rabbit": rabbit_section(
                        self.quorum, host, "novalet-conductor"),
                    "oslo_concurrency": {"lock_path": os.path.join(
                        self.dir, "lock")}})
            proc = processes.ServiceProcess(
                "novalet-conductor", config, os.path.join(self.dir, host + ".log"))
            self.conductors.append(proc)
        for proc in self.conductors:
            proc.wait_for_log("novalet-conductor started", 120)

    def use(self) -> None:
        """Point this process's RPC client at this set-up."""
        rpc.cleanup()
        CONF.set_override("transport_url", self.cluster.transport_url())
        for key, value in rabbit_section(self.quorum, "bench-" + self.name,
                                         "bench").items():
            CONF.set_override(key, value, "oslo_messaging_rabbit")
        if not self.quorum:
            for key in ("rabbit_quorum_queue", "rabbit_transient_quorum_queue",
                        "use_queue_manager"):
                CONF.set_override(key, False, "oslo_messaging_rabbit")
        CONF.set_override("lock_path", os.path.join(self.dir, "lock"),
                          "oslo_concurrency")
        indirection.configure(CONF)

    def close(self) -> None:
        for proc in self.conductors:
            proc.stop()
        self.cluster.close()


def run_round(setup: SetUp, nodes: list[Any], seconds: float) -> None:
    setup.use()
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def caller(node: Any) -> None:
        mine: list[float] = []
        value = 0
        while time.monotonic() < stop:
            value += 1
            node.current_workload = value
            t = time.perf_counter()
            node.save()
            mine.append(time.perf_counter() - t)
        with lock:
            setup.latencies.extend(mine)

    # Warm-up: connections, reply queue, prepared clients.
    for node in nodes:
        node.current_workload = 0
        node.save()
    started, before = time.monotonic(), len(setup.latencies)
    threads = [threading.Thread(target=caller, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    took = time.monotonic() - started
    setup.seconds += took
    setup.calls = len(setup.latencies)
    mine = sorted(setup.latencies[before:])
    setup.rounds.append((len(mine) / took, percentile(mine, 0.99)))


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--callers", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shared", action="store_true",
                        help="the machine's RabbitMQ (a vhost per set-up) and PostgreSQL "
                             "instead of private servers")
    figures.add_arguments(parser)
    args = parser.parse_args()
    json_path, png_path = figures.paths(args, "scale_out")

    novalet_conf.parse_args([], default_config_files=[])
    objects.register_all()
    base = tempfile.mkdtemp(prefix="novalet-scale-")
    pg = None if args.shared else PrivatePostgres()
    database = None
    setups: list[SetUp] = []
    try:
        if pg is not None:
            pg.initdb()
            pg.start()
            db_url = pg.create_database("novalet")
        else:
            database = services.provision_database("postgresql", base)
            db_url = database.url
        sync = processes.write_config(os.path.join(base, "manage.conf"), {
            "database": {"connection": db_url}})
        result = processes.run_command("novalet-manage", "--config-file", sync,
                                       "db", "sync")
        if result.returncode != 0:
            print(result.stderr)
            return 0
        # The conductors' master key; this process is the compute "bench",
        # holding its own host key only.
        master_key, host_key = (os.path.join(base, name) for name in ("master.key",
                                                                      "bench.key"))
        auth.keys.init_master(master_key)
        auth.keys.write_host_key(master_key, "bench", host_key)
        CONF.set_override("host", "bench")
        CONF.set_override("key_file", host_key, "auth")
        CONF.set_override("connection", db_url, "database")
        CONF.set_override("indirection", "rpc", "objects")
        CONF.set_override("rpc_response_timeout", 30)
        if args.shared:
            setups = [SetUp("classic-shared", base, 1, 1, db_url, master_key, shared=True),
                      SetUp("quorum-shared", base, 1, 2, db_url, master_key, quorum=True,
                            shared=True)]
        else:
            setups = [SetUp("classic-1-node", base, 1, 1, db_url, master_key),
                      SetUp("quorum-3-nodes", base, 3, 2, db_url, master_key)]
        for setup in setups:
            setup.start()
        ctxt = context.get_admin_context()
        setups[0].use()
        nodes = []
        for i in range(args.callers):
            node = objects.ComputeNode(
                ctxt, host="bench", hypervisor_hostname="bench-%d" % i,
                vcpus=1, memory_mb=1, local_gb=1, hypervisor_type="fake",
                hypervisor_version=1, cpu_info="{}")
            node.create()
            nodes.append(node)
        for _ in range(args.rounds):
            for setup in setups:
                run_round(setup, nodes, args.seconds)
        report(args, setups, json_path, png_path)
    finally:
        rpc.cleanup()
        for setup in setups:
            setup.close()
        if pg is not None:
            pg.close()
        if database is not None:
            database.drop()
        shutil.rmtree(base, ignore_errors=True)
        for name in glob.glob("/dev/shm/*quorum-*_qmanager"):
            os.remove(name)  # oslo.messaging's queue manager counters
    return 0


def report(args: argparse.Namespace, setups: list[SetUp], json_path: str,
           png_path: str) -> None:
    print("ComputeNode.save(), signed by the host bench, %d callers, %d x %.0f s per "
          "set-up (PostgreSQL %s, fsync on)" % (
              args.callers, args.rounds, args.seconds,
              "the machine's" if args.shared else "private"))
    print("| set-up | calls/s | p50 ms | p99 ms | ratio |")
    print("|---|---|---|---|---|")
    base_rate = None
    rows: list[dict[str, Any]] = []
    for setup in setups:
        lat = sorted(setup.latencies)
        rate = len(lat) / setup.seconds
        base_rate = base_rate or rate
        rows.append({"set_up": setup.name, "rabbitmq_nodes": setup.size,
                     "quorum": setup.quorum, "conductors": setup.n_conductors,
                     "calls": len(lat), "rate": rate,
                     "p50_ms": statistics.median(lat) * 1000,
                     "p99_ms": percentile(lat, 0.99) * 1000, "ratio": rate / base_rate,
                     "rounds": [{"rate": r, "p99_ms": p * 1000} for r, p in setup.rounds]})
        print("| %s, %d conductor(s) | %.0f | %.2f | %.2f | %.2f |" % (
            setup.name, setup.n_conductors, rate, rows[-1]["p50_ms"], rows[-1]["p99_ms"],
            rate / base_rate))
    figures.write_json(json_path, "scale_out", args, {"rows": rows})
    rounds = list(range(1, args.rounds + 1))
    figures.plot(png_path, "scale_out: ComputeNode.save(), %d callers, per round" % args.callers, [
        ("round", "calls/s", [(r["set_up"], rounds, [x["rate"] for x in r["rounds"]])
                              for r in rows], None),
        ("round", "p99 ms", [(r["set_up"], rounds, [x["p99_ms"] for x in r["rounds"]])
                             for r in rows], None)])


if __name__ == "__main__":
    sys.exit(main())
