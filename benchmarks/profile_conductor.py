"""Where the conductor's time goes: py-spy profiles of ``novalet-conductor``
serving one case at a time, at N concurrent callers.

``object_rpc.py``'s set-up (its functions): a private PostgreSQL database and
RabbitMQ vhost, one ``novalet-conductor`` (workers=1, a master key, ``[auth]
enforce = false``) and callers as threads of this process. For each case
(``save()``, ``beat``, and both signed with a host's key: ``save()+s``,
``beat+s``): a warm-up, then ``py-spy record --gil --format raw`` on every
process of the conductor while the callers run the case for ``--seconds``.
``--gil``: a sample is taken only from the thread holding the GIL, so the
samples are the conductor's Python work (time in C code that releases the
GIL, e.g. waiting on a socket or on PostgreSQL, is not in them).

Printed per case: the calls, the conductor's CPU per call (/proc), the
samples, and the ten largest self costs (the function on top of the stack)
and total costs (the function anywhere in the stack; thread start-up frames
left out), each as a share of the samples and as ms of the conductor's
GIL-held time per call. The raw stacks stay in ``--out DIR``
(``<case>-<pid>.txt``: one collapsed stack per line and its count, the input
of flamegraph.pl or speedscope.app). Exits 0.

    python benchmarks/profile_conductor.py [--callers 8] [--seconds 20]
        [--cases save(),beat,save()+s,beat+s] [--rate 100] [--out DIR]
        [--json PATH] [--plot PATH]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(BENCH_DIR))

# isort: off
import novalet  # noqa: E402,F401  (first: selects oslo.service's threading backend)
import callers as callers_mod  # noqa: E402
import figures  # noqa: E402
import object_rpc  # noqa: E402
import object_rpc_report  # noqa: E402
import proc_cpu  # noqa: E402
# isort: on

CASES = ["save()", "beat", "save()+s", "beat+s"]
TOP = 10
#: Frames every stack of a worker thread has: left out of the total costs.
PLUMBING = re.compile(r"\((threading|futurist/_thread|futurist/_utils)\.py\)$")
_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def py_spy() -> str | None:
    """py-spy next to this Python (the ``bench`` extra), or on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "py-spy")
    return here if os.path.exists(here) else shutil.which("py-spy")


def short(frame: str) -> str:
    """``func (package/module.py:123)`` -> ``func (package/module.py)``: one
    name per function, whatever the line (py-spy already shortens the file
    names to their package part)."""
    return _FRAME_LINE.sub(")", frame)


def read_stacks(paths: list[str]) -> collections.Counter[tuple[str, ...]]:
    """py-spy's raw format (``frame;frame;... count``, outermost first) of
    every file in ``paths`` that exists."""
    stacks: collections.Counter[tuple[str, ...]] = collections.Counter()
    for path in paths:
        with contextlib.suppress(FileNotFoundError), open(path) as f:
            for line in f:
                match = _LINE.match(line.rstrip("\n"))
                if match:
                    frames = tuple(short(f) for f in match.group(1).split(";"))
                    frames = frames[1:] if frames[0].startswith("process ") else frames
                    stacks[frames] += int(match.group(2))
    return stacks


def costs(stacks: collections.Counter[tuple[str, ...]]) -> tuple[
        list[tuple[str, int]], list[tuple[str, int]], int]:
    """(largest self costs, largest total costs, samples)."""
    own: collections.Counter[str] = collections.Counter()
    total: collections.Counter[str] = collections.Counter()
    for frames, count in stacks.items():
        own[frames[-1]] += count
        for frame in set(frames):
            if not PLUMBING.search(frame):
                total[frame] += count
    return own.most_common(TOP), total.most_common(TOP), sum(stacks.values())


