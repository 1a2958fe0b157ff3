"""Nova 34 beside novalet: ComputeNode.save() and the heartbeat, each through
its own conductor path, in one run, each against raw oslo.messaging.

The novalet side is ``object_rpc.py``'s (its functions): a private
PostgreSQL database and RabbitMQ vhost (made and removed here), one
``novalet-conductor`` (workers=1, a master key, ``[auth] enforce = false``),
the echo server of the raw baseline, and callers in this process: ``raw``,
``save()``, ``beat`` (``ServiceList.report_heartbeats([id])``) and both signed
with a host's key (``save()+s``, ``beat+s``).

The Nova side: Nova 34 (PyPI ``nova==34.0.0``) in a virtualenv of its own,
made by this script on first use and cached (``--nova-venv``, default
``~/.cache/novalet-bench/nova-34``); a Nova main and API database on the same
PostgreSQL, made with Nova's own schema (``nova-manage db sync`` and
``api_db sync``); the real ``nova-conductor`` of that venv (``[conductor]
workers = 1``) on the same vhost (its own ``nova`` exchange); and caller
processes run by the venv's Python (``peer_nova_caller.py``), set up as
``nova-compute`` is: database blocked, ``NovaObject.indirection_api =
ConductorAPI()``. Cases: ``nova raw`` (the echo call of Nova's ComputeNode
primitive, from the Nova caller process), ``nova save()`` and ``nova beat``
(``report_count += 1; Service.save()``, Nova's db servicegroup driver's
heartbeat).

All cases are interleaved in rounds after a warm-up; each side's ratio is to
its own raw call at the same number of callers; conductor CPU per call from
/proc. Exits 0 (also when Nova cannot be installed: it says why).

    python benchmarks/peer_nova.py [--callers 1,8] [--calls N] [--seconds S]
        [--rounds R] [--nova-venv DIR] [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)
sys.path.insert(0, ROOT)

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
import callers as callers_mod  # noqa: E402
import figures  # noqa: E402
import object_rpc  # noqa: E402
import object_rpc_report  # noqa: E402
import proc_cpu  # noqa: E402
from object_rpc_report import Case, Stats  # noqa: E402
# isort: on

NOVA_VERSION = "34.0.0"
DEFAULT_VENV = os.path.join(os.path.expanduser("~"), ".cache", "novalet-bench", "nova-34")
NOVALET_CASES = ["raw", "save()", "save()+s", "beat", "beat+s"]
NOVA_CASES = ["nova raw", "nova save()", "nova beat"]
#: Each case's baseline (its side's raw call) and its side's conductor.
SIDE = {**{name: ("raw", "conductor") for name in NOVALET_CASES},
        **{name: ("nova raw", "nova-conductor") for name in NOVA_CASES}}
#: novalet's case against Nova's: issue 26 asks for >= 2x Nova's save ratio.
PAIRS = [("save()", "nova save()", 2.0), ("save()+s", "nova save()", 2.0),
         ("beat", "nova beat", None), ("beat+s", "nova beat", None)]
#: Where the two raws are expected to be close (the same echo server and
#: broker, a primitive of a similar size): past this, say so.
RAW_SPREAD = 1.25
#: What nova-conductor logs at start here, as expected: no placement service
#: (nothing measured uses it) and no cell mappings (one main database).
EXPECTED_NOVA_ERRORS = re.compile(r"placement API failed|No cells are configured")


class NovaUnavailable(Exception):
    """Nova 34 cannot be installed or run here; the message says why."""


# -- Nova's virtualenv ----------------------------------------------------------

def _psycopg2_pin() -> str:
    """psycopg2-binary at the version novalet's constraints pin."""
    with open(os.path.join(ROOT, "constraints.txt")) as f:
        for line in f:
            if line.lower().startswith("psycopg2-binary=="):
                return line.strip()
    return "psycopg2-binary"


