"""Every benchmark in ``benchmarks/`` still runs: each as a subprocess for a
few seconds with tiny sizes, all at once, on the machine's RabbitMQ (a vhost
of its own) and PostgreSQL (a database of its own); no private broker.

Asserted: it exits 0, prints its table and writes its JSON (and its PNG when
matplotlib is installed, else says it did not), and the figures that say it
ran as a deployment does (signed requests accepted). Never a speed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests import services
from tests.conftest import service_unavailable

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(400)]

BENCHMARKS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "benchmarks")

#: Each benchmark's tiny run: its arguments (a script run twice is named
#: ``script.py:mode`` the second time).
TINY: dict[str, list[str]] = {
    # Caller processes: their callers are threads (run_threads) as this
    # process's own are, so both ways of calling run.
    "object_rpc.py": ["--callers", "1,2", "--processes", "2", "--calls", "8", "--rounds", "1",
                      "--warmup", "2"],
    "fleet.py": ["--computes", "3", "--workers", "2", "--duration", "2",
                 "--report-interval", "1", "--observe-every", "1", "--mode", "separate",
                 "--retries", "0"],
    # The cheap generator: prepared signed requests over kombu, 2 conductor workers.
    "fleet.py:stream": ["--computes", "4", "--workers", "2", "--duration", "2",
                        "--report-interval", "1", "--observe-every", "1", "--mode", "stream",
                        "--conductor-workers", "2", "--retries", "0"],
    "scale_out.py": ["--shared", "--callers", "2", "--seconds", "1", "--rounds", "1"],
    # Nova 34 from its cached venv (made on first use: minutes, network).
    "peer_nova.py": ["--callers", "1,2", "--calls", "8", "--rounds", "1", "--warmup", "2"],
    "profile_conductor.py": ["--callers", "2", "--seconds", "2", "--warmup", "4",
                             "--cases", "save(),beat+s", "--rate", "200"],
}


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _benchmark_scripts() -> list[str]:
    """The scripts of benchmarks/ (a module with a ``__main__`` block)."""
    found = []
    for name in sorted(os.listdir(BENCHMARKS_DIR)):
        if name.endswith(".py"):
            with open(os.path.join(BENCHMARKS_DIR, name)) as f:
                if re.search(r'^if __name__ == "__main__":', f.read(), re.M):
                    found.append(name)
    return found


def test_every_benchmark_has_a_smoke_run() -> None:
    assert sorted({name.split(":")[0] for name in TINY}) == _benchmark_scripts()


def _check_services() -> None:
    for what, host, port in (("RabbitMQ", services.RABBIT_HOST, 5672),
                             ("PostgreSQL", "127.0.0.1", 5432)):
        try:
            socket.create_connection((host, port), timeout=2).close()
        except OSError:
            service_unavailable("%s not listening on %s:%d" % (what, host, port))
    if shutil.which("rabbitmqctl") is None:
        service_unavailable("rabbitmqctl not found (the benchmarks make vhosts)")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: Any) -> Iterator[dict[str, Callable[[], dict[str, Any]]]]:
    """All the benchmarks started at once; ``runs[name]()`` waits for one
    and returns its exit code, output and file paths."""
    _check_services()
    tmp = tmp_path_factory.mktemp("bench-smoke")
    # As a user runs them: without the test run's own deployment (its
    # master key and core-only apps, OS_* options that override files).
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    started: dict[str, Any] = {}
    for name, argv in TINY.items():
        script = name.split(":")[0]
        stem = os.path.splitext(script)[0] + name[len(script):].replace(":", "-")
        paths = {"json": str(tmp / (stem + ".json")), "png": str(tmp / (stem + ".png"))}
        log = open(tmp / (stem + ".log"), "w+")
        proc = subprocess.Popen(
            [sys.executable, os.path.join(BENCHMARKS_DIR, script), *argv,
             "--json", paths["json"], "--plot", paths["png"]],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            cwd=str(tmp), env=env, start_new_session=True)
        started[name] = (proc, log, paths)
    results: dict[str, dict[str, Any]] = {}

    def waiter(name: str) -> Callable[[], dict[str, Any]]:
        def wait() -> dict[str, Any]:
            if name not in results:
                proc, log, paths = started[name]
                try:
                    code = proc.wait(300)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    code = proc.wait(10)
                log.seek(0)
                results[name] = dict(paths, code=code, output=log.read())
            return results[name]
        return wait

    try:
        yield {name: waiter(name) for name in TINY}
    finally:
        for proc, log, _ in started.values():
            if proc.poll() is None:  # a test failed before waiting: stop it
                os.killpg(proc.pid, 15)
                try:
                    proc.wait(60)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, 9)
                    proc.wait(10)
            log.close()


def _finished(result: dict[str, Any], *tables: str) -> dict[str, Any]:
    """Exit 0, no traceback, the table's lines printed, the JSON written
    (and the PNG, or the line saying matplotlib is missing)."""
    output = result["output"]
    assert result["code"] == 0, output[-6000:]
    assert "Traceback" not in output, output[-6000:]
    for pattern in tables:
        assert re.search(pattern, output, re.M), (pattern, output[-6000:])
    with open(result["json"]) as f:
        figures = json.load(f)
    if _has_matplotlib():
        with open(result["png"], "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    else:
        assert "matplotlib is not installed" in output
        assert not os.path.exists(result["png"])
    return figures  # type: ignore[no-any-return]


def test_object_rpc(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    figures = _finished(
        runs["object_rpc.py"](),
        r"^summary: calls/s, p99 ms and ratio to raw",
        *(r"^%s\s+\d+\s+[\d.]+\s+[\d.]+x\s+\d+\s+[\d.]+\s+[\d.]+x$" % re.escape(case)
          for case in ("raw", "no-DB", "save()", "save()+s", "beat", "beat+s")),
        r"^  conductor CPU signed / unsigned: [\d.]+x (PASS|MISS) \(target <= 1\.15x\)$")
    assert figures["callers"] == [1, 2]
    for case in ("raw", "no-DB", "no-DB/1", "raw+DB", "save()", "beat", "no-DB+s", "save()+s",
                 "beat+s"):
        for callers in ("1", "2"):
            row = figures["cases"][case][callers]
            assert row["calls"] > 0, (case, callers)
            assert set(row["cpu_ms_per_call"]) >= {"client", "conductor", "echo"}


def test_fleet(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    figures = _finished(runs["fleet.py"](), r"^driver\s+N\s+beats/s",
                        r"^db separate\s+3\s")
    (row,) = figures["rows"]
    assert row["n"] == 3
    # Every compute beating with its own host's key (the conductor enforces
    # signatures: unsigned beats are refused and the records stay down).
    assert row["last_beat_by"] == {"host": 3}, row
    assert row["beats_recorded"] >= 3, row
    assert (row["failed"], row["down"]) == (0, 0), row


def test_fleet_stream(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    figures = _finished(runs["fleet.py:stream"](), r"^driver\s+N\s+beats/s",
                        r"^db stream\s+4\s")
    (row,) = figures["rows"]
    assert row["n"] == 4
    # Every beat a host's own signed call: the conductor verified and
    # recorded them (the records' last beats signed by their hosts).
    assert row["last_beat_by"] == {"host": 4}, row
    assert row["beats_recorded"] >= 4, row
    assert (row["failed"], row["down"]) == (0, 0), row
    assert figures["arguments"]["conductor_workers"] == 2


def test_scale_out(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    figures = _finished(runs["scale_out.py"](), r"^\| set-up \| calls/s",
                        r"^\| classic-shared, 1 conductor", r"^\| quorum-shared, 2 conductor")
    assert [r["set_up"] for r in figures["rows"]] == ["classic-shared", "quorum-shared"]
    assert all(r["calls"] > 0 for r in figures["rows"]), figures["rows"]


def test_peer_nova(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    result = runs["peer_nova.py"]()
    unavailable = re.search(r"^Nova 34\.0\.0 is unavailable: .*$", result["output"], re.M)
    if unavailable and result["code"] == 0:
        pytest.skip(unavailable.group(0))
    figures = _finished(
        result, r"^summary: calls/s, p99 ms, ratio to the side's raw",
        *(r"^%s\s+\d+\s+[\d.]+\s+[\d.]+x\s+\d+\s+[\d.]+\s+[\d.]+x$" % re.escape(case)
          for case in ("raw", "save()", "beat+s", "nova raw", "nova save()", "nova beat")),
        r"^save\(\)\s+/ nova save\(\) ratio [\d.]+ / [\d.]+ = [\d.]+x; conductor CPU")
    assert figures["callers"] == [1, 2]
    for case in ("raw", "save()", "save()+s", "beat", "beat+s", "nova raw", "nova save()",
                 "nova beat"):
        for callers in ("1", "2"):
            row = figures["cases"][case][callers]
            assert row["calls"] > 0, (case, callers)
            assert set(row["cpu_ms_per_call"]) >= {"conductor", "nova-conductor"}
    # Nova's heartbeats reached its database through nova-conductor.
    assert figures["nova_beats_recorded_min"] >= 1, figures


def test_profile_conductor(runs: dict[str, Callable[[], dict[str, Any]]]) -> None:
    result = runs["profile_conductor.py"]()
    figures = _finished(result, r"^save\(\) at 2 callers: \d+ calls",
                        r"^beat\+s at 2 callers: \d+ calls")
    assert list(figures["cases"]) == ["save()", "beat+s"]
    for row in figures["cases"].values():
        assert row["calls"] > 0, row
    spy = os.path.join(os.path.dirname(sys.executable), "py-spy")
    if not (os.path.exists(spy) or shutil.which("py-spy")):
        assert "py-spy is not installed" in result["output"]
        return
    for row in figures["cases"].values():
        # Samples of the conductor's own work: its RPC server's dispatcher
        # (or the manager, a few wrappers deeper, near tenth) is among the
        # ten largest total costs; a caller's process has neither.
        assert row["samples"] > 0, row
        assert any("(novalet/rpc/server.py)" in cost["function"]
                   or "(novalet/conductor/" in cost["function"]
                   for cost in row["total"]), row
        assert len(row["self"]) == len(row["total"]) == 10, row
