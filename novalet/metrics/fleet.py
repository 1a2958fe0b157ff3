"""The fleet as the conductor sees it, computed at scrape time: services by
binary and state, and the version caps ``auto`` resolves to.

The database is read at most once per ``[metrics] fleet_refresh_interval``
however often (and however many scrapers) ask; a failed read keeps the last
good data (``novalet_fleet_read_timestamp_seconds`` says how old it is) and
counts ``novalet_fleet_read_failures_total``.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator
from typing import Any

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: Exclusive states, in precedence order: a forced-down service is
#: ``forced_down`` whatever else, a disabled one ``disabled``, any other
#: ``up`` or ``down`` as the servicegroup driver says.
STATES = ("up", "down", "disabled", "forced_down")

#: Most distinct binaries given their own label value; the rest are "other".
MAX_BINARIES = 32

#: The binaries whose version caps are shown, and their [upgrade_levels]
#: option and RPC API key in the release map.
CAPPED = (("novalet-conductor", "conductor", "conductor_rpc"),
          ("novalet-compute", "compute", "compute_rpc"))


def _setting(conf: Any, group: str) -> str | None:
    return getattr(conf.upgrade_levels, group)  # type: ignore[no-any-return]


def _minimum_version(objects: Any, binary: str, ctxt: Any) -> int:
    return int(objects.Service.get_minimum_version(ctxt, binary))


def state_of(service: Any, up: bool) -> str:
    if service.forced_down:
        return "forced_down"
    if service.disabled:
        return "disabled"
    return "up" if up else "down"


class FleetCollector:
    """Collector of ``novalet_services``, ``novalet_service_version_minimum``
    and ``novalet_version_cap_info``, read through ``servicegroup_api``."""

    def __init__(self, conf: Any, servicegroup_api: Any) -> None:
        from novalet import objects, upgrade

        self.conf = conf
        self.servicegroup_api = servicegroup_api
        self._lock = threading.Lock()
        self._expires = 0.0
        self._data: dict[str, Any] | None = None
        self._read_at = 0.0
        self.reads = 0
        self.failures = 0
        self._caps = {
            binary: upgrade.core_caps(
                binary, rpc_key, functools.partial(_setting, conf, group),
                functools.partial(_minimum_version, objects, binary),
                refresh_interval=lambda: 1.0)
            for binary, group, rpc_key in CAPPED}

    def _read(self) -> dict[str, Any]:
        from novalet import context

        ctxt = context.get_admin_context()
        counts: dict[str, dict[str, int]] = {}
        versions: dict[str, int] = {}
        for service, up in self.servicegroup_api.get_all(ctxt):
            binary = service.binary
            if binary not in counts and len(counts) >= MAX_BINARIES:
                binary = "other"
            per = counts.setdefault(binary, dict.fromkeys(STATES, 0))
            per[state_of(service, up)] += 1
            versions[binary] = min(versions.get(binary, service.version),
                                   service.version)
        caps = {}
        for binary, caps_of in self._caps.items():
            rpc_cap = caps_of.rpc_cap(ctxt)
            objects = caps_of.object_versions(ctxt)
            release = "newest" if objects is None else caps_of.release_of(objects)
            caps[binary] = (rpc_cap or "newest", release)
        return {"counts": counts, "versions": versions, "caps": caps}

    def refresh(self) -> None:
        """Read the fleet if the last read is older than the interval."""
        with self._lock:
            now = time.monotonic()
            if now < self._expires:
                return
            self._expires = now + self.conf.metrics.fleet_refresh_interval
            try:
                self._data = self._read()
                self._read_at = time.time()
                self.reads += 1
            except Exception as e:
                self.failures += 1
                LOG.warning("Cannot read the fleet for metrics: %s",
                            getattr(e, "message", e))

    def collect(self) -> Iterator[Any]:
        self.refresh()
        yield from self.families(self._data, self._read_at, self.failures)

    @staticmethod
    def families(data: dict[str, Any] | None, read_at: float,
                 failures: int) -> list[Any]:
        """The metric families of ``data`` (as ``_read`` returns it)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        services = GaugeMetricFamily(
            "novalet_services", "Services by binary and state (up, down, "
            "disabled, forced_down; exclusive, in reverse order of "
            "precedence).", labels=["binary", "state"])
        minimum = GaugeMetricFamily(
            "novalet_service_version_minimum",
            "Lowest service version among the live services of a binary.",
            labels=["binary"])
        caps = GaugeMetricFamily(
            "novalet_version_cap_info",
            "What [upgrade_levels] resolves to now for a binary: the RPC API "
            "version cap and the release whose objects are sent.",
            labels=["binary", "rpc", "objects"])
        if data is not None:
            for binary, per in sorted(data["counts"].items()):
                for state in STATES:
                    services.add_metric([binary, state], per[state])
            for binary, version in sorted(data["versions"].items()):
                minimum.add_metric([binary], version)
            for binary, (rpc_cap, release) in sorted(data["caps"].items()):
                caps.add_metric([binary, rpc_cap, release], 1)
        read = GaugeMetricFamily(
            "novalet_fleet_read_timestamp_seconds",
            "When the fleet data above was read (Unix time; 0: never).",
            value=read_at)
        failed = CounterMetricFamily(
            "novalet_fleet_read_failures",
            "Reads of the fleet that failed (the last good data is kept).",
            value=failures)
        return [services, minimum, caps, read, failed]
