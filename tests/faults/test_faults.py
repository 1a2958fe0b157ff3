"""Faults under load on the suite's private cluster (see conftest.py): each
test injects one fault, heals it and checks every invariant (harness.py).
They share one cluster, in this order."""

from __future__ import annotations

import signal
import time

import pytest

from tests.faults import conftest as world
from tests.faults.harness import run_fault

pytestmark = [pytest.mark.integration, pytest.mark.timeout(480)]

#: No call hangs: each ends within twice its timeout plus the time to notice
#: a dead connection (2 x the AMQP heartbeat), however long the fault lasts
#: (sending and waiting for the reply are each bounded by the timeout).
CALL_LIMIT = 2 * world.RPC_TIMEOUT + 2 * world.HEARTBEAT_THRESHOLD


def test_kill_leader_of_conductor_queue(stack, conf):
    def inject():
        leader = stack.cluster.leader_of("conductor")
        leader.kill()
        return leader

    def heal(leader):
        leader.start()
        leader.wait()
        stack.cluster.wait_healthy()

    run_fault(stack, conf, "kill conductor-queue leader", inject, heal,
              duration=5, max_call_s=CALL_LIMIT)


def test_freeze_node_past_heartbeat(stack, conf):
    def inject():
        node = stack.cluster.leader_of("conductor")
        node.freeze()
        return node

    def heal(node):
        node.thaw()
        stack.cluster.wait_healthy()

    run_fault(stack, conf, "SIGSTOP broker node", inject, heal,
              duration=3 * world.HEARTBEAT_THRESHOLD + 2, max_call_s=CALL_LIMIT)


def test_rolling_restart(stack, conf):
    def restart_all():
        for node in stack.cluster.nodes:
            node.stop()
            node.start()
            node.wait()
        stack.cluster.wait_healthy()

    run_fault(stack, conf, "rolling restart", restart_all, lambda _: None,
              duration=0, max_call_s=CALL_LIMIT)


def test_two_of_three_nodes_down(stack, conf):
    def inject():
        down = stack.cluster.nodes[:2]
        for node in down:
            node.kill()
        return down

    def heal(down):
        for node in down:
            node.start()
        for node in down:
            node.wait()
        stack.cluster.wait_healthy()

    run_fault(stack, conf, "two of three nodes down", inject, heal,
              duration=8, max_call_s=CALL_LIMIT)


def test_kill_one_conductor(stack, conf):
    def inject():
        stack.conductors["cond-a"].signal(signal.SIGKILL)

    def heal(_):
        stack.start_conductor("cond-a")

    run_fault(stack, conf, "SIGKILL one conductor", inject, heal, duration=3,
              max_call_s=CALL_LIMIT)


def test_freeze_one_conductor(stack, conf):
    def inject():
        stack.conductors["cond-b"].signal(signal.SIGSTOP)

    def heal(_):
        stack.conductors["cond-b"].signal(signal.SIGCONT)

    run_fault(stack, conf, "SIGSTOP one conductor", inject, heal,
              duration=3 * world.HEARTBEAT_THRESHOLD + 2, max_call_s=CALL_LIMIT)


def test_lost_reply_queues(stack, conf):
    def inject():
        # The newest reply queue of each calling process (the load's and
        # each compute's): the ones in use.
        newest: dict[str, tuple[int, str]] = {}
        for q in stack.cluster.queues():
            name = q["name"]
            if name.startswith("reply_"):
                owner, _, number = name.rpartition(":")
                if number.isdigit() and int(number) >= newest.get(
                        owner, (-1, ""))[0]:
                    newest[owner] = (int(number), name)
        lost = [name for _n, name in newest.values()]
        via = stack.cluster.any_running()
        for name in lost:
            stack.cluster.ctl(via, "delete_queue", name, check=False)
        return lost

    run_fault(stack, conf, "reply queues deleted", inject, lambda _: None,
              duration=3, max_call_s=CALL_LIMIT)


def test_terminate_conductor_db_connections(stack, conf):
    def inject():
        return stack.pg.terminate_backends("novalet")

    run_fault(stack, conf, "pg_terminate_backend", inject, lambda _: None,
              duration=2, max_call_s=CALL_LIMIT)


def test_postgres_restart_immediate(stack, conf):
    run_fault(stack, conf, "postgres restart -m immediate",
              stack.pg.restart_immediate, lambda _: None, duration=1,
              max_call_s=CALL_LIMIT)


def test_postgres_frozen(stack, conf):
    def heal(_):
        stack.pg.thaw()

    run_fault(stack, conf, "postgres frozen 30s", stack.pg.freeze, heal,
              duration=30)


def test_latency_to_one_compute(stack, conf):
    def inject():
        for proxy in stack.proxies:
            proxy.delay = 0.3

    def heal(_):
        for proxy in stack.proxies:
            proxy.heal()

    run_fault(stack, conf, "300 ms to one compute", inject, heal, duration=8)


def test_black_hole_to_one_compute(stack, conf):
    def inject():
        for proxy in stack.proxies:
            proxy.blackhole()

    def heal(_):
        for proxy in stack.proxies:
            proxy.heal()
        time.sleep(0)

    run_fault(stack, conf, "black hole to one compute", inject, heal,
              duration=3 * world.HEARTBEAT_THRESHOLD + 2)
