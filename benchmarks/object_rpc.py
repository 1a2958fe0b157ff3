"""Object RPC overhead: novalet's conductor path against raw oslo.messaging.

A private PostgreSQL database and RabbitMQ vhost, one ``novalet-conductor``
(workers=1) and, for the baseline, an echo server in its own process (client
<-> broker <-> server process in every case): an oslo.messaging ``call()`` of
a payload as long as the object's primitive. Cases interleaved in rounds after
a warm-up; also prints each process's CPU time per call (/proc), steadier than
rates on a shared machine. Exits 0 either way.

    python benchmarks/object_rpc.py [--callers 1,8,32] [--processes P]
        [--calls N] [--seconds S] [--rounds R] [--cases no-DB,save()]
        [--py-spy DIR] [--metrics] [--json PATH] [--plot PATH]

``--callers``: the cases run with each number of concurrent callers in turn
(each caller its own ComputeNode row and objects; the ratio to raw is at the
same number), as threads of this process or, with ``--processes P``, threads
spread over P caller processes (``callers.py``). The figures go to a JSON
file and a PNG (throughput and p99 against callers; ``figures.py``).

Signed requests: the conductor holds a master key with ``[auth] enforce =
false``; the novalet cases run unsigned and, interleaved with them, signed
with a host's key (``no-DB+s``, ``save()+s``, ``beat+s``: the conductor
verifies each request and scopes the write to the host's rows), as a compute
sends them. ``beat`` is one heartbeat, ``ServiceList.report_heartbeats([id])``
of the caller's own service record (a signed one is recorded against a
second delivery of the same request).

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
import logging
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
import oslo_messaging as messaging  # noqa: E402
from oslo_config import cfg  # noqa: E402
import callers as callers_mod  # noqa: E402
import figures  # noqa: E402
import proc_cpu  # noqa: E402
import object_rpc_report  # noqa: E402
from object_rpc_report import TARGETS, Case, Runner, plot, report, summary  # noqa: E402
# isort: on

NO_DB_CALL = ("BenchProbe.touch(n): a remotable method that sets one field and does "
              "no DB work, on an object with ComputeNode's fields and values "
              "(registered by this script in itself and in the conductor it starts)")
ECHO_EXCHANGE = "novalet-bench"  # explicit: the processes' defaults differ


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
        from novalet.db import compute_nodes as db_compute_nodes
        db_compute_nodes.compute_node_update(context.get_admin_context(), node_id,
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


# -- the servers (this process starts them) -------------------------------------

def start_servers(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    """Keys, database, vhost, conductor(s), echo server: what the callers
    need to know of them (the spec a caller process gets), and handles."""
    from novalet import auth
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

    def conductor_conf(name: str, host: str, topic: str, **extra: Any) -> str:
        return processes.write_config(os.path.join(tmp, name), {
            "DEFAULT": {"transport_url": vhost.url, "host": host,
                        "rpc_response_timeout": 30},
            "database": {"connection": database.url},
            "conductor": {"workers": 1, "topic": topic},
            "auth": {"master_key_file": master_key, "enforce": "false"},
            # A connection per caller waiting (oslo.messaging's default is 30).
            "oslo_messaging_rabbit": {"rpc_conn_pool_size": max(30, max(args.callers) + 8)},
            **extra})
    config = conductor_conf("novalet.conf", "bench-conductor",
                            "conductor-bench-%s" % os.urandom(4).hex())
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
    conductors, metered_topic = [conductor.proc.pid], None
    if args.metrics:
        metered_topic = "conductor-bench-m-%s" % os.urandom(4).hex()
        metered = processes.ServiceProcess(
            "novalet-conductor", conductor_conf("metered.conf", "bench-conductor-m",
                                                metered_topic, metrics={"bind_port": 0}),
            os.path.join(tmp, "metered.log"), bin_dir=tmp)
        stack.callback(metered.stop)
        metrics_url = metered.wait_for_log(r"Metrics on (http://\S+)/metrics").group(1)
        metered.wait_for_log(r"novalet-conductor started on bench-conductor-m")
        start_scraper(metrics_url + "/metrics", stack)
        conductors.append(metered.proc.pid)
    echo_topic = "echo-bench-%s" % os.urandom(4).hex()
    echo_pid = start_echo_server(vhost.url, echo_topic, database.url, stack)
    spec = {"config": config, "host_key": host_key, "echo_topic": echo_topic,
            "metered_topic": metered_topic, "url": vhost.url,
            "cases": case_names(args), "tmp": tmp}
    return {"spec": spec, "conductor": conductor, "conductors": conductors,
            "echo": echo_pid, "database": database}


def case_names(args: argparse.Namespace) -> list[str]:
    """raw first (the baseline), then the references and the novalet cases."""
    wanted = set(args.cases)
    names = ["raw"]
    names += [n for n, on in (("no-DB", "no-DB"), ("no-DB/1", "no-DB"),
                              ("raw+DB", "save()"), ("save()", "save()"),
                              ("beat", "beat")) if on in wanted]
    names += [n + "+s" for n in TARGETS if n in wanted]
    if args.metrics:
        names += [n + "+m" for n in TARGETS if n in wanted]
    return names


# -- the callers (this process, or each caller process) ---------------------------

def make_callers(spec: dict[str, Any], callers: int, tag: str,
                 stack: contextlib.ExitStack) -> tuple[dict[str, list[Callable[[], Any]]],
                                                       list[Any]]:
    """This process as a compute (its objects go to the conductor), with
    ``callers`` callers: each its own ComputeNode row and objects. Returns
    each case's calls (one per caller) and the nodes."""
    from novalet import auth, context, indirection, objects, rpc
    from novalet import conf as novalet_conf
    from novalet.objects import base as objects_base

    novalet_conf.parse_args(["--config-file", spec["config"]], default_config_files=[])
    novalet_conf.CONF.set_override("indirection", "rpc", "objects")
    probe_class = register_probe()
    indirection.configure(novalet_conf.CONF)
    stack.callback(rpc.cleanup)
    stack.callback(indirection.reset)
    plain_api = objects_base.get_indirection_api()
    metered_api = None
    if spec["metered_topic"] is not None:
        novalet_conf.CONF.set_override("topic", spec["metered_topic"], "conductor")
        metered_api = indirection.load("rpc", novalet_conf.CONF)
        novalet_conf.CONF.clear_override("topic", "conductor")
    # Signed as the host bench-host (its key, as a compute) or not at all;
    # novalet.rpc asks novalet.auth.signer() at every call.
    host_ring = auth.keys.KeyRing.from_files(None, spec["host_key"],
                                             novalet_conf.CONF.conductor.topic)
    assert host_ring is not None
    host_signer = auth.signing.Signer(host_ring)

    def through(api: Any, call: Callable[[], Any],
                signer: Any = None) -> Callable[[], Any]:
        """``call`` with the objects' calls going through ``api``, signed
        by ``signer`` (None: unsigned). All callers of a case set the same."""
        def run_through() -> Any:
            objects_base.set_indirection_api(api)
            auth._signer = signer
            return call()
        return run_through

    # oslo.messaging suspects a leak when over 10 calls of a process wait
    # for their replies at once: here N callers do, by design.
    logging.getLogger("oslo_messaging._drivers.amqpdriver").addFilter(
        lambda record: not str(record.msg).startswith("Number of call queues"))
    ctxt = context.get_admin_context()
    raw_transport = messaging.get_rpc_transport(cfg.CONF, url=spec["url"])
    stack.callback(raw_transport.cleanup)
    raw_client = messaging.get_rpc_client(
        raw_transport, messaging.Target(exchange=ECHO_EXCHANGE, topic=spec["echo_topic"],
                                        version="1.0"), timeout=30)
    counter = itertools.count(1)  # next() is atomic under the GIL
    calls: dict[str, list[Callable[[], Any]]] = {name: [] for name in spec["cases"]}
    nodes = []
    for i in range(callers):
        node = objects.ComputeNode(
            ctxt, host="bench-host", hypervisor_hostname="bench-node-%s-%d" % (tag, i),
            vcpus=16, memory_mb=65536, local_gb=1000, hypervisor_type="fake",
            hypervisor_version=1, cpu_info="{}", host_ip="192.0.2.1",
            stats={"num_instances": "0"})
        node.create()  # through the conductor
        nodes.append(node)
        primitive = objects_base.NovaletObjectSerializer().serialize_entity(ctxt, node)
        probe = probe_class(ctxt)
        for name in node.fields:
            if node.obj_attr_is_set(name):
                setattr(probe, name, getattr(node, name))
        probe.obj_reset_changes(recursive=True)
        small = probe_class.small(ctxt, memory_mb_used=0)
        small.obj_reset_changes()
        service = objects.Service(ctxt, host="bench-host",
                                  binary="bench-beat-%s-%d" % (tag, i))
        service.create()  # through the conductor

        def beat(ids: list[int] = [service.id]) -> None:  # noqa: B006  (never changed)
            objects.ServiceList.report_heartbeats(ctxt, ids)

        def save(node: Any = node) -> None:
            node.memory_mb_used = next(counter)
            node.save()

        def touch(probe: Any = probe) -> None:
            probe.touch(next(counter))

        mine = {
            "raw": lambda p=primitive: raw_client.call({}, "echo", payload=p),
            "no-DB": through(plain_api, touch),
            "no-DB/1": through(plain_api, lambda s=small: s.touch(next(counter))),
            "raw+DB": lambda p=primitive, n=node: raw_client.call(
                {}, "echo_update", payload=p, node_id=n.id, value=next(counter)),
            "save()": through(plain_api, save),
            "no-DB+s": through(plain_api, touch, host_signer),
            "save()+s": through(plain_api, save, host_signer),
            "beat": through(plain_api, beat),
            "beat+s": through(plain_api, beat, host_signer),
            "no-DB+m": through(metered_api, touch),
            "save()+m": through(metered_api, save)}
        for name in calls:
            calls[name].append(mine[name])
    return calls, nodes


