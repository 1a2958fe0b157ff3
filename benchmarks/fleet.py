"""Fleet heartbeats: N simulated computes against one conductor worker (or
``--conductor-workers W``).

A private RabbitMQ vhost and PostgreSQL database, one ``novalet-conductor``
(workers=1). For each N, K load generators (this script, ``--worker``) create
N/K ``Service`` records through the conductor and join them to the
servicegroup API, first beats spread over ``report_interval``. After a
warm-up, every heartbeat is timed for ``--duration`` s while an observer here
(direct database access, like an API service) calls ``API.get_all`` every few
seconds: a compute reported down while its process runs is a false down.

    python benchmarks/fleet.py [--driver db|tooz] [--computes 500,1000,2000,5000]
        [--duration 60] [--workers 4] [--mode batched|separate|save|stream]
        [--conductor-workers 1] [--py-spy DIR] [--report-interval 10]
        [--json PATH] [--plot PATH]

db modes: ``batched`` (default): the driver as shipped, one per process, so a
process's computes share heartbeat calls (``ServiceList.report_heartbeats``);
``separate``: one driver per simulated compute, so each sends its own call of
one id per beat, as a fleet of one compute per process does; ``save``:
``DbDriver(batched=False)``, a timer and a ``Service.save()`` per compute (the
design before batching, and what a release 1 conductor gets); ``stream``: as
``separate`` for the conductor (one signed call of one id per compute and
beat), but each compute's request prepared ahead and sent over kombu
(``fleet_stream.py``), so a few generator processes can drive a fleet of one
compute per process until the conductor, not they, saturates. A beat's latency
runs from when it was due (or its call started, if earlier: the batcher sends
beats due within 0.25 s together) to the end of the call that carried it. A step
during which the broker went away (someone restarting RabbitMQ) is repeated.
Exits 0.

Signed as a deployment is: the conductor holds a master key (``[auth]
enforce`` on: an unsigned request is refused) and every simulated compute its
own host key (written by ``novalet.auth.keys``, as ``novalet-manage auth
host-key`` does): it creates its record and, in ``separate`` and ``save``
modes, sends its beats signed with it. In ``batched`` mode one call carries
many hosts' beats, which no host key may sign: the load generators hold the
master key and sign those calls as the admin.

Figures: ``--json PATH`` and ``--plot PATH`` (p99 and conductor CPU per beat
against N; see ``figures.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
import figures  # noqa: E402
import fleet_stream  # noqa: E402
from fleet_worker import BINARY, Recorder, timed_driver, worker  # noqa: E402
# isort: on

TICK = os.sysconf("SC_CLK_TCK")


# -- measuring ----------------------------------------------------------------

def cpu_snapshot(conductor: int, workers: list[int]) -> dict[str, float]:
    """CPU seconds used so far by the conductor tree, the workers, RabbitMQ,
    PostgreSQL (all databases), this process and the whole machine. Dead
    children count through their parent's cutime/cstime (PostgreSQL backends)."""
    stats: dict[int, list[str]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError), open("/proc/%s/stat" % entry) as f:
            head, tail = f.read().rsplit(")", 1)
            stats[int(entry)] = [head.split("(", 1)[1], *tail.split()]
    tree, todo = [], [conductor]
    while todo:
        tree.append(todo.pop())
        todo.extend(p for p, st in stats.items() if int(st[2]) == tree[-1])
    groups = {"conductor": tree, "computes": workers, "observer": [os.getpid()],
              "rabbitmq": [p for p, st in stats.items() if st[0] == "beam.smp"],
              "postgres": [p for p, st in stats.items() if st[0] == "postgres"]}
    result = {name: sum(sum(int(v) for v in stats[p][12:16]) for p in pids if p in stats)
              / TICK for name, pids in groups.items()}
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    result["machine"] = (sum(values) - values[3] - values[4]) / TICK
    return result


def percentile(ordered: list[float], p: float) -> float:
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


