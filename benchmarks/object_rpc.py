"""Object RPC overhead: novalet's conductor path against raw oslo.messaging.

A private PostgreSQL database and RabbitMQ vhost, one ``novalet-conductor``
(workers=1) and, for the baseline, an echo server in its own process (client
<-> broker <-> server process in every case). One caller, sequential calls after
a warm-up, cases interleaved in rounds; also prints each process's CPU time per
call (/proc), steadier than rates on a shared machine. Exits 0 either way.

    python benchmarks/object_rpc.py [--calls N] [--seconds S] [--rounds R]
        [--cases no-DB,save()] [--py-spy DIR] [--metrics]

Signed requests: the conductor holds a master key with ``[auth] enforce =
false``; the novalet cases run unsigned and, interleaved with them, signed
with a host's key (``no-DB+s``, ``save()+s``: the conductor verifies each
request and scopes the save to the host's rows), as a compute sends them.

``--metrics``: a second ``novalet-conductor`` with ``[metrics]`` on (its
workers' values in prometheus_client's multiprocess files, the endpoint
served by its parent and scraped once a second during the run, as Prometheus
would), and the novalet cases again against it (``no-DB+m``, ``save()+m``),
interleaved with the ones against the conductor without metrics.
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

NO_DB_CALL = ("BenchProbe.touch(n): a remotable method that sets one field and does "
              "no DB work, on an object with ComputeNode's fields and values "
              "(registered by this script in itself and in the conductor it starts)")
TARGETS = {"no-DB": 0.85, "save()": 0.6}
ECHO_EXCHANGE = "novalet-bench"  # explicit: the processes' defaults differ
TICK = os.sysconf("SC_CLK_TCK")


# -- the baseline's server: plain oslo.messaging, no novalet serializer ------

class Echo:
    target = messaging.Target(version="1.0")

    def echo(self, ctxt: dict[str, Any], payload: Any) -> Any:
        return payload

    def echo_update(self, ctxt: dict[str, Any], payload: Any, node_id: int,
                    value: int) -> None:
        """The database write of ``save()`` alone: novalet.db's
        ``compute_node_update`` (oslo.db writer transaction, one UPDATE)."""
        from novalet import context
        from novalet.db import compute_nodes as db_api
        db_api.compute_node_update(context.get_admin_context(), node_id,
                                   {"memory_mb_used": value})


def run_echo_server(url: str, topic: str, db_url: str) -> int:
    from novalet import conf as novalet_conf
    cfg.CONF([], project="novalet-bench-echo", default_config_files=[])
    novalet_conf.CONF.set_override("connection", db_url, "database")
    transport = messaging.get_rpc_transport(cfg.CONF, url=url)
    server = messaging.get_rpc_server(
        transport, messaging.Target(exchange=ECHO_EXCHANGE, topic=topic, server="echo"),
        [Echo()])
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from novalet import service
    from novalet.db import compute_nodes  # noqa: F401  (imported before the freeze)
    service.freeze_heap()  # as novalet-conductor does before it serves (fair baseline)
    server.start()
    print("echo server ready", flush=True)
    stop.wait()
    server.stop()
    server.wait()
    transport.cleanup()
    return 0


# -- the no-DB case's object --------------------------------------------------

def register_probe() -> Any:
    """Register ``BenchProbe``: ComputeNode's fields, one remotable method
    that touches no database. Called in this process and in the conductor."""
    from novalet import objects
    from novalet.objects import base

    objects.register_all()

    @base.NovaletObjectRegistry.register
    class BenchProbe(base.NovaletObject):
        VERSION = "1.0"
        fields = dict(objects.ComputeNode.fields)

        @base.remotable
        def touch(self, memory_mb_used: int) -> None:
            """Set one field; the conductor sends back just that change."""
            self.memory_mb_used = memory_mb_used

    @base.NovaletObjectRegistry.register
    class BenchProbeSmall(BenchProbe):
        """The same method on a one-field object: the fixed cost of a
        remotable call, apart from the object's size."""
        fields = {"memory_mb_used": objects.ComputeNode.fields["memory_mb_used"]}

    BenchProbe.small = BenchProbeSmall
    return BenchProbe


def run_conductor(argv: list[str]) -> int:
    """``novalet-conductor`` with ``BenchProbe`` registered."""
    from novalet.cmd import conductor

    register_probe()
    return conductor.main(argv)


# -- CPU accounting from /proc -------------------------------------------------

