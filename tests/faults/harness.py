"""One fault, end to end: load starts, the fault is injected and healed
under load, the time until every compute heartbeats again is measured, the
load stops and every invariant is checked (``run_fault``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_concurrency import lockutils  # noqa: F401

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, servicegroup
from novalet.compute import rpcapi as compute_rpcapi
from tests.faults import conftest as world
from tests.faults import load as load_mod


def configure_client(conf: Any, stack: world.Stack) -> None:
    """This test process calls the conductors the way a compute does."""
    conf("transport_url", stack.transport_url())
    conf("connection", stack.multi_host_url(), "database")
    conf("indirection", "rpc", "objects")
    conf("rpc_response_timeout", world.RPC_TIMEOUT)
    conf("report_interval", world.REPORT_INTERVAL)
    conf("service_down_time", world.SERVICE_DOWN_TIME)
    for name, value in world.rabbit_options(stack.host("load"),
                                            "faultload").items():
        conf(name, value, "oslo_messaging_rabbit")
    conf("lock_path", os.path.join(stack.dir, "state-load", "lock"),
         "oslo_concurrency")  # registered by lockutils' import
    indirection.configure(novalet_conf.CONF)


def load_records(ctxt: Any) -> tuple[Any, Any]:
    """The Service and ComputeNode the load writes (made once)."""
    try:
        service = objects.Service.get_by_host_and_binary(
            ctxt, "faultload", "novalet-load")
    except exception.ServiceNotFound:
        service = objects.Service(ctxt, host="faultload",
                                  binary="novalet-load", topic="load")
        service.create()
    try:
        node = objects.ComputeNode.get_by_host_and_nodename(
            ctxt, "faultload", "faultload-node")
    except exception.ComputeHostNotFound:
        node = objects.ComputeNode(
            ctxt, host="faultload", hypervisor_hostname="faultload-node",
            vcpus=1, memory_mb=1, local_gb=1, hypervisor_type="fake",
            hypervisor_version=1, cpu_info="{}", current_workload=0)
        node.create()
    return service, node


def retry_unknown(fn: Callable[[], Any], attempts: int = 4) -> Any:
    """Call ``fn``; resend while its answer is lost or the service is
    briefly unavailable (bounded)."""
    for attempt in range(attempts):
        try:
            return fn()
        except (exception.RPCTimeout, exception.RPCUnavailable,
                exception.DatabaseUnavailable):
            if attempt == attempts - 1:
                raise
            time.sleep(1)
    return None


def wait_heartbeats(stack: world.Stack, since: float, timeout: float) -> float:
    """Seconds from ``since`` until every compute's ``report_count`` grew
    past what it was when this was called."""
    start = stack.compute_counts()
    deadline = time.monotonic() + timeout
    grown: dict[str, float] = {}
    while time.monotonic() < deadline:
        try:
            now = stack.compute_counts()
        except Exception:  # the database itself may still be coming back
            now = {}
        for host, count in now.items():
            if host not in grown and count > start.get(host, -1):
                grown[host] = time.monotonic()
        if len(grown) == len(start):
            return max(grown.values()) - since
        time.sleep(0.1)
    missing = sorted(set(start) - set(grown))
    raise AssertionError("computes %s did not heartbeat within %ss of the "
                         "fault's end" % (missing, timeout))


class HeartbeatWatch:
    """Polls every compute's ``report_count`` from the fault's start; the
    longest time any compute went without a heartbeat landing."""

    def __init__(self, stack: world.Stack) -> None:
        self.stack = stack
        self.last: dict[str, tuple[int, float]] = {}
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="heartbeat-watch")

    def start(self) -> None:
        now = time.monotonic()
        self.last = {h: (c, now) for h, c in self.stack.compute_counts().items()}
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            try:
                counts = self.stack.compute_counts()
            except Exception:  # the database itself may be down
                continue
            now = time.monotonic()
            for host, count in counts.items():
                seen, since = self.last.get(host, (count, now))
                if count != seen:
                    self.longest = max(self.longest, now - since)
                    self.last[host] = (count, now)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join(10)
        now = time.monotonic()
        for _count, since in self.last.values():
            self.longest = max(self.longest, now - since)
        return self.longest


def check_computes(stack: world.Stack, ctxt: Any) -> list[str]:
    """No live compute is down; a call reaches every compute and its
    resource tracker claims (so no lock is stuck)."""
    problems = []
    sg = servicegroup.API(novalet_conf.CONF)
    states = retry_unknown(lambda: sg.get_all(ctxt, "novalet-compute"))
    for svc, up in states:
        if not up:
            problems.append("compute %s reported down" % svc.host)
    api = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    for name in world.COMPUTES:
        host = stack.host(name)
        inst = objects.Instance(ctxt, vcpus=1, memory_mb=16, root_gb=0)
        retry_unknown(inst.create)
        node = host + "-node-1"
        for _attempt in range(3):
            try:
                built = api.build_instance(ctxt, inst, host, node)
                break
            except (exception.RPCTimeout, exception.RPCUnavailable):
                # The call or its answer was lost: look before resending.
                built = objects.Instance.get_by_uuid(ctxt, inst.uuid)
                if built.vm_state == "active":
                    break
        else:
            problems.append("build_instance never reached %s" % host)
            continue
        if built.vm_state != "active":
            problems.append("build on %s: %s" % (host, built.vm_state))
    return problems


def run_fault(stack: world.Stack, conf: Any, name: str,
              inject: Callable[[], Any], heal: Callable[[Any], None],
              duration: float, max_call_s: float | None = None) -> dict[str, Any]:
    """Inject, hold ``duration`` seconds, heal; all under load. Returns the
    figures; fails the test when an invariant does not hold."""
    configure_client(conf, stack)
    ctxt = context.get_admin_context()
    service, node = retry_unknown(lambda: load_records(ctxt), attempts=10)
    [(before,)] = stack.query("SELECT report_count FROM services WHERE id = :i",
                              i=service.id)
    tag = "%s-%d" % (name, time.monotonic_ns())
    load = load_mod.Load(ctxt, service, node, tag)
    load.start()
    watch = HeartbeatWatch(stack)
    try:
        time.sleep(1.5)
        watch.start()
        started = time.monotonic()
        state = inject()
        time.sleep(duration)
        heal(state)
        ended = time.monotonic()
        back = wait_heartbeats(stack, ended, timeout=60)
        time.sleep(1.5)
    finally:
        gap = watch.stop()
        load.stop()
    if any(op.outcome in ("unknown", "failed") for op in load.recorder.ops):
        time.sleep(world.RPC_TIMEOUT + 1)  # answers lost may still land
    verdict = load_mod.check(load.recorder, stack, service.id, node.id, tag,
                             before)
    problems = list(verdict.problems)
    problems += check_computes(stack, ctxt)
    figures = dict(verdict.figures, fault=name,
                   back_after_end_s=round(back, 1),
                   fault_s=round(ended - started, 1),
                   longest_beat_gap_s=round(gap, 1))
    world.FIGURES.append(figures)
    print("FAULT %s %s" % (name, figures))
    limit = 2 * world.REPORT_INTERVAL
    if back > limit + 1:  # +1: the 0.1 s poll and the beat's own round trip
        problems.append("computes back %.1fs after the fault, past 2 x "
                        "report_interval (%ss)" % (back, limit))
    if max_call_s is not None and figures["longest_call_s"] > max_call_s:
        problems.append("a call took %ss (limit %ss)"
                        % (figures["longest_call_s"], max_call_s))
    assert not problems, "%s: %s" % (name, "; ".join(problems))
    return figures
