"""Object RPC overhead: novalet's conductor path against raw oslo.messaging.

One run on the real services (RabbitMQ, PostgreSQL): a private vhost and
database, ``novalet-manage db sync``, one ``novalet-conductor`` (workers=1)
and, for the baseline, an echo server in a separate process on the same
vhost (client process <-> broker <-> server process in every case). One
caller, sequential calls, after a warm-up; the cases are interleaved in
rounds so that drift on a shared machine hits them alike.

    python benchmarks/object_rpc.py [--calls N] [--seconds S] [--rounds R]
                                    [--py-spy DIR]

Prints calls/s, p50 and p99 per case, the ratio to the raw baseline and
PASS/MISS against the targets; exits 0 either way (it is a measurement).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from importlib import metadata
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402
# isort: on

NO_DB_CALL = ("ConductorAPI.object_backport_versions(ComputeNode) - no remotable "
              "method without DB work exists; this endpoint deserializes the "
              "object and serializes it back, like object_action without the call")
TARGETS = {"no-DB": 0.85, "save()": 0.6}
#: Explicit, so both processes agree whatever their control_exchange default.
ECHO_EXCHANGE = "novalet-bench"


# -- the baseline's server: plain oslo.messaging, no novalet serializer --------

class Echo:
    target = messaging.Target(version="1.0")

    def echo(self, ctxt: dict[str, Any], payload: Any) -> Any:
        return payload


def run_echo_server(url: str, topic: str) -> int:
    cfg.CONF([], project="novalet-bench-echo", default_config_files=[])
    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    server = messaging.get_rpc_server(
        transport, messaging.Target(exchange=ECHO_EXCHANGE, topic=topic, server="echo"), [Echo()])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server.start()
    print("echo server ready", flush=True)
    stop.wait()
    server.stop()
    server.wait()
    transport.cleanup()
    return 0


# -- measuring ---------------------------------------------------------------

class CPUProbe:
    """CPU seconds (user+system, all threads) used by groups of processes."""

    TICK = os.sysconf("SC_CLK_TCK")

    def __init__(self) -> None:
        self.groups: dict[str, list[int]] = {}

    @staticmethod
    def _stat(pid: int) -> list[str]:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()

    @staticmethod
    def named(comm: str) -> list[int]:
        """Processes whose command name is ``comm``."""
        found = []
        for entry in os.listdir("/proc"):
            with contextlib.suppress(OSError):
                if entry.isdigit() and open("/proc/%s/comm" % entry).read().strip() == comm:
                    found.append(int(entry))
        return found

    @classmethod
    def tree(cls, root: int) -> list[int]:
        """``root`` and its descendants."""
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                with contextlib.suppress(OSError):
                    parents[int(entry)] = int(cls._stat(int(entry))[1])
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(p for p, pp in parents.items() if pp == pid)
        return found

    def snapshot(self) -> dict[str, float]:
        result = {}
        for name, pids in self.groups.items():
            total = 0
            for pid in pids:
                with contextlib.suppress(OSError):
                    fields = self._stat(pid)
                    total += int(fields[11]) + int(fields[12])
            result[name] = total / self.TICK
        return result


class Case:
    """One kind of call; collects latencies, per-round rates, CPU use."""

    def __init__(self, name: str, call: Callable[[], Any], probe: CPUProbe) -> None:
        self.name = name
        self.call = call
        self.probe = probe
        self.latencies: list[float] = []
        self.elapsed = 0.0
        self.round_rates: list[float] = []
        self.cpu: dict[str, float] = {}

    def run(self, calls: int, seconds: float) -> None:
        latencies: list[float] = []
        cpu_before = self.probe.snapshot()
        start = now = time.perf_counter()
        deadline = start + seconds
        while len(latencies) < calls and now < deadline:
            t0 = time.perf_counter()
            self.call()
            now = time.perf_counter()
            latencies.append(now - t0)
        self.elapsed += now - start
        self.latencies.extend(latencies)
        self.round_rates.append(len(latencies) / (now - start))
        for name, used in self.probe.snapshot().items():
            self.cpu[name] = self.cpu.get(name, 0.0) + used - cpu_before[name]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def report(cases: list[Case], baseline: Case) -> None:
    print("%-8s %7s %9s %8s %8s %7s  %s" % ("case", "calls", "calls/s", "p50 ms",
                                            "p99 ms", "ratio", "per round calls/s"))
    for case in cases:
        ratio = case.rate / baseline.rate
        target = TARGETS.get(case.name)
        verdict = "" if target is None else "  %s (target >= %.2fx)" % (
            "PASS" if ratio >= target else "MISS", target)
        print("%-8s %7d %9.0f %8.2f %8.2f %6.2fx  %s%s" % (
            case.name, len(case.latencies), case.rate, case.percentile(0.5),
            case.percentile(0.99), ratio,
            " ".join("%.0f" % r for r in case.round_rates), verdict))
    print("CPU ms per call (all threads; the idle side's own use included):")
    for case in cases:
        print("  %-8s %s  total %.2f" % (case.name, "  ".join(
            "%s %.2f" % (name, used * 1000 / len(case.latencies))
            for name, used in case.cpu.items()),
            sum(case.cpu.values()) * 1000 / len(case.latencies)))


def environment() -> str:
    def v(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "?"
    return ("env: %d CPUs, load %s, Python %s, oslo.messaging %s, "
            "oslo.versionedobjects %s, SQLAlchemy %s, kombu %s" % (
                os.cpu_count() or 0, "/".join("%.2f" % x for x in os.getloadavg()),
                platform.python_version(), v("oslo.messaging"),
                v("oslo.versionedobjects"), v("SQLAlchemy"), v("kombu")))


# -- the run -----------------------------------------------------------------

def start_echo_server(url: str, topic: str, stack: contextlib.ExitStack) -> int:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--echo-server", url, topic],
        stdout=subprocess.PIPE, text=True, start_new_session=True)

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        assert proc.stdout is not None
        proc.stdout.close()

    stack.callback(stop)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "ready" not in line:
        raise RuntimeError("echo server did not start (exit %s)" % proc.poll())
    return proc.pid


def start_py_spy(pid: int, out: str, stack: contextlib.ExitStack) -> None:
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--gil",
         "--format", "raw", "--rate", "250", "--output", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop() -> None:
        proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    stack.callback(stop)


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:
    from novalet import conf as novalet_conf
    from novalet import context, indirection, objects, rpc
    from novalet.conductor import rpcapi
    from tests import processes, services

    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="novalet-bench-"))
    database = services.provision_database("postgresql", tmp)
    stack.callback(database.drop)
    vhost = services.RabbitVhost()
    stack.callback(vhost.delete)
    topic = "conductor-bench-%s" % os.urandom(4).hex()
    config = processes.write_config(os.path.join(tmp, "novalet.conf"), {
        "DEFAULT": {"transport_url": vhost.url, "host": "bench-conductor",
                    "rpc_response_timeout": 30},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": topic},
    })
    result = processes.run_command("novalet-manage", "--config-file", config,
                                   "db", "sync")
    if result.returncode != 0:
        raise RuntimeError("db sync failed: %s" % result.stderr)
    conductor = processes.ServiceProcess("novalet-conductor", config,
                                         os.path.join(tmp, "conductor.log"))
    stack.callback(conductor.stop)
    conductor.wait_for_log(r"novalet-conductor started on bench-conductor")
    echo_topic = "echo-bench-%s" % os.urandom(4).hex()
    echo_pid = start_echo_server(vhost.url, echo_topic, stack)

    # This process: a compute-like caller, objects go to the conductor.
    novalet_conf.parse_args(["--config-file", config], default_config_files=[])
    novalet_conf.CONF.set_override("indirection", "rpc", "objects")
    objects.register_all()
    indirection.configure(novalet_conf.CONF)
    stack.callback(rpc.cleanup)
    stack.callback(indirection.reset)
    ctxt = context.get_admin_context()
    node = objects.ComputeNode(
        ctxt, host="bench-host", hypervisor_hostname="bench-node", vcpus=16,
        memory_mb=65536, local_gb=1000, hypervisor_type="fake",
        hypervisor_version=1, cpu_info="{}", host_ip="192.0.2.1",
        stats={"num_instances": "0"})
    node.create()  # through the conductor

    primitive = rpc.RequestContextSerializer().serialize_entity(ctxt, node)
    payload_bytes = len(json.dumps(primitive))
    raw_transport = messaging.get_rpc_transport(cfg.CONF, url=vhost.url)
    stack.callback(raw_transport.cleanup)
    raw_client = messaging.get_rpc_client(
        raw_transport, messaging.Target(exchange=ECHO_EXCHANGE, topic=echo_topic,
                                      version="1.0"), timeout=30)
    conductor_api = rpcapi.ConductorAPI(novalet_conf.CONF)
    manifest = {"ComputeNode": node.VERSION}
    counter = itertools.count(1)

    def save() -> None:
        node.memory_mb_used = next(counter)
        node.save()

    probe = CPUProbe()
    all_cases = [
        Case("raw", lambda: raw_client.call({}, "echo", payload=primitive), probe),
        Case("no-DB", lambda: conductor_api.object_backport_versions(
            ctxt, node, manifest), probe),
        Case("save()", save, probe),
    ]
    cases = [c for c in all_cases if c.name == "raw" or c.name in args.cases]
    print(environment())
    print("payload: ComputeNode primitive, %d bytes JSON (raw: the same dict, "
          "empty context; novalet context: %d bytes)" % (
              payload_bytes, len(json.dumps(ctxt.to_dict()))))
    print("no-DB call: %s" % NO_DB_CALL)
    print("save(): ComputeNode.save() of memory_mb_used via [objects] "
          "indirection=rpc -> novalet-conductor -> PostgreSQL")
    for case in cases:
        case.run(args.warmup, 60)
        case.latencies.clear()
        case.elapsed = 0.0
        case.round_rates.clear()
        case.cpu.clear()
    probe.groups = {
        "client": [os.getpid()], "echo": CPUProbe.tree(echo_pid),
        "conductor": CPUProbe.tree(conductor.proc.pid),
        "rabbitmq": CPUProbe.named("beam.smp"),
        "postgres": [row[0] for row in database.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = :n "
            "AND pid <> pg_backend_pid()", n=database.name)]}
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)
        start_py_spy(conductor.proc.pid, os.path.join(args.py_spy, "conductor.txt"),
                     stack)
        start_py_spy(os.getpid(), os.path.join(args.py_spy, "client.txt"), stack)
        time.sleep(1)
    per_round = max(1, args.calls // args.rounds)
    for _ in range(args.rounds):
        for case in cases:
            case.run(per_round, args.seconds / args.rounds)
    print("%d round(s), sequential calls, one caller, after %d warm-up calls each"
          % (args.rounds, args.warmup))
    report(cases, cases[0])
    stored = database.query("SELECT memory_mb_used FROM compute_nodes WHERE id = :i",
                            i=node.id)
    if stored[0][0] != node.memory_mb_used:
        print("WARNING: database has memory_mb_used=%s, object %s"
              % (stored[0][0], node.memory_mb_used))
    if conductor.errors():
        print("conductor logged errors:\n" + "\n".join(conductor.errors()[:20]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000,
                        help="calls per case, over all rounds (default 3000)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time cap per case, over all rounds (default 60)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of all cases (default 3)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up calls per case (default 200)")
    parser.add_argument("--cases", type=lambda v: v.split(","), default=list(TARGETS),
                        help="novalet cases to run, of %s (raw always runs)"
                        % ",".join(TARGETS))
    parser.add_argument("--py-spy", metavar="DIR",
                        help="record py-spy raw profiles of the conductor and "
                             "this process during the measured rounds into DIR")
    parser.add_argument("--echo-server", nargs=2, metavar=("URL", "TOPIC"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        return run_echo_server(*args.echo_server)
    # SIGTERM cleans up like Ctrl-C does.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        try:
            run(args, stack)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
