"""The process's Prometheus metric objects, made only when metrics are on.

``prometheus_client`` is imported here, on ``enable()``, and nowhere before:
it chooses between one process's values and its multiprocess mode (a file
per process in ``PROMETHEUS_MULTIPROC_DIR``) at import, so a conductor with
several workers sets that directory first (``novalet.metrics.endpoint``).
Until ``enable()``, ``current`` is None and every hook is a no-op.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from novalet import exception

#: Seconds: an RPC call's buckets (a remotable call here takes ~2 ms; an
#: audit of one node tens of ms; anything past the RPC timeout is lost).
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: The label value of anything a caller named that this code does not know
#: (objects, methods): a made-up name never creates a new series.
UNKNOWN = "unknown"


class Metrics:
    """Every novalet metric of this process (see the README for the list).

    ``registry``: where they are registered (one process), or None in
    multiprocess mode, where the values live in per-process files that the
    serving process reads.
    """

    def __init__(self, registry: Any) -> None:
        import prometheus_client as prom

        self.registry = registry
        self.multiprocess = registry is None
        kw: dict[str, Any] = {"registry": registry}
        # Conductor
        self.conductor_calls = prom.Counter(
            "novalet_conductor_calls",
            "Remotable calls the conductor received, by object, method and "
            "outcome (ok, refused, error).",
            ["object", "method", "outcome"], **kw)
        self.conductor_call_errors = prom.Counter(
            "novalet_conductor_call_errors",
            "Calls whose method raised, by the error's class (a "
            "novalet.exception name, or 'other').",
            ["object", "method", "error"], **kw)
        self.conductor_call_duration = prom.Histogram(
            "novalet_conductor_call_duration_seconds",
            "Time the conductor spent on a remotable call (every outcome).",
            ["object", "method"], buckets=CALL_BUCKETS, **kw)
        self.conductor_in_flight = prom.Gauge(
            "novalet_conductor_calls_in_flight",
            "Remotable calls the conductor is running now.",
            multiprocess_mode="livesum", **kw)
        # Database (the conductor, or any process with database access)
        self.database_errors = prom.Counter(
            "novalet_database_errors",
            "Errors the database driver raised, by kind (disconnect, "
            "integrity, operational, ...).", ["error"], **kw)
        self.database_reconnects = prom.Counter(
            "novalet_database_reconnects",
            "Pooled database connections found broken and replaced (the "
            "pool's pre-ping retries on a new connection).", **kw)
        # Every RPC server: how each request's caller was verified
        self.rpc_requests = prom.Counter(
            "novalet_rpc_requests",
            "Requests this process's RPC servers received, by how their "
            "caller was verified: admin, host, unsigned (accepted: [auth] "
            "enforce is false), local (in-process transport) or refused.",
            ["caller"], **kw)
        # Heartbeats (every service)
        self.heartbeats = prom.Counter(
            "novalet_heartbeats",
            "Heartbeats of the services in this process, by outcome "
            "(ok, failed).", ["outcome"], **kw)
        self.heartbeat_last_ok = prom.Gauge(
            "novalet_heartbeat_last_success_timestamp_seconds",
            "When a heartbeat of a service in this process last worked (Unix "
            "time; 0 before the first).",
            multiprocess_mode="max", **kw)
        self.heartbeat_duration = prom.Histogram(
            "novalet_heartbeat_duration_seconds",
            "Time a heartbeat call took (one call may carry several "
            "services' beats).", buckets=CALL_BUCKETS, **kw)
        # Compute
        self.audit_duration = prom.Histogram(
            "novalet_resource_audit_duration_seconds",
            "Time a resource audit of one node took.", ["node"],
            buckets=CALL_BUCKETS, **kw)
        self.audit_failures = prom.Counter(
            "novalet_resource_audit_failures",
            "Resource audits of a node that failed.", ["node"], **kw)
        self.claims = prom.Counter(
            "novalet_claims",
            "Resource claims on a node, by outcome (ok, refused: it did not "
            "fit, error).", ["node", "outcome"], **kw)
        self._lock = threading.Lock()
        self._children: dict[tuple[Any, ...], Any] = {}

    def child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, cached (that call takes a lock and
        builds a key every time; the label sets are bounded)."""
        key = (id(metric), *labels)
        found = self._children.get(key)
        if found is None:
            with self._lock:
                found = self._children[key] = metric.labels(*labels)
        return found


current: Metrics | None = None
_lock = threading.Lock()


def enable(multiprocess_dir: str | None = None) -> Metrics:
    """Make this process's metrics (once; later calls return them).

    ``multiprocess_dir``: the values go to files there (prometheus_client's
    multiprocess mode), for workers forked after this. Raises
    ``ConfigurationError`` if prometheus_client was imported earlier in
    another mode.
    """
    global current
    with _lock:
        if current is not None:
            return current
        if multiprocess_dir is not None:
            if ("prometheus_client.values" in sys.modules and not getattr(
                    sys.modules["prometheus_client.values"].ValueClass,
                    "_multiprocess", False)):
                raise exception.ConfigurationError(
                    reason="prometheus_client was imported before its "
                           "multiprocess directory was set")
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = multiprocess_dir
        import prometheus_client as prom

        prom.disable_created_metrics()  # no *_created series
        registry = None if multiprocess_dir else prom.CollectorRegistry()
        current = Metrics(registry)
        return current


def disable() -> None:
    """Forget the metrics (tests; a one-process registry only)."""
    global current
    with _lock:
        current = None