def record(spy: str, pids: list[int], out: str, case: str, rate: int
           ) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    safe = re.sub(r"[^\w+]", "", case)
    paths = [os.path.join(out, "%s-%d.txt" % (safe, pid)) for pid in pids]
    procs = [subprocess.Popen([spy, "record", "--pid", str(pid), "--gil", "--nonblocking",
                               "--format", "raw", "--rate", str(rate), "--output", path],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for pid, path in zip(pids, paths, strict=True)]
    time.sleep(1.0)  # attached before the measured calls start
    return procs, paths


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # py-spy writes its file on SIGINT
    for proc in procs:
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def print_costs(title: str, rows: list[tuple[str, int]], samples: int, calls: int,
                rate: int) -> list[dict[str, Any]]:
    print("  %-7s %6s %8s  function (module)" % (title, "share", "ms/call"))
    found = []
    for frame, count in rows:
        ms = count / rate * 1000 / max(1, calls)
        print("  %-7s %5.1f%% %8.3f  %s" % ("", 100 * count / samples, ms, frame))
        found.append({"function": frame, "samples": count, "share": count / samples,
                      "ms_per_call": ms})
    return found


def run(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    spy = py_spy()
    servers = object_rpc.start_servers(argparse.Namespace(
        callers=[args.callers], metrics=False, cases=["save()", "beat"]), stack)
    spec = servers["spec"]
    spec["cases"] = list(args.cases)
    calls, _ = object_rpc.make_callers(spec, args.callers, "t", stack)
    conductor = proc_cpu.process_tree(servers["conductor"].proc.pid)
    os.makedirs(args.out, exist_ok=True)
    print(object_rpc_report.environment())
    print("novalet-conductor (workers=1, processes %s); %d callers, threads of this process; "
          "py-spy %s at %d Hz, --gil" % (conductor, args.callers, spy or "(missing)", args.rate))
    if spy is None:
        print("py-spy is not installed (pip install -e '.[bench]'): the cases run, "
              "no profile is taken")
    result: dict[str, Any] = {"callers": args.callers, "rate": args.rate, "cases": {}}
    for case in args.cases:
        runner = calls[case][:args.callers]
        callers_mod.run_threads(runner, args.warmup, 60)
        procs, paths = record(spy, conductor, args.out, case, args.rate) if spy else ([], [])
        cpu_before = proc_cpu.cpu_seconds({"conductor": conductor})["conductor"]
        try:
            latencies, start, end = callers_mod.run_threads(runner, 10 ** 9, args.seconds)
        finally:
            cpu = proc_cpu.cpu_seconds({"conductor": conductor})["conductor"] - cpu_before
            stop(procs)
        done = len(latencies)
        row: dict[str, Any] = {"calls": done, "rate": done / (end - start),
                               "conductor_cpu_ms": cpu * 1000 / max(1, done),
                               "stacks": paths}
        result["cases"][case] = row
        print("\n%s at %d callers: %d calls, %.0f calls/s, conductor CPU %.2f ms per call" % (
            case, args.callers, done, row["rate"], row["conductor_cpu_ms"]))
        if not spy:
            continue
        own, total, samples = costs(read_stacks(paths))
        row["samples"] = samples
        print("  %d samples holding the GIL = %.2f ms per call (of %.2f ms CPU)" % (
            samples, samples / args.rate * 1000 / max(1, done), row["conductor_cpu_ms"]))
        if not samples:
            print("  no samples (py-spy could not attach? try as root)")
            continue
        row["self"] = print_costs("self", own, samples, done, args.rate)
        row["total"] = print_costs("total", total, samples, done, args.rate)
    return result


def plot(path: str, result: dict[str, Any]) -> None:
    """The largest self costs of each case, as bars (ms per call)."""
    cases = [(name, row["self"]) for name, row in result["cases"].items() if row.get("self")]
    try:
        import matplotlib
    except ImportError:
        print("plot: matplotlib is not installed (pip install -e '.[bench]'): no PNG, "
              "the figures are in the JSON")
        return
    matplotlib.use("Agg")
    from matplotlib import pyplot

    fig, axes = pyplot.subplots(max(1, len(cases)), 1, squeeze=False,
                                figsize=(11, 0.35 * TOP * max(1, len(cases)) + 1))
    for ax, (name, rows) in zip(axes[:, 0], cases, strict=False):
        labels = [r["function"][:90] for r in reversed(rows)]
        ax.barh(labels, [r["ms_per_call"] for r in reversed(rows)])
        ax.set_title("%s: self cost, conductor ms (GIL held) per call" % name, fontsize="small")
        ax.tick_params(axis="y", labelsize="x-small")
    fig.suptitle("profile_conductor: %d callers" % result["callers"], fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    print("plot: %s" % path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--callers", type=int, default=8,
                        help="concurrent callers, threads of this process (default 8)")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="profiled seconds per case (default 20)")
    parser.add_argument("--warmup", type=int, default=200,
                        help="warm-up calls per case, not profiled (default 200)")
    parser.add_argument("--cases", type=lambda v: v.split(","), default=CASES,
                        help="cases, of %s (default: all)" % ",".join(CASES))
    parser.add_argument("--rate", type=int, default=100,
                        help="py-spy samples per second (default 100)")
    parser.add_argument("--out", default="profile_conductor", metavar="DIR",
                        help="where the raw stacks go (default ./profile_conductor)")
    figures.add_arguments(parser)
    args = parser.parse_args()
    unknown = set(args.cases) - set(CASES)
    if unknown:
        parser.error("unknown case(s) %s; known: %s" % (", ".join(sorted(unknown)),
                                                        ", ".join(CASES)))
    json_path, png_path = figures.paths(args, "profile_conductor")
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.default_int_handler)
    with contextlib.ExitStack() as stack:
        try:
            result = run(args, stack)
        except KeyboardInterrupt:
            print("interrupted; cleaning up", file=sys.stderr)
            return 0
    figures.write_json(json_path, "profile_conductor", args, result)
    plot(png_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
