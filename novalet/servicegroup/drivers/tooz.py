"""``tooz``: liveness as membership of a tooz group (``[servicegroup]
backend_url``, e.g. ``redis://127.0.0.1:6379``). Writes no database row.

Each joined service gets its own coordinator, member id
``b"<binary>:<host>"``, in group ``<group_prefix>.<topic>`` (created if
missing). The coordinator is started with ``start_heart=False``: tooz's own
heart thread would beat on tooz's schedule and swallow errors, so instead the
service's ``Reporter`` calls ``coordinator.heartbeat()`` every
``report_interval`` seconds on an oslo.service looping call and logs a lost
backend like the db driver does. Each beat also re-joins the group when the
member was dropped (another member's ``get_members`` evicts members whose
heartbeat key expired, e.g. after the backend was down for a while).

Unless ``backend_url`` sets ``membership_timeout``, it is
``service_down_time``: a member whose beats stop is gone after that long, the
same rule as the db driver. ``start()`` beats once itself, so the first loop
beat comes after ``min(initial_delay, report_interval)``.

Liveness is asked through one extra coordinator per driver (the observer,
never a group member), so a process never vouches for itself.
"""

from __future__ import annotations

import threading
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import Any

import redis.exceptions
import tooz
from oslo_config import cfg
from oslo_log import log as logging
from tooz import coordination

from novalet.servicegroup.drivers import base

LOG = logging.getLogger(__name__)

#: What a lost coordination backend raises (tooz translates some of the
#: client's errors, not those surfacing through a result's ``get()``).
LOST_ERRORS: tuple[type[BaseException], ...] = (
    coordination.ToozConnectionError, coordination.OperationTimedOut,
    redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)

#: What closing a coordinator may raise; logged, never raised at stop.
CLEANUP_ERRORS: tuple[type[BaseException], ...] = (tooz.ToozError, *LOST_ERRORS)

DEFAULT_GROUP_PREFIX = "novalet"


def member_id(binary: str, host: str) -> bytes:
    """The tooz member id of ``binary`` on ``host``."""
    return ("%s:%s" % (binary, host)).encode()


class ToozDriver(base.ServiceGroupDriver):
    """Group membership in a tooz backend; ``group_prefix`` names the groups
    (``<group_prefix>.<topic>``)."""

    def __init__(self, conf: cfg.ConfigOpts, *,
                 initial_delay: float = base.DEFAULT_INITIAL_DELAY,
                 group_prefix: str = DEFAULT_GROUP_PREFIX) -> None:
        super().__init__(conf, initial_delay=initial_delay)
        self.group_prefix = group_prefix
        self._observer: Any = None
        self._observer_lock = threading.Lock()

    def group_id(self, topic: str) -> bytes:
        """The tooz group of services listening on ``topic``."""
        return ("%s.%s" % (self.group_prefix, topic)).encode()

    def _coordinator(self, member: bytes) -> Any:
        url = self.conf.servicegroup.backend_url
        options: dict[str, Any] = {}
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        if "membership_timeout" not in query:
            options["membership_timeout"] = self.conf.service_down_time
        coordinator = coordination.get_coordinator(url, member, **options)
        coordinator.start(start_heart=False)
        return coordinator

    # -- reporting --------------------------------------------------------

    def _first_delay(self, initial_delay: float) -> float:
        return min(initial_delay, self.conf.report_interval)

    @staticmethod
    def _ensure_member(coordinator: Any, group: bytes) -> None:
        try:
            coordinator.join_group(group).get()
        except coordination.MemberAlreadyExist:
            return
        except coordination.GroupNotCreated:
            try:
                coordinator.create_group(group).get()
            except coordination.GroupAlreadyExist:
                pass
            try:
                coordinator.join_group(group).get()
            except coordination.MemberAlreadyExist:
                pass

    def _make_reporter(self, host: str, topic: str,
                       service: Any) -> base.Reporter:
        """Start a coordinator for ``service`` and join its group.

        Raises ``tooz.ToozError`` (or the backend client's connection error)
        when the backend cannot be reached.
        """
        group = self.group_id(topic)
        coordinator = self._coordinator(
            member_id(base.service_binary(service), host))
        try:
            self._ensure_member(coordinator, group)
        except BaseException:
            coordinator.stop()
            raise
        name = base.service_name(host, topic, service)

        def beat() -> None:
            coordinator.heartbeat()
            self._ensure_member(coordinator, group)

        def close() -> None:
            try:
                coordinator.leave_group(group).get()
            except (coordination.GroupNotCreated, coordination.MemberNotJoined):
                pass
            except CLEANUP_ERRORS as e:
                LOG.warning("%s could not leave group %r: %s", name, group, e)
            finally:
                try:
                    coordinator.stop()
                except CLEANUP_ERRORS as e:
                    LOG.warning("Stopping the coordinator of %s failed: %s",
                                name, e)

        return base.Reporter(name, beat, what="coordination backend",
                             lost_errors=LOST_ERRORS, close=close)

    # -- liveness ---------------------------------------------------------

    def _observer_coordinator(self) -> Any:
        with self._observer_lock:
            if self._observer is None:
                self._observer = self._coordinator(
                    b"novalet-observer:" + uuid.uuid4().hex.encode())
            return self._observer

    def members(self, topic: str) -> set[bytes]:
        """Live member ids of ``topic``'s group (empty if it does not exist).

        Raises ``tooz.ToozError`` or the backend client's connection error
        when the backend cannot be reached.
        """
        try:
            members: set[bytes] = self._observer_coordinator().get_members(
                self.group_id(topic)).get()
        except coordination.GroupNotCreated:
            return set()
        return members

    def is_up(self, service_ref: Any) -> bool:
        """Up iff not forced down and ``b"<binary>:<host>"`` is a live member
        of the group of its topic. Raises what ``members()`` raises."""
        return self.are_up(None, [service_ref])[0]

    def are_up(self, ctxt: Any, services: Sequence[Any]) -> list[bool]:
        """``is_up`` of each service, one membership query per topic.
        Raises what ``members()`` raises."""
        by_topic: dict[str, set[bytes]] = {}
        result = []
        for service_ref in services:
            if service_ref.forced_down or not service_ref.topic:
                result.append(False)
                continue
            if service_ref.topic not in by_topic:
                by_topic[service_ref.topic] = self.members(service_ref.topic)
            result.append(member_id(service_ref.binary, service_ref.host)
                          in by_topic[service_ref.topic])
        return result

    def stop(self) -> None:
        """Leave for every joined service and stop the observer."""
        super().stop()
        with self._observer_lock:
            observer, self._observer = self._observer, None
        if observer is not None:
            try:
                observer.stop()
            except CLEANUP_ERRORS as e:
                LOG.warning("Stopping the observer coordinator failed: %s", e)