def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime..."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    parents = {}
    for pid in (int(entry) for entry in os.listdir("/proc") if entry.isdigit()):
        with contextlib.suppress(OSError):
            parents[pid] = int(_stat(pid)[1])
    found, todo = [], [root]
    while todo:
        found.append(todo.pop())
        todo.extend(pid for pid, ppid in parents.items() if ppid == found[-1])
    return found


def cpu_seconds(groups: dict[str, list[int]]) -> dict[str, float]:
    """User+system CPU seconds of each group (all threads)."""
    result = {}
    for name, pids in groups.items():
        ticks = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = _stat(pid)
                ticks += int(fields[11]) + int(fields[12])
        result[name] = ticks / TICK
    return result


# -- measuring -----------------------------------------------------------------

class Case:
    """One kind of call: latencies, per-round rates, CPU use per process group."""

    def __init__(self, name: str, call: Callable[[], Any]) -> None:
        self.name = name
        self.call = call
        self.reset()

    def reset(self) -> None:
        self.latencies: list[float] = []
        self.elapsed = 0.0
        self.round_rates: list[float] = []
        self.cpu: dict[str, float] = {}

    def run(self, calls: int, seconds: float, groups: dict[str, list[int]]) -> None:
        latencies: list[float] = []
        cpu_before = cpu_seconds(groups)
        start = now = time.perf_counter()
        while len(latencies) < calls and now < start + seconds:
            t0 = time.perf_counter()
            self.call()
            now = time.perf_counter()
            latencies.append(now - t0)
        self.elapsed += now - start
        self.latencies.extend(latencies)
        self.round_rates.append(len(latencies) / (now - start))
        for name, used in cpu_seconds(groups).items():
            self.cpu[name] = self.cpu.get(name, 0.0) + used - cpu_before[name]

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000


def report(cases: list[Case]) -> None:
    baseline = cases[0]
    print("%-7s %6s %8s %7s %7s %6s  %s" % (
        "case", "calls", "calls/s", "p50 ms", "p99 ms", "ratio", "round calls/s"))
    for case in cases:
        ratio = case.rate / baseline.rate
        target = TARGETS.get(case.name)
        verdict = "" if target is None else "  %s (target >= %.2fx)" % (
            "PASS" if ratio >= target else "MISS", target)
        print("%-7s %6d %8.0f %7.2f %7.2f %5.2fx  %-16s%s" % (
            case.name, len(case.latencies), case.rate, case.percentile_ms(0.5),
            case.percentile_ms(0.99), ratio,
            "%.0f-%.0f" % (min(case.round_rates), max(case.round_rates)), verdict))
    print("CPU ms per call, by process (an idle process's own use included):")
    for case in cases:
        per_call = {k: v * 1000 / len(case.latencies) for k, v in case.cpu.items()}
        print("  %-7s %s  total %.2f" % (case.name, "  ".join(
            "%s %.2f" % item for item in per_call.items()), sum(per_call.values())))


def environment() -> str:
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return "env: %d CPUs, load %s, Python %s, %s, novalet %s" % (
        os.cpu_count() or 0, "/".join("%.2f" % x for x in os.getloadavg()),
        platform.python_version(), ", ".join("%s %s" % (dist, metadata.version(dist)) for dist in (
            "oslo.messaging", "oslo.versionedobjects", "SQLAlchemy", "kombu")), git or "?")


# -- helper processes ------------------------------------------------------------

def _stop_on_exit(proc: subprocess.Popen[Any], stack: contextlib.ExitStack,
                  signum: int = signal.SIGTERM) -> None:
    def stop() -> None:
        if proc.poll() is None:
            proc.send_signal(signum)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if proc.stdout is not None:
            proc.stdout.close()
    stack.callback(stop)


def start_echo_server(url: str, topic: str, db_url: str, stack: contextlib.ExitStack) -> int:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--echo-server", url, topic, db_url],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    _stop_on_exit(proc, stack)
    assert proc.stdout is not None
    if "ready" not in proc.stdout.readline():
        raise RuntimeError("echo server did not start (exit %s)" % proc.poll())
    return proc.pid


def start_scraper(url: str, stack: contextlib.ExitStack) -> None:
    """Scrape ``url`` once a second while the run lasts (as Prometheus would)."""
    import urllib.request

    stop = threading.Event()

    def scrape() -> None:
        while not stop.wait(1.0):
            with contextlib.suppress(OSError):
                urllib.request.urlopen(url, timeout=5).read()

    thread = threading.Thread(target=scrape, daemon=True)
    thread.start()
    stack.callback(thread.join, 10)
    stack.callback(stop.set)