def ensure_nova_venv(path: str) -> str:
    """The Python of a virtualenv at ``path`` holding ``nova==34.0.0`` and a
    PostgreSQL driver; made (or completed) with pip when it does not."""
    python = os.path.join(path, "bin", "python")
    check = ("import importlib.metadata as m, psycopg2; "
             "assert m.version('nova') == %r" % NOVA_VERSION)
    if os.path.exists(python) and subprocess.run(
            [python, "-c", check], capture_output=True).returncode == 0:
        return python
    print("making Nova %s's virtualenv at %s (once; a few minutes)" % (NOVA_VERSION, path),
          flush=True)
    steps = [[sys.executable, "-m", "venv", path],
             [python, "-m", "pip", "install", "-q", "--upgrade", "pip"],
             [python, "-m", "pip", "install", "-q", "nova==%s" % NOVA_VERSION, _psycopg2_pin()]]
    for step in steps:
        try:
            result = subprocess.run(step, capture_output=True, text=True, timeout=1800)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise NovaUnavailable("%s: %s" % (" ".join(step[:4]), e)) from e
        if result.returncode != 0:
            lines = [line for line in (result.stderr + result.stdout).splitlines()
                     if "is ignored" not in line]
            raise NovaUnavailable("%s failed (exit %d): %s" % (
                " ".join(step[:5]), result.returncode, " / ".join(lines[-3:])))
    if subprocess.run([python, "-c", check], capture_output=True).returncode != 0:
        raise NovaUnavailable("nova %s not importable in %s after installing it"
                              % (NOVA_VERSION, path))
    return python


# -- Nova's conductor -------------------------------------------------------------

