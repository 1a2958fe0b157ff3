"""CPU time of processes from /proc, for the benchmarks' CPU per call.
Not a benchmark itself (no ``__main__``)."""

from __future__ import annotations

import contextlib
import os

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: [0] state, [1] ppid, [11] utime..."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def process_tree(root: int) -> list[int]:
    """``root`` and every process below it."""
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


def listening(port: int, candidates: list[int]) -> list[int]:
    """The processes of ``candidates`` that listen on TCP ``port`` (e.g.
    the machine's RabbitMQ among every ``beam.smp``, private test brokers too)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table) as f:
            for line in f.readlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add("socket:[%s]" % fields[9])
    found = []
    for pid in candidates:
        with contextlib.suppress(OSError):
            fd_dir = "/proc/%d/fd" % pid
            if any(os.readlink(os.path.join(fd_dir, fd)) in inodes
                   for fd in os.listdir(fd_dir)):
                found.append(pid)
    return found
