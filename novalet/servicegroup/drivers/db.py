"""``db``: liveness as a heartbeat on the ``Service`` record.

Reporting: every ``report_interval`` seconds a service raises its own
``Service.report_count`` by one and saves it, through whatever indirection API
the process installed (on a compute, the conductor). The database then moves
``last_seen_up`` to its own clock. The reporter keeps the ``Service`` object
it was given and bumps it: nothing is read back, one call per beat.

Liveness: a service is up iff it is not ``forced_down`` and its
``last_seen_up`` is at most ``service_down_time`` seconds behind the
**database** clock (``Service.get_db_time``), so callers' clocks never
matter. A service that never completed a heartbeat (``last_seen_up`` is NULL)
is down: ``created_at``/``updated_at`` are written by the conductor's clock
(not the database's) and ``updated_at`` also moves on admin changes, so
neither proves the service ever ran. A new service is therefore down until its
first beat lands, ``initial_delay`` after ``join``.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging

from novalet import context as novalet_context
from novalet import exception, objects, rpc
from novalet.servicegroup.drivers import base

LOG = logging.getLogger(__name__)

#: What a lost model server (the conductor, or the database behind it)
#: raises; a heartbeat failing with one of these is an outage, not a bug.
LOST_ERRORS: tuple[type[BaseException], ...] = (
    exception.RPCTimeout, exception.RPCUnavailable,
    exception.DatabaseUnavailable)


def as_utc(value: datetime.datetime) -> datetime.datetime:
    """``value`` as an aware UTC datetime (naive values are taken as UTC:
    the database returns naive UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


class DbDriver(base.ServiceGroupDriver):
    """Heartbeats as ``Service.save()`` of ``report_count + 1``."""

    def _make_reporter(self, host: str, topic: str,
                       service: Any) -> base.Reporter:
        service_ref = service.service_ref
        if service_ref is None:
            raise exception.ObjectActionError(
                action="join", reason="%s has no Service record" % service)

        # A beat waits at most two intervals: after a broker or conductor
        # restart the next beat goes out soon instead of queuing behind a
        # call whose answer is lost (rpc_response_timeout, 60 s by default).
        timeout = 2.0 * max(1.0, float(self.conf.report_interval))

        def beat() -> None:
            nonlocal service_ref
            service_ref.report_count += 1
            try:
                with rpc.call_timeout(timeout):
                    service_ref.save()
            except exception.ServiceNotFound:
                # Deleted while the service runs: it is alive, so register
                # it again rather than fail every beat from now on.
                LOG.warning("The record of %s was deleted while it runs; "
                            "registering it again", service)
                service_ref = objects.Service(
                    service_ref.obj_context, host=service_ref.host,
                    binary=service_ref.binary, topic=service_ref.topic,
                    version=service_ref.version)
                service_ref.create()
                service.service_ref = service_ref
                service_ref.report_count = 1
                service_ref.save()

        return base.Reporter(base.service_name(host, topic, service), beat,
                             what="model server", lost_errors=LOST_ERRORS)

    def db_time(self, ctxt: Any) -> datetime.datetime:
        """The database clock as an aware UTC datetime.

        Raises what a remotable call raises when the model server is lost
        (``RPCTimeout``, ``RPCUnavailable``, ``DatabaseUnavailable``).
        """
        value = objects.Service.get_db_time(ctxt)
        if isinstance(value, str):
            # A remotable method's plain (non-object) result crosses RPC as
            # JSON: the datetime arrives as its ISO 8601 text.
            value = datetime.datetime.fromisoformat(value)
        return as_utc(value)

    def is_up(self, service_ref: Any, *,
              db_time: datetime.datetime | None = None) -> bool:
        """Up iff not forced down and ``last_seen_up`` is at most
        ``service_down_time`` seconds before ``db_time`` (default: asked from
        the database, one call; pass it to check many services at one
        instant). Never reported means down.

        Raises what ``db_time()`` raises when it has to ask.
        """
        if service_ref.forced_down:
            return False
        last_seen_up = service_ref.last_seen_up
        if last_seen_up is None:
            return False
        if db_time is None:
            ctxt = (service_ref.obj_context
                    or novalet_context.get_admin_context())
            db_time = self.db_time(ctxt)
        elapsed = (as_utc(db_time) - as_utc(last_seen_up)).total_seconds()
        # A beat that landed after db_time was read gives a negative
        # elapsed time: that service is up too.
        return elapsed <= self.conf.service_down_time

    def are_up(self, ctxt: Any, services: Sequence[Any]) -> list[bool]:
        """``is_up`` of each service against one reading of the database
        clock (none when no service needs it). Raises what ``db_time()``
        raises."""
        needs_clock = any(not s.forced_down and s.last_seen_up is not None
                          for s in services)
        now = self.db_time(ctxt) if needs_clock else None
        return [self.is_up(s, db_time=now) if now is not None
                else False for s in services]