def start_nova(venv: str, url: str, tmp: str, stack: contextlib.ExitStack
               ) -> dict[str, Any]:
    """Nova's databases (its own schema) and ``nova-conductor`` (one worker)
    on ``url``'s vhost."""
    from tests import processes, services

    main_db = services.provision_database("postgresql", tmp)
    stack.callback(main_db.drop)
    api_db = services.provision_database("postgresql", tmp)
    stack.callback(api_db.drop)
    config = processes.write_config(os.path.join(tmp, "nova.conf"), {
        "DEFAULT": {"transport_url": url, "host": "nova-bench-conductor",
                    "state_path": tmp, "rpc_response_timeout": 60},
        "database": {"connection": main_db.url},
        "api_database": {"connection": api_db.url},
        "conductor": {"workers": 1},
        "oslo_concurrency": {"lock_path": os.path.join(tmp, "locks")},
        # nova-conductor asks for a placement endpoint at start and goes on
        # without one when it is unreachable (no object call uses it).
        "placement": {"auth_type": "none",
                      "endpoint_override": "http://127.0.0.1:9/placement"},
        "oslo_messaging_rabbit": {"rpc_conn_pool_size": 64}})
    bin_dir = os.path.join(venv, "bin")
    for command in ("api_db", "db"):
        result = subprocess.run([os.path.join(bin_dir, "nova-manage"), "--config-file", config,
                                 command, "sync"], capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise NovaUnavailable("nova-manage %s sync failed: %s" % (
                command, result.stderr.strip()[-2000:]))
    conductor = processes.ServiceProcess("nova-conductor", config,
                                         os.path.join(tmp, "nova-conductor.log"),
                                         bin_dir=bin_dir)
    stack.callback(conductor.stop)
    conductor.wait_for_log(r"Starting conductor node \(version %s\)" % NOVA_VERSION, 120)
    return {"config": config, "conductor": conductor, "db": main_db, "api_db": api_db}


# -- the run ------------------------------------------------------------------------

def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    nova_python = ensure_nova_venv(args.nova_venv)
    most = max(args.callers)
    servers = object_rpc.start_servers(argparse.Namespace(
        callers=args.callers, metrics=False, cases=["save()", "beat"]), stack)
    spec = servers["spec"]
    spec["cases"] = list(NOVALET_CASES)
    nova = start_nova(args.nova_venv, spec["url"], spec["tmp"], stack)
    spec_path = os.path.join(spec["tmp"], "nova-callers.json")
    with open(spec_path, "w") as f:
        json.dump(dict(spec, nova_config=nova["config"],
                       echo_exchange=object_rpc.ECHO_EXCHANGE), f)
    count = min(args.nova_processes, most)
    pool = callers_mod.CallerProcesses(
        [nova_python, "-c", "import sys; sys.path.insert(0, %r); import peer_nova_caller; "
         "sys.exit(peer_nova_caller.run(*sys.argv[1:]))" % BENCH_DIR,
         spec_path, str(-(-most // count))], count)
    stack.callback(pool.stop)
    calls, nodes = object_rpc.make_callers(spec, most, "t", stack)

    def runner(name: str, n: int, total: int, seconds: float
               ) -> tuple[list[float], float, float]:
        if name in NOVA_CASES:
            return pool.run(name, n, total, seconds)
        return callers_mod.run_threads(calls[name][:n], total, seconds)

    cases = [Case(name, runner) for name in NOVALET_CASES + NOVA_CASES]
    from novalet import context
    from novalet.objects import base as objects_base

    with open(os.path.join(spec["tmp"], "nova-caller-0.json")) as f:
        nova_bytes = json.load(f)["primitive_bytes"]
    print(object_rpc_report.environment())
    print("Nova %s in %s (its oslo.messaging %s)" % (
        NOVA_VERSION, args.nova_venv, subprocess.run(
            [nova_python, "-c", "import importlib.metadata as m; "
             "print(m.version('oslo.messaging'))"], capture_output=True,
            text=True).stdout.strip()))
    print("payload of raw: a ComputeNode primitive, novalet %d bytes, Nova %d bytes of JSON" % (
        len(json.dumps(objects_base.NovaletObjectSerializer().serialize_entity(
            context.get_admin_context(), nodes[0]))), nova_bytes))
    print("save(): ComputeNode.save() of memory_mb_used; beat: novalet "
          "ServiceList.report_heartbeats([id]), Nova report_count += 1; Service.save()")
    print("+s: signed with the host's key; nova: nova-conductor (workers=1), callers in %d "
          "process(es) of Nova's venv; novalet: novalet-conductor (workers=1), callers "
          "threads of this process" % count)
    groups = {
        "client": [os.getpid()], "nova-client": pool.pids,
        "echo": proc_cpu.process_tree(servers["echo"]),
        "conductor": proc_cpu.process_tree(servers["conductor"].proc.pid),
        "nova-conductor": proc_cpu.process_tree(nova["conductor"].proc.pid),
        "rabbitmq": proc_cpu.listening(5672, [int(pid) for pid in subprocess.run(
            ["pgrep", "-x", "beam.smp"], capture_output=True, text=True).stdout.split()])}
    for n in args.callers:
        for case in cases:
            case.run(n, args.warmup, 60)
        for _ in range(args.rounds):
            for case in cases:
                case.run(n, max(1, args.calls // args.rounds), args.seconds / args.rounds,
                         groups)
        report(cases, n)
    figures_ = summary(cases, args.callers)
    (beats,) = nova["db"].query(
        "SELECT count(*), min(report_count) FROM services WHERE \"binary\" = 'nova-compute'")
    print("Nova's services table: %d nova-compute records, fewest beats recorded %d" % tuple(beats))
    figures_["nova_beats_recorded_min"] = beats[1]
    errors = servers["conductor"].errors() + [
        line for line in nova["conductor"].errors() if not EXPECTED_NOVA_ERRORS.search(line)]
    if errors:
        print("conductors logged errors:\n  " + "\n  ".join(errors[:10]))
    return figures_


def _stats(cases: list[Case], name: str, n: int) -> Stats:
    return next(c for c in cases if c.name == name).by_callers[n]


def report(cases: list[Case], n: int) -> None:
    print("\n%d caller(s): %s" % (n, "ratio: to the side's own raw call; CPU: ms per call"))
    print("%-12s %6s %8s %7s %7s %6s %10s %8s" % (
        "case", "calls", "calls/s", "p50 ms", "p99 ms", "ratio", "conductor", "client"))
    for case in cases:
        stats = case.by_callers[n]
        raw_name, conductor = SIDE[case.name]
        cpu = stats.cpu_ms()
        client = cpu["nova-client"] if case.name in NOVA_CASES else cpu["client"]
        print("%-12s %6d %8.0f %7.2f %7.2f %5.2fx %10.2f %8.2f" % (
            case.name, len(stats.latencies), stats.rate, stats.percentile_ms(0.5),
            stats.percentile_ms(0.99), stats.rate / _stats(cases, raw_name, n).rate,
            cpu[conductor], client))
    raws = _stats(cases, "raw", n).rate, _stats(cases, "nova raw", n).rate
    if max(raws) > RAW_SPREAD * min(raws):
        print("WARNING: the two raw calls differ by over %.2fx (%.0f / %.0f calls/s): a busy "
              "machine; compare the ratios with care" % (RAW_SPREAD, *raws))
    for mine, theirs, target in PAIRS:
        ratio = [_stats(cases, name, n).rate / _stats(cases, SIDE[name][0], n).rate
                 for name in (mine, theirs)]
        cpus = [_stats(cases, name, n).cpu_ms()[SIDE[name][1]] for name in (mine, theirs)]
        verdict = "" if target is None else "  %s (target >= %.1fx)" % (
            "PASS" if ratio[0] >= target * ratio[1] else "MISS", target)
        print("%-9s / %-11s ratio %.2f / %.2f = %.2fx; conductor CPU %.2f / %.2f ms%s" % (
            mine, theirs, ratio[0], ratio[1], ratio[0] / ratio[1], cpus[0], cpus[1], verdict))


def summary(cases: list[Case], levels: list[int]) -> dict[str, Any]:
    print("\nsummary: calls/s, p99 ms, ratio to the side's raw at the same number of callers")
    print("%-12s %s" % ("case", "".join("%26s" % ("%d caller(s)" % n) for n in levels)))
    figures_: dict[str, Any] = {"callers": levels, "cases": {}}
    for case in cases:
        row = figures_["cases"][case.name] = {}
        cells = []
        for n in levels:
            stats = case.by_callers[n]
            raw_name, conductor = SIDE[case.name]
            ratio = stats.rate / _stats(cases, raw_name, n).rate
            row[str(n)] = {
                "calls": len(stats.latencies), "rate": stats.rate,
                "p50_ms": stats.percentile_ms(0.5), "p99_ms": stats.percentile_ms(0.99),
                "ratio_to_raw": ratio, "round_rates": stats.round_rates,
                "conductor_cpu_ms": stats.cpu_ms()[conductor],
                "cpu_ms_per_call": stats.cpu_ms()}
            cells.append("%7.0f %7.2f %6.2fx" % (stats.rate, stats.percentile_ms(0.99), ratio))
        print("%-12s %s" % (case.name, "".join("%26s" % c for c in cells)))
    return figures_


def plot(path: str, figures_: dict[str, Any],
         measured_on: dict[str, Any] | None = None) -> None:
    """Throughput, p99, the ratio to the side's raw call and the conductor's
    CPU per call, each case a line (``measured_on``: the JSON's machine,
    default now)."""
    levels = figures_["callers"]

    def line(key: str) -> list[figures.Series]:
        return figures.series(figures_["cases"], levels, key)
    figures.plot(path, "peer_nova: novalet beside Nova %s (dotted, squares), "
                 "each to its own raw call (+s: signed)" % NOVA_VERSION, [
                     ("concurrent callers", "calls/s", line("rate"), None),
                     ("concurrent callers", "p99 latency, ms", line("p99_ms"), None),
                     ("concurrent callers", "calls/s ÷ the side's raw at the same callers",
                      [s for s in line("ratio_to_raw") if "raw" not in s[0]], None),
                     ("concurrent callers", "conductor CPU ms per call",
                      [s for s in line("conductor_cpu_ms") if "raw" not in s[0]], None)],
                 log_x=True, measured_on=measured_on, columns=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=lambda v: [int(x) for x in v.split(",")],
                        default=[1, 8], help="concurrent callers, e.g. 1,8 (default): "
                        "the cases run at each number in turn")
    parser.add_argument("--calls", type=int, default=600,
                        help="calls per case and number of callers over all rounds "
                             "(default 600)")
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="time cap per case and number of callers over all rounds "
                             "(default 10)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="interleaved rounds of all cases (default 3)")
    parser.add_argument("--warmup", type=int, default=50,
                        help="warm-up calls per case and number of callers (default 50)")
    parser.add_argument("--nova-venv", default=DEFAULT_VENV, metavar="DIR",
                        help="Nova %s's virtualenv, made there if missing (default %s)"
                        % (NOVA_VERSION, DEFAULT_VENV))
    parser.add_argument("--nova-processes", type=int, default=1, metavar="P",
                        help="Nova caller processes (default 1; their callers are threads)")
    figures.add_arguments(parser)
    args = parser.parse_args()
    json_path, png_path = figures.paths(args, "peer_nova")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        try:
            figures_ = run(args, stack)
        except NovaUnavailable as e:
            print("Nova %s is unavailable: %s" % (NOVA_VERSION, e))
            return 0
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 0
    figures.write_json(json_path, "peer_nova", args, figures_)
    plot(png_path, figures_)
    return 0


if __name__ == "__main__":
    sys.exit(main())
