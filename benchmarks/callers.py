"""Concurrent callers for ``object_rpc.py``: threads of one process, or
threads spread over caller processes (where one process's GIL would limit
them). Not a benchmark itself (no ``__main__``).

A caller process is ``object_rpc.py --caller-process``: it builds its own
callers (objects, clients) and then runs one case per line it reads::

    {"case": "save()", "threads": 4, "calls": 400, "seconds": 6.0}

and answers with one line: ``{"latencies": [...], "start": t0, "end": t1}``
(wall-clock times, so the parent can take the span over all processes).
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO


def run_threads(calls: list[Callable[[], Any]], total: int, seconds: float
                ) -> tuple[list[float], float, float]:
    """Each of ``calls`` in its own thread, all together, until ``total``
    calls were made or ``seconds`` passed; returns (latencies, start, end) in
    wall-clock seconds. An error in a call stops its thread and is raised."""
    taken = itertools.count()  # next() is atomic under the GIL
    per_thread: list[list[float]] = [[] for _ in calls]
    errors: list[BaseException] = []
    ready = threading.Barrier(len(calls) + 1)
    deadline = [0.0]

    def caller(call: Callable[[], Any], mine: list[float]) -> None:
        ready.wait()
        try:
            while next(taken) < total:
                t0 = time.perf_counter()
                if t0 >= deadline[0]:
                    break
                call()
                mine.append(time.perf_counter() - t0)
        except BaseException as e:  # noqa: B036  (re-raised by the caller)
            errors.append(e)

    threads = [threading.Thread(target=caller, args=(call, mine), daemon=True)
               for call, mine in zip(calls, per_thread, strict=True)]
    for thread in threads:
        thread.start()
    start = time.time()
    deadline[0] = time.perf_counter() + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    end = time.time()
    if errors:
        raise errors[0]
    return [x for mine in per_thread for x in mine], start, end


def serve(calls: dict[str, list[Callable[[], Any]]], answers: TextIO) -> int:
    """A caller process's loop: run what each line of stdin asks (see the
    module's docstring), answer on ``answers`` (the process's stdout, which
    nothing else may print to); return at end of input."""
    print("ready", file=answers, flush=True)
    for line in sys.stdin:
        order = json.loads(line)
        latencies, start, end = run_threads(
            calls[order["case"]][:order["threads"]], order["calls"], order["seconds"])
        print(json.dumps({"latencies": latencies, "start": start, "end": end}),
              file=answers, flush=True)
    return 0


class CallerProcesses:
    """``count`` caller processes started with ``argv`` (each gets its index
    as the last argument); ``run`` spreads a case's callers over them."""

    def __init__(self, argv: list[str], count: int) -> None:
        self.procs = [subprocess.Popen([*argv, str(i)], stdin=subprocess.PIPE,
                                       stdout=subprocess.PIPE, text=True,
                                       start_new_session=True)
                      for i in range(count)]
        for proc in self.procs:
            self._expect(proc, "ready")

    @property
    def pids(self) -> list[int]:
        return [proc.pid for proc in self.procs]

    def _expect(self, proc: subprocess.Popen[str], word: str) -> str:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith(word):
            raise RuntimeError("caller process %d: expected %r, got %r (exit %s)" % (
                proc.pid, word, line[:200], proc.poll()))
        return line

    def run(self, case: str, callers: int, total: int, seconds: float
            ) -> tuple[list[float], float, float]:
        """``callers`` callers of ``case`` over the processes (as even as
        can be); returns (latencies, first start, last end)."""
        used = self.procs[:min(callers, len(self.procs))]
        for i, proc in enumerate(used):
            threads = callers // len(used) + (i < callers % len(used))
            assert proc.stdin is not None
            proc.stdin.write(json.dumps({
                "case": case, "threads": threads, "seconds": seconds,
                "calls": total * threads // callers + (i == 0) * (total % callers)}) + "\n")
            proc.stdin.flush()
        answers = [json.loads(self._expect(proc, "{")) for proc in used]
        return ([x for a in answers for x in a["latencies"]],
                min(a["start"] for a in answers), max(a["end"] for a in answers))

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
            if proc.stdout is not None:
                proc.stdout.close()