def start_worker(args: argparse.Namespace, ctx: dict[str, Any], prefix: str, index: int,
                 count: int) -> subprocess.Popen[str]:
    """One load generator (this script, ``--worker``), driven by a line protocol."""
    with open(os.path.join(ctx["tmp"], "%s-w%d.log" % (prefix, index)), "w") as log:
        return subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--worker", "--config", ctx["config"],
             "--prefix", prefix, "--index", str(index), "--count", str(count),
             "--keys", ctx["keys"], "--group-prefix",
             ctx["group_prefix"], "--mode", args.mode, "--join-timeout", str(args.join_timeout)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
            start_new_session=True)


def expect(proc: subprocess.Popen[str], word: str) -> str:
    line = proc.stdout.readline() if proc.stdout else ""
    if not line.startswith(word):
        raise RuntimeError("worker %d: expected %r, got %r (exit %s)" % (
            proc.pid, word, line, proc.poll()))
    return line


def send(procs: list[subprocess.Popen[str]], line: str) -> None:
    for proc in procs:
        if proc.stdin:
            proc.stdin.write(line + "\n")
            proc.stdin.flush()


def stop_workers(procs: list[subprocess.Popen[str]], grace: float) -> None:
    for proc in procs:
        with contextlib.suppress(OSError):
            if proc.stdin:
                proc.stdin.close()
    deadline = time.monotonic() + grace
    for proc in procs:
        try:
            proc.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def step(args: argparse.Namespace, n: int, ctx: dict[str, Any]) -> dict[str, Any]:
    from novalet import auth, context
    interval, conductor, lost0 = ctx["conf"].report_interval, ctx["conductor"], ctx["lost"]()
    prefix = "fleet-%s-n%d-%s" % (ctx["run_id"], n, uuid.uuid4().hex[:4])
    k = max(1, min(args.workers, n))
    ctx["keys"] = os.path.join(ctx["tmp"], "keys-" + prefix)
    for i in range(k):  # each compute's own key, as novalet-manage auth host-key writes it
        for j in range(n // k + (i < n % k)):
            host = "%s-w%d-%05d" % (prefix, i, j)
            auth.keys.write_host_key(ctx["master_key"], host,
                                     os.path.join(ctx["keys"], host + ".key"))
    workers = [start_worker(args, ctx, prefix, i, n // k + (i < n % k)) for i in range(k)]
    sessions_sql = "SELECT sessions FROM pg_stat_database WHERE datname = :n"
    try:
        started = time.time()
        for w in workers:
            expect(w, "created")
        created = time.time()
        send(workers, "go")
        threads = sum(int(expect(w, "joined").split()[1]) for w in workers)
        print("  N=%d: %d records in %.0fs, %d threads in %d processes; warm-up %ds" % (
            n, n, created - started, threads, k, interval + 3), flush=True)
        time.sleep(interval + 3)
        spies = [subprocess.Popen(  # records the GIL holder, raw (collapsed) stacks
            [os.path.join(os.path.dirname(sys.executable), "py-spy"), "record", "--pid",
             str(pid), "--subprocesses", "--nonblocking", "--gil", "--format", "raw",
             "--rate", "100", "--duration", str(int(args.duration)), "--output",
             os.path.join(args.py_spy, "%s-%s-n%d-%s.txt" % (args.driver, args.mode, n, who))],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for who, pid in (("conductor", conductor), ("computes", workers[0].pid))
        ] if args.py_spy else []
        pids = [w.pid for w in workers]
        cpu0 = cpu_snapshot(conductor, pids)
        sessions0 = ctx["database"].query(sessions_sql, n=ctx["database"].name)[0][0]
        ctxt, down, observations, died, unanswered = context.get_admin_context(), set(), 0, 0, 0
        t0 = time.time()
        while time.time() < t0 + args.duration:
            time.sleep(max(0.0, min(args.observe_every, t0 + args.duration - time.time())))
            box: list[Any] = []  # asked from a thread: a backend may never answer
            asking = threading.Thread(daemon=True, target=lambda b=box: b.append(
                ctx["api"].get_all(ctxt, binary=BINARY)))
            asking.start()
            asking.join(max(10.0, 2 * args.observe_every))
            unanswered += not box
            for service, up in box[0] if box else []:
                if service.host.startswith(prefix + "-"):
                    observations += 1
                    if not up:
                        down.add(service.host)
            died = died or any(w.poll() is not None for w in workers)
        t1, cpu1 = time.time(), cpu_snapshot(conductor, pids)
        sessions = ctx["database"].query(sessions_sql, n=ctx["database"].name)[0][0] - sessions0
        send(workers, "%r %r" % (t0, t1))
        results = [json.loads(expect(w, "{")) for w in workers]
        signed_by = {str(how): (records, int(beats)) for how, records, beats in ctx[
            "database"].query(  # how each record's last beat came, beats it took
                "SELECT last_auth, count(*), sum(report_count) FROM services WHERE "
                "host LIKE :p AND report_count > 0 GROUP BY last_auth", p=prefix + "-%")}
    finally:
        stop_workers(workers, 60 if sys.exc_info()[0] is None else 3)
        ctx["database"].query("DELETE FROM services WHERE host LIKE :p", p=prefix + "-%")
    for s in spies:
        s.wait(60)
    cores = {name: (cpu1[name] - cpu0[name]) / (t1 - t0) for name in cpu0}
    cores["others"] = cores["machine"] - sum(v for k, v in cores.items() if k != "machine")
    latencies = sorted(x for r in results for x in r["latencies"])
    row = {"driver": args.driver + ("" if args.driver == "tooz" else " " + args.mode),
           "n": n, "rate": len(latencies) / (t1 - t0), "p50": percentile(latencies, 0.5) * 1000,
           "p99": percentile(latencies, 0.99) * 1000, "down": len(down),
           "failed": sum(r["failed"] for r in results), "gap": max(r["max_gap"] for r in results),
           "cond_ms": cores["conductor"] * (t1 - t0) * 1000 / max(1, len(latencies)),
           "last_beat_by": {k: v[0] for k, v in signed_by.items()},
           "beats_recorded": sum(v[1] for v in signed_by.values())}
    reasons = [why for why, bad in (
        ("p99>1s", row["p99"] > 1000), ("false down", row["down"] > 0),
        ("failed beats", row["failed"] > 0), ("worker died", died),
        ("%d get_all() unanswered" % unanswered, unanswered > 0),
        ("rate<95%", row["rate"] < 0.95 * n / interval),
        ("beats not recorded (refused?)", args.driver == "db"
         and row["beats_recorded"] < len(latencies))) if bad]
    row["verdict"] = "PASS" if not reasons else "MISS (%s)" % ", ".join(reasons)
    if ctx["lost"]() > lost0 and args.driver == "db":
        row["verdict"] = "DISTURBED (the broker went away during the step)"
    print("  N=%d: %.0f beats/s (need %.0f), p50 %.1f ms, p99 %.1f ms, %d failed, %d false "
          "down (%d observations), longest gap %.1fs -> %s" % (
              n, row["rate"], n / interval, row["p50"], row["p99"], row["failed"],
              row["down"], observations, row["gap"], row["verdict"]))
    print("    %d beats recorded; records by how their last beat was signed: %s" % (
        row["beats_recorded"], ", ".join("%s %d" % kv for kv in sorted(
            row["last_beat_by"].items())) or "none beat"))
    print("    CPU cores used: %s (of %d); %d new PostgreSQL sessions, load %.1f" % (
        ", ".join("%s %.2f" % kv for kv in cores.items()), os.cpu_count() or 0, sessions,
        os.getloadavg()[0]))
    calls = [c for r in results for c in r["calls"]]
    if calls:
        lat = sorted(c[0] for c in calls)
        print("    heartbeat calls: %d, mean beats per call %.1f, call p50 %.1f ms, p99 %.1f ms"
              % (len(calls), sum(c[1] for c in calls) / len(calls),
                 percentile(lat, 0.5) * 1000, percentile(lat, 0.99) * 1000))
    return row


# -- the run ------------------------------------------------------------------

def run(args: argparse.Namespace, stack: contextlib.ExitStack,
        rows: list[dict[str, Any]]) -> None:
    from novalet import auth, indirection, objects, servicegroup
    from novalet import conf as novalet_conf
    from tests import processes, services

    run_id = uuid.uuid4().hex[:8]
    tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="novalet-fleet-"))
    database = services.provision_database("postgresql", tmp)
    stack.callback(database.drop)
    vhost = services.RabbitVhost()
    stack.callback(vhost.delete)
    if args.driver == "tooz":
        stack.callback(clean_redis, services.check_redis(), run_id)
    master_key = os.path.join(tmp, "master.key")
    auth.keys.init_master(master_key)  # as novalet-manage auth init does
    common = {
        "DEFAULT": {"transport_url": vhost.url, "host": "fleet-conductor",
                    "report_interval": args.report_interval, "service_down_time": 60,
                    "servicegroup_driver": args.driver},
        "database": {"connection": database.url},
        "conductor": {"workers": args.conductor_workers,
                      "topic": "conductor-fleet-%s" % run_id},
        "servicegroup": {"backend_url": services.REDIS_URL}}
    # The conductor (and the observer, which reads the database itself)
    # hold the master key; the load generators only their computes' keys,
    # and the master key in batched mode (see the module's docstring).
    config, worker_config = (processes.write_config(
        os.path.join(tmp, name), dict(common, auth=auth_section))
        for name, auth_section in (
            ("novalet.conf", {"master_key_file": master_key}),
            ("worker.conf", {"master_key_file": master_key} if args.mode == "batched"
             else {})))
    for path in (config, worker_config):
        with open(path, "a") as f:  # --set: appended sections win (last value)
            f.writelines("[%s]\n%s = %s\n" % (*o.split("=", 1)[0].split("."),
                                               o.split("=", 1)[1]) for o in args.set)
    result = processes.run_command("novalet-manage", "--config-file", config, "db", "sync")
    if result.returncode != 0:
        raise RuntimeError("db sync failed: %s" % result.stderr)
    conductor = processes.ServiceProcess("novalet-conductor", config,
                                         os.path.join(tmp, "conductor.log"))
    stack.callback(conductor.stop)
    conductor.wait_for_log(r"novalet-conductor started on fleet-conductor",
                           count=args.conductor_workers)
    conf = novalet_conf.CONF  # the observer reads the database itself
    novalet_conf.parse_args(["--config-file", config], default_config_files=[])
    conf.set_override("indirection", "direct", "objects")
    objects.register_all()
    indirection.configure(conf)
    stack.callback(indirection.reset)
    group_prefix = "novalet-fleet-%s" % run_id
    api = servicegroup.API(conf, driver=timed_driver(args.driver, conf, Recorder(), group_prefix))
    stack.callback(api.stop)
    ctx = {"conf": conf, "run_id": run_id, "config": worker_config, "tmp": tmp, "api": api,
           "master_key": master_key,
           "group_prefix": group_prefix, "conductor": conductor.proc.pid, "database": database,
           "lost": lambda: conductor.log().count("is unreachable")}
    print("fleet: driver %s, mode %s, %d conductor worker(s), report_interval %ds, "
          "service_down_time %ds, %d load-generator processes, %ds per N, %d CPUs, "
          "load %.2f%s" % (
              args.driver, args.mode if args.driver == "db" else "-", args.conductor_workers,
              conf.report_interval, conf.service_down_time, args.workers, args.duration,
              os.cpu_count() or 0, os.getloadavg()[0],
              "".join(", " + o for o in args.set)), flush=True)
    for n in args.computes:
        for _attempt in range(1 + args.retries):
            rows.append(step(args, n, ctx))
            if not rows[-1]["verdict"].startswith("DISTURBED"):
                break
        if not rows[-1]["verdict"].startswith("PASS") and not args.keep_going:
            break
    if conductor.errors():
        print("conductor logged %d error lines, first: %s" % (
            len(conductor.errors()), conductor.errors()[0]))


def clean_redis(url: str, run_id: str) -> None:
    import redis
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match="*%s*" % run_id, count=1000):
        client.delete(key)
    for group in client.smembers("_tooz_groups"):
        if run_id.encode() in group:
            client.srem("_tooz_groups", group)
    client.close()


def table(rows: list[dict[str, Any]]) -> None:
    print("\n%-19s %6s %8s %8s %8s %6s %5s %8s %10s  %s" % (
        "driver", "N", "beats/s", "p50 ms", "p99 ms", "failed", "down", "max gap",
        "cond ms/hb", "verdict"))
    for r in rows:
        print("%-19s %6d %8.0f %8.1f %8.1f %6d %5d %7.1fs %10.2f  %s" % (
            r["driver"], r["n"], r["rate"], r["p50"], r["p99"], r["failed"], r["down"],
            r["gap"], r["cond_ms"], r["verdict"]))
    passed = [r["n"] for r in rows if r["verdict"] == "PASS"]
    print("largest N holding p99 <= 1 s with no false down: %s" % (
        max(passed) if passed else "none of %s" % sorted({r["n"] for r in rows})))


def write_figures(args: argparse.Namespace, rows: list[dict[str, Any]], json_path: str,
                  png_path: str) -> None:
    """The rows as JSON; p99 and conductor CPU per heartbeat against N as a PNG."""
    figures.write_json(json_path, "fleet", args, {"rows": rows})
    plot(png_path, rows, vars(args))


def plot(png_path: str, rows: list[dict[str, Any]], arguments: dict[str, Any],
         measured_on: dict[str, Any] | None = None) -> None:
    """p99 (log scale: a miss is seconds, a pass milliseconds) and conductor
    CPU per heartbeat against N, from the rows and arguments of a run (as the
    JSON holds them; ``measured_on``: its machine, default now)."""
    measured = [r for r in rows if not r["verdict"].startswith("DISTURBED")]
    label = measured[0]["driver"] if measured else arguments["driver"]
    if arguments.get("set"):
        label += ", " + ", ".join(arguments["set"])
    ns = [r["n"] for r in measured]
    figures.plot(png_path, "fleet: %s, %d conductor worker(s), report_interval %ds, %gs per N" % (
        label, arguments["conductor_workers"], arguments["report_interval"],
        arguments["duration"]), [
        ("simulated computes N", "heartbeat p99 latency, ms (log)",
         [(label, ns, [r["p99"] for r in measured])], ("limit: 1 s", 1000.0)),
        ("simulated computes N", "conductor CPU ms per heartbeat",
         [(label, ns, [r["cond_ms"] for r in measured])], None)],
        log_x=True, log_y=(0,), measured_on=measured_on)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add = parser.add_argument
    add("--driver", choices=["db", "tooz"], default="db")
    add("--computes", type=lambda v: [int(x) for x in v.split(",")],
        default=[500, 1000, 2000, 5000], help="the N to step through")
    add("--duration", type=float, default=60.0, help="measured seconds per N (default 60)")
    add("--workers", type=int, default=4, help="load-generator processes (default 4)")
    add("--observe-every", type=float, default=5.0, help="seconds between two get_all()")
    add("--report-interval", type=int, default=10,
        help="[DEFAULT] report_interval of every process (default 10)")
    add("--mode", choices=["batched", "separate", "save", "stream"], default="batched",
        help="db: computes of a process share calls (batched, the default), each "
             "sends its own (separate), or each saves its Service (save); stream: "
             "each sends its own signed call, prepared ahead and sent over kombu "
             "(fleet_stream.py: a generator cheap enough for the conductor to saturate)")
    add("--conductor-workers", type=int, default=1,
        help="[conductor] workers of the conductor (default 1)")
    add("--join-timeout", type=float, default=180.0,
        help="seconds a load generator may spend joining; the rest count as down")
    add("--retries", type=int, default=2, help="repeats of a step the broker left in")
    add("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
        help="extra option for every process, e.g. database.max_pool_size=64")
    add("--keep-going", action="store_true", help="go on with larger N after a MISS")
    add("--py-spy", metavar="DIR", help="py-spy profiles (GIL) of conductor and a worker")
    figures.add_arguments(parser)
    add("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--config", "--prefix", "--group-prefix", "--keys"):
        add(hidden, help=argparse.SUPPRESS)
    add("--index", type=int, default=0, help=argparse.SUPPRESS)
    add("--count", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return fleet_stream.worker(args) if args.mode == "stream" else worker(args)
    if args.py_spy:
        os.makedirs(args.py_spy, exist_ok=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    json_path, png_path = figures.paths(args, "fleet")
    rows: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        try:
            run(args, stack, rows)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
    table(rows)
    write_figures(args, rows, json_path, png_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
