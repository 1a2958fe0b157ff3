"""The fault suite's private world, started once for the whole suite: a
3-node RabbitMQ cluster with quorum queues, a PostgreSQL cluster of its own,
two ``novalet-conductor`` hosts on one topic and three ``novalet-compute``
hosts (fake driver; ``c3`` reaches the broker through a TCP proxy per node).
Every test heals what it broke; the finalizer kills and removes everything,
also when a test fails."""

from __future__ import annotations

import glob
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from tests import processes
from tests.conftest import service_unavailable
from tests.faults.cluster import ClusterError, RabbitCluster, free_port
from tests.faults.postgres import PostgresError, PrivatePostgres
from tests.faults.proxy import TcpProxy

#: Short intervals keep the suite inside its CI budget.
REPORT_INTERVAL = 3
RPC_TIMEOUT = 5
SERVICE_DOWN_TIME = 10
#: A dead or frozen broker node is noticed after ~2 x this (AMQP heartbeats).
HEARTBEAT_THRESHOLD = 2

COMPUTES = ("c1", "c2", "c3")
PROXIED = "c3"
CONDUCTORS = ("cond-a", "cond-b")

#: What each fault measured, printed at the end of the run.
FIGURES: list[dict[str, Any]] = []


def rabbit_options(hostname: str, processname: str) -> dict[str, Any]:
    """``[oslo_messaging_rabbit]`` for the cluster (doc/source/admin/scale-out.rst's,
    with the suite's short heartbeat)."""
    return {
        "rabbit_quorum_queue": True,
        # Classic reply and fanout queues (doc/source/admin/faults.rst, "Reply queues"): a
        # deleted quorum reply queue can leave its client without replies.
        "rabbit_transient_quorum_queue": False,
        "use_queue_manager": True,
        "hostname": hostname,
        "processname": processname,
        "heartbeat_timeout_threshold": HEARTBEAT_THRESHOLD,
        "heartbeat_rate": 2,
        "kombu_failover_strategy": "shuffle",
        "kombu_reconnect_delay": 0.5,
        "rabbit_retry_interval": 1,
        "rabbit_retry_backoff": 1,
        "rabbit_interval_max": 2,
    }


