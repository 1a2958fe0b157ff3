"""Load under a fault, every operation recorded, and the invariants after it.

Three workers call the conductor the way a compute does (the ``rpc``
indirection over the cluster), each sequentially, and record every call as
``ok``, ``failed`` (a typed error: the write may or may not have happened)
or ``unknown`` (no answer within the timeout):

* ``heartbeat``: ``ServiceList.report_heartbeats([id])`` of one service;
  afterwards acknowledged <= growth of ``report_count`` <= attempted.
* ``save``: ``ComputeNode.save()`` of ``current_workload = n``, n rising;
  afterwards the row holds the newest acknowledged value or a value sent
  after it (or one of the unanswered ones, which may land late).
* ``create``: ``Instance.create()`` of a new instance tagged ``node =
  <tag>-<n>``, the same object resent (same uuid) up to twice when the
  answer is lost; afterwards every acknowledged create is there exactly
  once, no tag appears twice and no row carries a tag nobody sent.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from typing import Any

from novalet import exception, objects

#: Errors a call may end with during a fault: the answer was an error.
FAILED = (exception.RPCUnavailable, exception.DatabaseUnavailable)


@dataclasses.dataclass
class Op:
    kind: str
    value: Any
    outcome: str = "pending"
    error: str = ""
    started: float = 0.0
    seconds: float = 0.0
    attempts: int = 0


class Recorder:
    def __init__(self) -> None:
        self.ops: list[Op] = []
        self._lock = threading.Lock()

    def run(self, kind: str, value: Any, fn: Callable[[], Any],
            attempts: int = 1) -> Op:
        op = Op(kind, value, started=time.monotonic())
        with self._lock:
            self.ops.append(op)
        for _ in range(attempts):
            op.attempts += 1
            try:
                fn()
                op.outcome = "ok"
                break
            except exception.RPCTimeout:
                op.outcome = "unknown"
            except FAILED as e:
                op.outcome, op.error = "failed", type(e).__name__
                break
            except Exception as e:  # a bug: recorded, the check fails
                op.outcome, op.error = "error", "%s: %s" % (type(e).__name__, e)
                break
        op.seconds = time.monotonic() - op.started
        return op

    def of(self, kind: str) -> list[Op]:
        with self._lock:
            return [op for op in self.ops if op.kind == kind]

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        with self._lock:
            for op in self.ops:
                key = "%s_%s" % (op.kind, op.outcome)
                result[key] = result.get(key, 0) + 1
        return result


class Load:
    """The three workers; ``stop()`` returns once every call has ended."""

    def __init__(self, ctxt: Any, service: Any, node: Any, tag: str,
                 pause: float = 0.1) -> None:
        self.ctxt = ctxt
        self.service = service
        self.node = node
        self.tag = tag
        self.pause = pause
        self.recorder = Recorder()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=fn, daemon=True, name=name)
                         for name, fn in (("load-heartbeat", self._beats),
                                          ("load-save", self._saves),
                                          ("load-create", self._creates))]
        self._seq = int(node.current_workload or 0)

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 60) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)
            if t.is_alive():
                raise AssertionError("load worker %s hangs" % t.name)

    def _loop(self, body: Callable[[], None]) -> None:
        while not self._stop.is_set():
            body()
            self._stop.wait(self.pause)

    def _beats(self) -> None:
        ids = [self.service.id]
        self._loop(lambda: self.recorder.run(
            "heartbeat", None,
            lambda: objects.ServiceList.report_heartbeats(self.ctxt, ids)))

    def _saves(self) -> None:
        def one() -> None:
            self._seq += 1
            value = self._seq

            def save() -> None:
                self.node.current_workload = value
                self.node.save()

            self.recorder.run("save", value, save)
        self._loop(one)

    def _creates(self) -> None:
        seq = iter(range(1, 10**9))

        def one() -> None:
            tag = "%s-%d" % (self.tag, next(seq))
            inst = objects.Instance(self.ctxt, host="faultload", node=tag,
                                    vcpus=1, memory_mb=1)
            # create() gives the object its uuid here, before it is sent,
            # so the resends carry the same one.
            op = self.recorder.run("create", (tag, None), inst.create,
                                   attempts=3)
            op.value = (tag, inst.uuid if inst.obj_attr_is_set("uuid")
                        else None)
        self._loop(one)


@dataclasses.dataclass
class Verdict:
    """What the checks found; ``problems`` empty means every invariant held."""

    problems: list[str]
    figures: dict[str, Any]


def check(recorder: Recorder, db: Any, service_id: int, node_id: int,
          tag: str, report_count_before: int) -> Verdict:
    """The invariants, read straight from the database (``db.query``)."""
    problems: list[str] = []
    lost = 0
    errors = [op for op in recorder.ops if op.outcome == "error"]
    for op in errors[:5]:
        problems.append("%s raised %s" % (op.kind, op.error))

    beats = recorder.of("heartbeat")
    acked = sum(op.outcome == "ok" for op in beats)
    [(count,)] = db.query("SELECT report_count FROM services WHERE id = :i",
                          i=service_id)
    grown = count - report_count_before
    if not acked <= grown <= len(beats):
        problems.append("report_count grew by %d: acknowledged %d, attempted %d"
                        % (grown, acked, len(beats)))
        lost += max(0, acked - grown)

    saves = recorder.of("save")
    [(final,)] = db.query(
        "SELECT current_workload FROM compute_nodes WHERE id = :i", i=node_id)
    ok_values = [op.value for op in saves if op.outcome == "ok"]
    if ok_values:
        newest = max(ok_values)
        late = {op.value for op in saves if op.outcome in ("unknown", "failed")}
        if final is None or (final < newest and final not in late):
            problems.append("save: row holds %s, newest acknowledged %d"
                            % (final, newest))
            lost += 1
    if saves and final is not None and final > max(op.value for op in saves):
        problems.append("save: row holds %s, never sent" % final)

    creates = recorder.of("create")
    rows = db.query("SELECT node, uuid FROM instances WHERE host = 'faultload'"
                    " AND node LIKE :t AND deleted = 0", t=tag + "-%")
    by_tag: dict[str, list[str]] = {}
    for node, uuid in rows:
        by_tag.setdefault(node, []).append(uuid)
    sent = {op.value[0]: op for op in creates}
    for node, uuids in by_tag.items():
        if len(uuids) > 1:
            problems.append("create %s made %d rows" % (node, len(uuids)))
        if node not in sent:
            problems.append("row %s was never sent" % node)
    for op in creates:
        node, uuid = op.value
        if op.outcome == "ok" and by_tag.get(node) != [uuid]:
            problems.append("acknowledged create %s: rows %s" % (
                node, by_tag.get(node)))
            lost += 1
    figures = dict(recorder.counts(), acknowledged_lost=lost,
                   longest_call_s=round(max(
                       (op.seconds / op.attempts for op in recorder.ops),
                       default=0.0), 2),
                   retried_creates=sum(op.attempts > 1 for op in creates),
                   duplicate_rows=sum(len(u) - 1 for u in by_tag.values()))
    return Verdict(problems, figures)
