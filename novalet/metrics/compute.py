"""A compute's metrics: resource audits and claims (decorators on the
resource tracker's entry points), and its nodes' capacity and usage (read
from the trackers' ``ComputeNode`` records at scrape time)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from novalet import exception
from novalet.metrics import registry

F = TypeVar("F", bound=Callable[..., Any])


def audit(method: F) -> F:
    """Time ``ResourceTracker.update_available_resource`` per node and
    count its failures."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        m = registry.current
        if m is None:
            return method(self, *args, **kwargs)
        start = time.perf_counter()
        try:
            return method(self, *args, **kwargs)
        except Exception:
            m.child(m.audit_failures, self.nodename).inc()
            raise
        finally:
            m.child(m.audit_duration, self.nodename).observe(
                time.perf_counter() - start)

    return wrapper  # type: ignore[return-value]


def claim(method: F) -> F:
    """Count ``ResourceTracker.instance_claim`` by outcome: ``ok``,
    ``refused`` (``ComputeResourcesUnavailable``) or ``error``."""

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        m = registry.current
        if m is None:
            return method(self, *args, **kwargs)
        outcome = "error"
        try:
            result = method(self, *args, **kwargs)
            outcome = "ok"
            return result
        except exception.ComputeResourcesUnavailable:
            outcome = "refused"
            raise
        finally:
            m.child(m.claims, self.nodename, outcome).inc()

    return wrapper  # type: ignore[return-value]


#: (metric name, help, ComputeNode field, factor to base units)
_NODE_GAUGES = (
    ("novalet_node_vcpus", "vCPUs of the node.", "vcpus", 1),
    ("novalet_node_vcpus_used", "vCPUs taken on the node.", "vcpus_used", 1),
    ("novalet_node_memory_bytes", "Memory of the node.", "memory_mb", 2**20),
    ("novalet_node_memory_used_bytes", "Memory taken on the node.",
     "memory_mb_used", 2**20),
    ("novalet_node_disk_bytes", "Local disk of the node.", "local_gb", 2**30),
    ("novalet_node_disk_used_bytes", "Local disk taken on the node.",
     "local_gb_used", 2**30),
)


class ComputeNodeCollector:
    """Collector of the ``novalet_node_*`` gauges of the nodes the given
    compute managers track (the records as last audited or claimed; a node
    not audited yet is left out)."""

    def __init__(self, managers: Callable[[], Iterable[Any]]) -> None:
        self._managers = managers

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import GaugeMetricFamily

        families = [GaugeMetricFamily(name, text, labels=["node"])
                    for name, text, _, _ in _NODE_GAUGES]
        for manager in self._managers():
            for tracker in list(manager.trackers.values()):
                node = tracker.compute_node
                if node is None:
                    continue
                for family, (_, _, field, factor) in zip(families, _NODE_GAUGES,
                                                         strict=True):
                    # Only fields the record holds: reading an unset one
                    # would load it through the conductor.
                    if node.obj_attr_is_set(field):
                        family.add_metric([tracker.nodename],
                                          float(getattr(node, field) * factor))
        yield from families