def run_caller_process(spec_path: str, callers: int, index: int) -> int:
    """``--caller-process``: callers of its own, run as the parent asks."""
    with open(spec_path) as f:
        spec = json.load(f)
    answers, sys.stdout = sys.stdout, sys.stderr  # stdout: the answers only
    with contextlib.ExitStack() as stack:
        calls, _ = make_callers(spec, callers, "p%d" % index, stack)
        return callers_mod.serve(calls, answers)


# -- the run ---------------------------------------------------------------------

def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    from novalet import context, rpc

    servers = start_servers(args, stack)
    spec, database = servers["spec"], servers["database"]
    most = max(args.callers)
    pool = None
    if args.processes:
        spec_path = os.path.join(spec["tmp"], "callers.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        per_process = -(-most // args.processes)
        pool = callers_mod.CallerProcesses(
            [sys.executable, os.path.abspath(__file__), "--caller-process", spec_path,
             str(per_process)], min(args.processes, most))
        stack.callback(pool.stop)
    # This process calls too with threads; with caller processes it makes
    # one node only (the sizes printed, the row checked).
    calls, nodes = make_callers(spec, 1 if pool else most, "t", stack)
    runner: Runner = pool.run if pool else (
        lambda name, n, total, seconds: callers_mod.run_threads(
            calls[name][:n], total, seconds))
    cases = [Case(name, runner) for name in spec["cases"]]
    ctxt = context.get_admin_context()
    from novalet.objects import base as objects_base

    primitive = objects_base.NovaletObjectSerializer().serialize_entity(ctxt, nodes[0])
    print(object_rpc_report.environment())
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
    print("beat: ServiceList.report_heartbeats([id]) of the caller's own service record")
    print("+s: signed with the host's key; +m: to a conductor with [metrics] on")
    print("callers: %s, as %s; each its own ComputeNode row and objects" % (
        ", ".join(map(str, args.callers)),
        "threads of %d caller process(es)" % len(pool.procs) if pool
        else "threads of this process"))
    groups = {
        "client": [os.getpid(), *(pool.pids if pool else [])],
        "echo": proc_cpu.process_tree(servers["echo"]),
        "conductor": [p for pid in servers["conductors"] for p in proc_cpu.process_tree(pid)],
        "rabbitmq": proc_cpu.listening(5672, [int(pid) for pid in subprocess.run(
            ["pgrep", "-x", "beam.smp"], capture_output=True, text=True).stdout.split()]),
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
    for n in args.callers:
        for case in cases:
            case.run(n, args.warmup, 60)
        for _ in range(args.rounds):
            for case in cases:
                case.run(n, max(1, args.calls // args.rounds), args.seconds / args.rounds,
                         groups)
        print("\n%d caller(s): %d round(s), after %d warm-up calls per case" % (
            n, args.rounds, args.warmup))
        report(cases, n)
    figures_ = summary(cases, args.callers)
    if not all(os.path.exists("/proc/%d" % pid) for pid in groups["rabbitmq"]):
        print("WARNING: RabbitMQ restarted during the run: these figures are not valid")
    for node in nodes:
        stored = database.query("SELECT memory_mb_used FROM compute_nodes WHERE id = :i",
                                i=node.id)[0][0]
        if stored != node.memory_mb_used:
            print("WARNING: the row has memory_mb_used=%s, the object %s"
                  % (stored, node.memory_mb_used))
    if servers["conductor"].errors():
        print("conductor logged errors:\n  " + "\n  ".join(servers["conductor"].errors()[:10]))
    return figures_


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=3000,
                        help="calls per case and number of callers over all rounds "
                             "(default 3000)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time cap per case and number of callers over all rounds "
                             "(default 60)")
    parser.add_argument("--rounds", type=int, default=10,
                        help="interleaved rounds of all cases (default 10: a busy "
                             "spell on the machine falls on every case alike)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up calls per case and number of callers (default 200)")
    parser.add_argument("--cases", type=lambda v: v.split(","), default=list(TARGETS),
                        help="novalet cases to run, of %s; raw always runs"
                        % ",".join(TARGETS))
    parser.add_argument("--callers", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1], help="concurrent callers, e.g. 1,8,32 (default 1): "
                        "the cases run at each number in turn")
    parser.add_argument("--processes", type=int, default=0, metavar="P",
                        help="run the callers as threads of P caller processes (one "
                             "process's GIL limits many threads); default 0: threads "
                             "of this process")
    parser.add_argument("--py-spy", metavar="DIR",
                        help="record py-spy stacks (GIL holders) of the client, echo "
                             "server and conductor processes during the measured rounds "
                             "into DIR/<group>-<pid>.txt")
    parser.add_argument("--metrics", action="store_true",
                        help="also run the novalet cases against a conductor with "
                             "[metrics] on (cases no-DB+m, save()+m), interleaved")
    figures.add_arguments(parser)
    parser.add_argument("--echo-server", nargs=3, metavar=("URL", "TOPIC", "DB"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--caller-process", nargs=3, metavar=("SPEC", "CALLERS", "INDEX"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.echo_server:
        return run_echo_server(*args.echo_server)
    if args.caller_process:
        spec, count, index = args.caller_process
        return run_caller_process(spec, int(count), int(index))
    json_path, png_path = figures.paths(args, "object_rpc")
    for signum in (signal.SIGINT, signal.SIGTERM):  # clean up on either, even when
        signal.signal(signum, signal.default_int_handler)  # started with SIGINT ignored
    from novalet import exception

    with contextlib.ExitStack() as stack:
        try:
            figures_ = run(args, stack)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 0
        except (exception.RPCTimeout, exception.RPCUnavailable) as e:
            print("measurement failed (was the broker restarted?): %s" % e, file=sys.stderr)
            return 1
    figures.write_json(json_path, "object_rpc", args, {"callers": args.callers,
                                                       "cases": figures_})
    plot(png_path, figures_, args.callers,
         "threads of %d processes" % args.processes if args.processes else "threads")
    return 0


if __name__ == "__main__":
    sys.exit(main())