class Stack:
    """Handles on every private process of the suite."""

    def __init__(self, directory: str) -> None:
        self.dir = directory
        self.prefix = "f%d" % os.getpid()
        self.pg = PrivatePostgres()
        self.cluster = RabbitCluster(os.path.join(directory, "rabbit"))
        self.proxies: list[TcpProxy] = []
        self.conductors: dict[str, processes.ServiceProcess] = {}
        self.computes: dict[str, processes.ServiceProcess] = {}
        self.db_url = ""
        self.db_urls: dict[str, str] = {}
        self.engine: Any = None

    # -- names ---------------------------------------------------------------

    def host(self, name: str) -> str:
        return "%s-%s" % (self.prefix, name)

    def transport_url(self, through_proxy: bool = False) -> str:
        if not through_proxy:
            return self.cluster.transport_url()
        return "rabbit://%s/" % ",".join(
            "guest:guest@127.0.0.1:%d" % p.port for p in self.proxies)

    def multi_host_url(self) -> str:
        """libpq's multi-host form: a port nobody listens on first, then the
        server; ``target_session_attrs=primary`` takes the first primary."""
        dead = free_port()
        return ("postgresql+psycopg2://postgres@/novalet?host=127.0.0.1:%d"
                "&host=127.0.0.1:%d&target_session_attrs=primary"
                "&connect_timeout=5" % (dead, self.pg.port))

    # -- start ---------------------------------------------------------------

    def start(self) -> None:
        self.pg.initdb()
        self.pg.start()
        self.db_url = self.pg.create_database("novalet")
        self.engine = sa.create_engine(self.db_url, poolclass=sa.pool.NullPool,
                                       connect_args={"connect_timeout": 5})
        self.cluster.start()
        self.proxies = [TcpProxy(node.port) for node in self.cluster.nodes]
        sync = self.config("manage", "novalet-manage")
        result = processes.run_command("novalet-manage", "--config-file",
                                       sync, "db", "sync")
        assert result.returncode == 0, result.stderr
        for name in CONDUCTORS:
            self.start_conductor(name)
        for name in COMPUTES:
            self.computes[name] = processes.ServiceProcess(
                "novalet-compute", self.config(name, "novalet-compute"),
                os.path.join(self.dir, name + ".log"))
        for name in COMPUTES:
            self.computes[name].wait_for_log("novalet-compute started", 90)

    def config(self, name: str, binary: str) -> str:
        host = self.host(name)
        sections: dict[str, dict[str, Any]] = {
            "DEFAULT": {
                "host": host,
                "transport_url": self.transport_url(name == PROXIED),
                "report_interval": REPORT_INTERVAL,
                "service_down_time": SERVICE_DOWN_TIME,
                "rpc_response_timeout": RPC_TIMEOUT,
                "periodic_fuzzy_delay": 0,
                "update_resources_interval": REPORT_INTERVAL,
                "startup_timeout": 60,
                "state_path": os.path.join(self.dir, "state-" + name),
            },
            "database": {"connection": self.multi_host_url()},
            "oslo_messaging_rabbit": rabbit_options(host, binary),
            # The queue manager's counter is guarded by a file lock.
            "oslo_concurrency": {"lock_path": os.path.join(
                self.dir, "state-" + name, "lock")},
        }
        if binary == "novalet-conductor":
            sections["conductor"] = {"workers": 1}
        if binary == "novalet-compute":
            sections["compute"] = {"virt_driver": "fake"}
            sections["fake"] = {"nodes": 1, "vcpus": 16, "memory_mb": 65536,
                                "local_gb": 1000}
        return processes.write_config(os.path.join(self.dir, name + ".conf"),
                                      sections)

    def start_conductor(self, name: str) -> None:
        old = self.conductors.get(name)
        log = os.path.join(self.dir, name + ".log")
        if old is not None:
            old.kill()
            os.rename(log, log + ".%d" % time.monotonic_ns())
        proc = processes.ServiceProcess(
            "novalet-conductor", self.config(name, "novalet-conductor"), log)
        self.conductors[name] = proc
        proc.wait_for_log("novalet-conductor started", 90)

    # -- reads ---------------------------------------------------------------

    def query(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []

    def compute_counts(self) -> dict[str, int]:
        rows = self.query(
            "SELECT host, report_count FROM services WHERE \"binary\" ="
            " 'novalet-compute' AND deleted = 0")
        return {host: count for host, count in rows}

    # -- stop ----------------------------------------------------------------

    def close(self) -> None:
        for proc in [*self.computes.values(), *self.conductors.values()]:
            try:
                proc.signal(signal.SIGCONT)  # a frozen one can stop too
                proc.stop(timeout=15)
            except Exception:
                proc.kill()
        for proxy in self.proxies:
            proxy.close()
        self.cluster.close()
        if self.engine is not None:
            self.engine.dispose()
        self.pg.close()
        # oslo.messaging's queue manager keeps a counter per host+process.
        for name in glob.glob("/dev/shm/%s-*_qmanager" % self.prefix):
            os.remove(name)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    if shutil.which("epmd") is None or not os.path.exists(
            "/usr/lib/rabbitmq/bin/rabbitmq-server"):
        service_unavailable("rabbitmq-server is not installed")
    directory = tempfile.mkdtemp(prefix="novalet-faults-")
    world = Stack(directory)
    try:
        world.start()
    except (ClusterError, PostgresError, AssertionError) as e:
        world.close()
        pytest.fail("the fault suite's cluster did not start: %s" % e)
    except BaseException:
        world.close()
        raise
    yield world
    world.close()


@pytest.fixture(autouse=True)
def _figures_reported(request: pytest.FixtureRequest) -> Iterator[None]:
    """What the test measured goes on its report (``fault_figures``), so
    the run's summary prints it even when a worker process ran the test
    (tests/conftest.py)."""
    before = len(FIGURES)
    yield
    for row in FIGURES[before:]:
        request.node.user_properties.append(("fault_figures", row))
