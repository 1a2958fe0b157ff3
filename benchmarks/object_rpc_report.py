"""Measuring and reporting for ``object_rpc.py``: each case's figures at
each number of callers, the tables, the JSON's figures and the plot. Not a
benchmark itself (no ``__main__``)."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Callable
from importlib import metadata
from typing import Any

import figures
import proc_cpu

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: Ratio to raw each novalet case aims at (issue 26: at 1 and at 8 callers;
#: a heartbeat, signed, at 0.5).
TARGETS = {"no-DB": 0.85, "save()": 0.6, "beat": 0.5}
#: Conductor CPU per call, signed / unsigned, each case aims at (issue 26,
#: deliverable 3; issue 22, deliverable 6).
SIGNED_CPU_TARGETS = {"save()": 1.1, "beat": 1.15}


# -- measuring -----------------------------------------------------------------

class Stats:
    """One case at one concurrency: latencies, per-round rates, CPU use."""

    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.elapsed = 0.0
        self.round_rates: list[float] = []
        self.cpu: dict[str, float] = {}

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000

    def cpu_ms(self) -> dict[str, float]:
        """CPU ms per call of each process group."""
        return {k: v * 1000 / max(1, len(self.latencies)) for k, v in self.cpu.items()}


class Case:
    """One kind of call, run by N concurrent callers (``runner``)."""

    def __init__(self, name: str, runner: Runner) -> None:
        self.name = name
        self.runner = runner
        self.by_callers: dict[int, Stats] = {}

    def run(self, callers: int, calls: int, seconds: float,
            groups: dict[str, list[int]] | None = None) -> None:
        """``calls`` calls (at most ``seconds``) over ``callers`` callers;
        recorded unless ``groups`` is None (a warm-up)."""
        cpu_before = proc_cpu.cpu_seconds(groups or {})
        latencies, start, end = self.runner(self.name, callers, calls, seconds)
        if groups is None:
            return
        stats = self.by_callers.setdefault(callers, Stats())
        stats.elapsed += end - start
        stats.latencies.extend(latencies)
        stats.round_rates.append(len(latencies) / (end - start))
        for name, used in proc_cpu.cpu_seconds(groups).items():
            stats.cpu[name] = stats.cpu.get(name, 0.0) + used - cpu_before[name]


#: (case, callers, calls, seconds) -> (latencies, start, end)
Runner = Callable[[str, int, int, float], tuple[list[float], float, float]]


def report(cases: list[Case], callers: int) -> None:
    baseline = cases[0].by_callers[callers]
    print("%-8s %6s %8s %7s %7s %6s  %s" % (
        "case", "calls", "calls/s", "p50 ms", "p99 ms", "ratio", "round calls/s"))
    for case in cases:
        stats = case.by_callers[callers]
        ratio = stats.rate / baseline.rate
        target = TARGETS.get(case.name)
        verdict = "" if target is None else "  %s (target >= %.2fx)" % (
            "PASS" if ratio >= target else "MISS", target)
        print("%-8s %6d %8.0f %7.2f %7.2f %5.2fx  %-16s%s" % (
            case.name, len(stats.latencies), stats.rate, stats.percentile_ms(0.5),
            stats.percentile_ms(0.99), ratio,
            "%.0f-%.0f" % (min(stats.round_rates), max(stats.round_rates)), verdict))
    print("CPU ms per call, by process (an idle process's own use included):")
    for case in cases:
        per_call = case.by_callers[callers].cpu_ms()
        print("  %-8s %s  total %.2f" % (case.name, "  ".join(
            "%s %.2f" % item for item in per_call.items()), sum(per_call.values())))
    by_name = {c.name: c.by_callers[callers] for c in cases}
    raw = by_name["raw"]
    for name in TARGETS:
        for suffix, what in (("+m", "with metrics / without"), ("+s", "signed / unsigned")):
            if name in by_name and name + suffix in by_name:
                plain, other = by_name[name], by_name[name + suffix]
                cpu: list[float] = [s.cpu_ms().get(group, 0.0) for group in (
                    "client", "conductor") for s in (plain, other)]
                print("%s %s: %.3fx (ratio to raw %.2f -> %.2f); CPU ms per call "
                      "client %.3f -> %.3f, conductor %.3f -> %.3f" % (
                          name, what, other.rate / plain.rate, plain.rate / raw.rate,
                          other.rate / raw.rate, *cpu))
                target = SIGNED_CPU_TARGETS.get(name) if suffix == "+s" else None
                if target is not None and cpu[2]:
                    print("  conductor CPU signed / unsigned: %.3fx %s (target <= %.2fx)" % (
                        cpu[3] / cpu[2], "PASS" if cpu[3] / cpu[2] <= target else "MISS",
                        target))
    if "raw+DB" in by_name and "save()" in by_name:
        print("save() / raw+DB: %.2fx (the same database write, with and without novalet's "
              "objects, serializer and dispatcher); raw+DB / raw: %.2fx" % (
                  by_name["save()"].rate / by_name["raw+DB"].rate,
                  by_name["raw+DB"].rate / raw.rate))
    if any(max(s.round_rates) > 1.5 * min(s.round_rates) for s in by_name.values()):
        print("WARNING: a case's rate varied over 1.5x between rounds (a busy machine?): "
              "treat PASS/MISS as unreliable; the CPU figures are steadier")


def summary(cases: list[Case], levels: list[int]) -> dict[str, Any]:
    """Every case at every concurrency against raw at the same one: printed
    as one table, returned for the JSON."""
    print("\nsummary: calls/s, p99 ms and ratio to raw at the same number of callers")
    print("%-8s %s" % ("case", "".join("%26s" % ("%d caller(s)" % n) for n in levels)))
    figures_: dict[str, Any] = {}
    for case in cases:
        row = figures_[case.name] = {}
        cells = []
        for n in levels:
            stats, raw = case.by_callers[n], cases[0].by_callers[n]
            row[str(n)] = {
                "calls": len(stats.latencies), "rate": stats.rate,
                "p50_ms": stats.percentile_ms(0.5), "p99_ms": stats.percentile_ms(0.99),
                "ratio_to_raw": stats.rate / raw.rate, "round_rates": stats.round_rates,
                "cpu_ms_per_call": stats.cpu_ms()}
            cells.append("%7.0f %7.2f %6.2fx" % (stats.rate, stats.percentile_ms(0.99),
                                                 stats.rate / raw.rate))
        print("%-8s %s" % (case.name, "".join("%26s" % c for c in cells)))
    return figures_


def plot(path: str, figures_: dict[str, Any], levels: list[int], mode: str,
         measured_on: dict[str, Any] | None = None) -> None:
    """Throughput, p99 and the ratio to raw at the same number of callers,
    each case a line (``measured_on``: the JSON's machine, default now)."""
    def line(key: str) -> list[figures.Series]:
        return figures.series(figures_, levels, key)
    figures.plot(path, "object_rpc: novalet beside raw oslo.messaging, callers as %s "
                 "(+s: signed)" % mode, [
                     ("concurrent callers", "calls/s", line("rate"), None),
                     ("concurrent callers", "p99 latency, ms", line("p99_ms"), None),
                     ("concurrent callers", "calls/s ÷ raw's at the same callers",
                      [s for s in line("ratio_to_raw") if s[0] != "raw"], None)],
                 log_x=True, measured_on=measured_on)


def environment() -> str:
    git = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                         capture_output=True, text=True).stdout.strip()
    return "env: %d CPUs, load %s, Python %s, %s, novalet %s" % (
        os.cpu_count() or 0, "/".join("%.2f" % x for x in os.getloadavg()),
        platform.python_version(), ", ".join("%s %s" % (dist, metadata.version(dist)) for dist in (
            "oslo.messaging", "oslo.versionedobjects", "SQLAlchemy", "kombu")), git or "?")