def start_py_spy(pid: int, out: str, stack: contextlib.ExitStack) -> None:
    """Sample ``pid`` while it holds the GIL (raw stacks into ``out``)."""
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    proc = subprocess.Popen(
        [spy, "record", "--pid", str(pid), "--nonblocking", "--gil",
         "--format", "raw", "--rate", "250", "--output", out],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _stop_on_exit(proc, stack, signal.SIGINT)  # py-spy writes its file on SIGINT


# -- the run ---------------------------------------------------------------------

def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> None:

    from novalet import auth, context, indirection, objects, rpc
    from novalet import conf as novalet_conf
    from tests import processes, services

    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="novalet-bench-"))
    master_key = os.path.join(tmp, "master.key")
    auth.keys.init_master(master_key)
    host_key = os.path.join(tmp, "bench-host.key")
    auth.keys.write_host_key(master_key, "bench-host", host_key)
    database = services.provision_database("postgresql", tmp)
    stack.callback(database.drop)
    vhost = services.RabbitVhost()
    stack.callback(vhost.delete)
    config = processes.write_config(os.path.join(tmp, "novalet.conf"), {
        "DEFAULT": {"transport_url": vhost.url, "host": "bench-conductor",
                    "rpc_response_timeout": 30},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": "conductor-bench-%s" % os.urandom(4).hex()},
        "auth": {"master_key_file": master_key, "enforce": "false"},
    })
    result = processes.run_command("novalet-manage", "--config-file", config, "db", "sync")
    if result.returncode != 0:
        raise RuntimeError("db sync failed: %s" % result.stderr)
    launcher = os.path.join(tmp, "novalet-conductor")  # the real one, plus BenchProbe
    with open(launcher, "w") as f:
        f.write("#!%s\nimport sys\nsys.path[:0] = [%r, %r]\nimport object_rpc\n"
                "sys.exit(object_rpc.run_conductor(sys.argv[1:]))\n" % (
                    sys.executable, ROOT, os.path.dirname(os.path.abspath(__file__))))
    os.chmod(launcher, 0o755)
    conductor = processes.ServiceProcess("novalet-conductor", config,
                                         os.path.join(tmp, "conductor.log"), bin_dir=tmp)
    stack.callback(conductor.stop)
    conductor.wait_for_log(r"novalet-conductor started on bench-conductor")
    metered_topic = None
    if args.metrics:
        metered_topic = "conductor-bench-m-%s" % os.urandom(4).hex()
        metered = processes.ServiceProcess(
            "novalet-conductor", processes.write_config(
                os.path.join(tmp, "metered.conf"), {
                    "DEFAULT": {"transport_url": vhost.url, "host": "bench-conductor-m",
                                "rpc_response_timeout": 30},
                    "database": {"connection": database.url},
                    "conductor": {"workers": 1, "topic": metered_topic},
                    "auth": {"master_key_file": master_key, "enforce": "false"},
                    "metrics": {"bind_port": 0}}),
            os.path.join(tmp, "metered.log"), bin_dir=tmp)
        stack.callback(metered.stop)
        metrics_url = metered.wait_for_log(r"Metrics on (http://\S+)/metrics").group(1)
        metered.wait_for_log(r"novalet-conductor started on bench-conductor-m")
        start_scraper(metrics_url + "/metrics", stack)
    echo_topic = "echo-bench-%s" % os.urandom(4).hex()
    echo_pid = start_echo_server(vhost.url, echo_topic, database.url, stack)

    # This process plays the compute: its objects go to the conductor.
    novalet_conf.parse_args(["--config-file", config], default_config_files=[])
    novalet_conf.CONF.set_override("indirection", "rpc", "objects")
    probe_class = register_probe()
    indirection.configure(novalet_conf.CONF)
    stack.callback(rpc.cleanup)
    stack.callback(indirection.reset)
    from novalet.objects import base as objects_base

    plain_api = objects_base.get_indirection_api()
    metered_api = None
    if metered_topic is not None:
        novalet_conf.CONF.set_override("topic", metered_topic, "conductor")
        metered_api = indirection.load("rpc", novalet_conf.CONF)
        novalet_conf.CONF.clear_override("topic", "conductor")

    # This process signs as the host bench-host (its key, as a compute) or
    # not at all; novalet.rpc asks novalet.auth.signer() at every call.
    host_signer = auth.signing.Signer(auth.keys.KeyRing.from_files(
        None, host_key, novalet_conf.CONF.conductor.topic))

    def through(api: Any, call: Callable[[], Any],
                signer: Any = None) -> Callable[[], Any]:
        """``call`` with the objects' calls going through ``api``, signed
        by ``signer`` (None: unsigned)."""
        def run_through() -> Any:
            objects_base.set_indirection_api(api)
            auth._signer = signer
            return call()
        return run_through
    ctxt = context.get_admin_context()
    node = objects.ComputeNode(
        ctxt, host="bench-host", hypervisor_hostname="bench-node", vcpus=16,
        memory_mb=65536, local_gb=1000, hypervisor_type="fake", hypervisor_version=1,
        cpu_info="{}", host_ip="192.0.2.1", stats={"num_instances": "0"})
    node.create()  # through the conductor

    primitive = rpc.RequestContextSerializer().serialize_entity(ctxt, node)
    raw_transport = messaging.get_rpc_transport(cfg.CONF, url=vhost.url)
    stack.callback(raw_transport.cleanup)
    raw_client = messaging.get_rpc_client(
        raw_transport, messaging.Target(exchange=ECHO_EXCHANGE, topic=echo_topic,
                                        version="1.0"), timeout=30)
    probe = probe_class(ctxt)
    for name in node.fields:
        if node.obj_attr_is_set(name):
            setattr(probe, name, getattr(node, name))
    probe.obj_reset_changes(recursive=True)
    counter = itertools.count(1)
    small = probe_class.small(ctxt, memory_mb_used=0)
    small.obj_reset_changes()

    def save() -> None:
        node.memory_mb_used = next(counter)
        node.save()

    def touch() -> None:
        probe.touch(next(counter))

    cases = [c for c in (
        Case("raw", lambda: raw_client.call({}, "echo", payload=primitive)),
        Case("no-DB", through(plain_api, touch)),
        Case("no-DB/1", through(plain_api, lambda: small.touch(next(counter)))),
        Case("raw+DB", lambda: raw_client.call({}, "echo_update", payload=primitive,
                                               node_id=node.id, value=next(counter))),
        Case("save()", through(plain_api, save)),
    ) if c.name == "raw" or c.name in args.cases
        or (c.name == "raw+DB" and "save()" in args.cases)
        or (c.name == "no-DB/1" and "no-DB" in args.cases)]
    cases += [Case(name + "+s", through(plain_api, call, host_signer))
              for name, call in (("no-DB", touch), ("save()", save))
              if name in args.cases]
    if metered_api is not None:  # the same calls, to the conductor with metrics
        cases += [Case(name + "+m", through(metered_api, call))
                  for name, call in (("no-DB", touch), ("save()", save))
                  if name in args.cases]
    print(environment())
    wire_context = rpc.RequestContextSerializer().serialize_context(ctxt)
    print("payload: a ComputeNode primitive, %d bytes of JSON (raw: the same plain dict, "
          "empty context; novalet adds its context, %d bytes)" % (
              len(json.dumps(primitive)), len(json.dumps(wire_context))))
    print("no-DB:  %s" % NO_DB_CALL)
    print("no-DB/1: the same method on a one-field object (reference: the fixed cost "
          "of a remotable call)")
    print("raw+DB: raw call whose echo server also runs save()'s database write alone "
          "(novalet.db compute_node_update: oslo.db writer transaction, one UPDATE)")
    print("save(): ComputeNode.save() of memory_mb_used, [objects] indirection=rpc -> "
          "novalet-conductor -> PostgreSQL")
    for case in cases:
        case.run(args.warmup, 60, {})
        case.reset()
    groups = {
        "client": [os.getpid()], "echo": process_tree(echo_pid),
        "conductor": process_tree(conductor.proc.pid) + (
            process_tree(metered.proc.pid) if metered_topic else []),
        "rabbitmq": [int(pid) for pid in subprocess.run(
            ["pgrep", "-x", "beam.smp"], capture_output=True, text=True).stdout.split()],
        "postgres": [row[0] for row in database.query(
            "SELECT pid FROM pg_stat_activity WHERE datname = :n "
            "AND pid <> pg_backend_pid()", n=database.name)]}
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)
        for group in ("client", "echo", "conductor"):  # one recorder per process:
            for pid in groups[group]:  # py-spy's --subprocesses missed the children
                start_py_spy(pid, os.path.join(args.py_spy, "%s-%d.txt" % (group, pid)),
                             stack)
        time.sleep(1)
    for _ in range(args.rounds):
        for case in cases:
            case.run(max(1, args.calls // args.rounds), args.seconds / args.rounds, groups)
    print("%d round(s) of sequential calls from one caller, after %d warm-up calls each"
          % (args.rounds, args.warmup))
    report(cases)
    by_name = {c.name: c for c in cases}
    for name in ("no-DB", "save()"):
        if name in by_name and name + "+m" in by_name:
            plain, metered_case = by_name[name], by_name[name + "+m"]
            print("%s with metrics / without: %.3fx (ratio to raw %.2f -> %.2f); "
                  "conductor CPU ms per call %.3f -> %.3f" % (
                      name, metered_case.rate / plain.rate,
                      plain.rate / by_name["raw"].rate,
                      metered_case.rate / by_name["raw"].rate,
                      plain.cpu.get("conductor", 0) * 1000 / len(plain.latencies),
                      metered_case.cpu.get("conductor", 0) * 1000
                      / len(metered_case.latencies)))
    for name in ("no-DB", "save()"):
        if name in by_name and name + "+s" in by_name:
            plain, signed = by_name[name], by_name[name + "+s"]
            print("%s signed / unsigned: %.3fx (ratio to raw %.2f -> %.2f); "
                  "CPU ms per call client %.3f -> %.3f, conductor %.3f -> %.3f"
                  % (name, signed.rate / plain.rate,
                     plain.rate / by_name["raw"].rate,
                     signed.rate / by_name["raw"].rate,
                     *(case.cpu.get(group, 0) * 1000 / len(case.latencies)
                       for group in ("client", "conductor")
                       for case in (plain, signed))))
    if "raw+DB" in by_name and "save()" in by_name:
        print("save() / raw+DB: %.2fx (the same database write, with and without novalet's "
              "objects, serializer and dispatcher); raw+DB / raw: %.2fx" % (
                  by_name["save()"].rate / by_name["raw+DB"].rate,
                  by_name["raw+DB"].rate / by_name["raw"].rate))
    if any(max(c.round_rates) > 1.5 * min(c.round_rates) for c in cases):
        print("WARNING: a case's rate varied over 1.5x between rounds (a busy machine?): "
              "treat PASS/MISS as unreliable; the CPU figures are steadier")
    if not all(os.path.exists("/proc/%d" % pid) for pid in groups["rabbitmq"]):
        print("WARNING: RabbitMQ restarted during the run: these figures are not valid")
    stored = database.query("SELECT memory_mb_used FROM compute_nodes WHERE id = :i",
                            i=node.id)[0][0]
    if stored != node.memory_mb_used:
        print("WARNING: the row has memory_mb_used=%s, the object %s"
              % (stored, node.memory_mb_used))
    if conductor.errors():
        print("conductor logged errors:\n  " + "\n  ".join(conductor.errors()[:10]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000,
                        help="calls per case over all rounds (default 3000)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time cap per case over all rounds (default 60)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds of all cases (default 10: a busy "
                             "spell on the machine falls on every case alike)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up calls per case (default 200)")
    parser.add_argument("--cases", type=lambda v: v.split(","), default=list(TARGETS),
                        help="novalet cases to run, of %s; raw always runs"
                        % ",".join(TARGETS))
    parser.add_argument("--py-spy", metavar="DIR",
                        help="record py-spy stacks (GIL holders) of the client, echo "
                             "server and conductor processes during the measured rounds "
                             "into DIR/<group>-<pid>.txt")
    parser.add_argument("--metrics", action="store_true",
                        help="also run the novalet cases against a conductor with "
                             "[metrics] on (cases no-DB+m, save()+m), interleaved")
    parser.add_argument("--echo-server", nargs=3, metavar=("URL", "TOPIC", "DB"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        return run_echo_server(*args.echo_server)
    for signum in (signal.SIGINT, signal.SIGTERM):  # clean up on either, even when
        signal.signal(signum, signal.default_int_handler)  # started with SIGINT ignored
    from novalet import exception

    with contextlib.ExitStack() as stack:
        try:
            run(args, stack)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
        except (exception.RPCTimeout, exception.RPCUnavailable) as e:
            print("measurement failed (was the broker restarted?): %s" % e, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
