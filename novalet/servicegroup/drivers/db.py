"""``db``: liveness as a heartbeat on the ``Service`` record.

Reporting: every ``report_interval`` seconds each service raises its
``report_count`` by one, through whatever indirection API the process
installed (on a compute, the conductor); the database then moves
``last_seen_up`` to its own clock. One timer per driver (``Batcher``) keeps
every joined service's schedule and sends the beats due together in one
``ServiceList.report_heartbeats(ids)`` call, one UPDATE for all of them: a
process with one service sends a call of one id and no object, a process
simulating a thousand computes still sends one call per tick. A conductor that
does not have that method (release 1) refuses it; the driver then sends one
``Service.save()`` of ``report_count + 1`` per service, and tries batching
again after ``[upgrade_levels] refresh_interval``. A service whose record was
deleted while it runs registers again. ``DbDriver(conf, batched=False)``
gives every service its own timer and ``save()`` (no batching at all).

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
import heapq
import itertools
import threading
import time
from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging
from oslo_service import loopingcall

from novalet import app, exception, objects
from novalet import context as novalet_context
from novalet.metrics import heartbeat as metrics
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


class DbReporter(base.Reporter):
    """The heartbeat of one service: ``run_once()`` is one ``Service.save()``
    of ``report_count + 1``; started with a ``Batcher``, its beats go out in
    that batcher's calls instead of on a timer of its own."""

    def __init__(self, name: str, service: Any, timeout: float,
                 batcher: Batcher | None) -> None:
        super().__init__(name, self._save_beat, what="model server",
                         lost_errors=LOST_ERRORS)
        self.service = service
        self.timeout = timeout
        self.batcher = batcher

    def bounded(self, record: Any) -> Any:
        """``record`` (the service's own record, which only its heartbeat
        and re-registration call with) with a context whose calls wait at
        most this reporter's timeout."""
        ctxt = record.obj_context or novalet_context.get_admin_context()
        if ctxt.call_timeout != self.timeout:
            record._context = ctxt.with_call_timeout(self.timeout)
        return record

    def _save_beat(self) -> None:
        ref = self.bounded(self.service.service_ref)
        ref.report_count += 1
        try:
            ref.save()
        except exception.ServiceNotFound:
            self.register_again()

    def register_again(self) -> None:
        """The record was deleted while the service runs: it is alive, so
        create it again (and beat once) rather than fail every beat."""
        LOG.warning("The record of %s was deleted while it runs; "
                    "registering it again", self.service)
        old = self.bounded(self.service.service_ref)
        ref = objects.Service(old.obj_context, host=old.host,
                              binary=old.binary, topic=old.topic,
                              version=old.version,
                              app_releases=app.current_releases())
        ref.create()
        self.service.service_ref = ref
        ref.report_count = 1
        ref.save()
        replaced = getattr(self.service, "record_replaced", None)
        if replaced is not None:
            try:
                replaced(ref)
            except Exception:
                LOG.exception("%s could not follow its new record %s",
                              self.service, ref.id)

    def start(self, interval: float, initial_delay: float) -> None:
        if self.batcher is None:
            super().start(interval, initial_delay)
        else:
            self.batcher.add(self, initial_delay)

    def stop(self) -> None:
        if self.batcher is None:
            super().stop()
        else:
            self.batcher.remove(self)


class Batcher:
    """One oslo.service ``DynamicLoopingCall`` for the reporters of a driver:
    each keeps its own schedule (first beat after its initial delay, then
    every ``report_interval``); the beats due within ``window`` seconds go in
    one ``ServiceList.report_heartbeats`` call (at most ``max_batch`` ids).
    The timer runs only while some reporter is added."""

    #: Most services one call carries.
    max_batch = 1000

    def __init__(self, conf: Any) -> None:
        self.conf = conf
        self._schedule: list[tuple[float, int, DbReporter]] = []  # a heap
        self._members: set[DbReporter] = set()
        self._order = itertools.count()
        self._lock = threading.Lock()      # the schedule and members
        self._sending = threading.Lock()   # held while a batch is out
        self._timer: Any = None
        # Monotonic time until which beats go out as saves: set when the
        # conductor refuses a batch, back to 0 when one is taken again.
        self._save_until = 0.0

    @property
    def interval(self) -> float:
        return max(0.001, float(self.conf.report_interval))

    @property
    def window(self) -> float:
        """Beats due this close together share a call (early by at most this)."""
        return min(0.25, self.interval / 4)

    def add(self, reporter: DbReporter, initial_delay: float) -> None:
        with self._lock:
            self._members.add(reporter)
            heapq.heappush(self._schedule, (time.monotonic() + initial_delay,
                                            next(self._order), reporter))
            if self._timer is None:
                self._timer = loopingcall.DynamicLoopingCall(self._tick)
                self._timer.start(initial_delay=0, stop_on_exception=False)

    def remove(self, reporter: DbReporter) -> None:
        """No beat of ``reporter`` is sent once this returns (a call in
        flight that carries it is waited for; every call has a timeout)."""
        with self._lock:
            self._members.discard(reporter)
            timer = None
            if not self._members:
                timer, self._timer = self._timer, None
        with self._sending:
            pass
        if timer is not None:
            timer.stop()
            timer.wait()

    def _tick(self) -> float:
        with self._sending:
            due = self._take_due()
            if due:
                self.send(due)
        with self._lock:
            if not self._schedule:
                return self.window
            return max(0.0, min(self._schedule[0][0] - time.monotonic(),
                                self.window))

    def _take_due(self) -> list[tuple[float, DbReporter]]:
        """Pop the beats due now (and within ``window``) and schedule each
        reporter's next one, an interval later (an interval from now if
        the beat is more than an interval late: no burst after an outage)."""
        now, interval = time.monotonic(), self.interval
        due: list[tuple[float, DbReporter]] = []
        with self._lock:
            while (self._schedule and len(due) < self.max_batch
                   and self._schedule[0][0] <= now + self.window):
                when, _, reporter = heapq.heappop(self._schedule)
                if reporter not in self._members:
                    continue  # it left
                due.append((when, reporter))
                heapq.heappush(self._schedule, (
                    max(when + interval, now), next(self._order), reporter))
        return due

    def send(self, due: list[tuple[float, DbReporter]]) -> None:
        """One heartbeat for each reporter in ``due`` (``(due time,
        reporter)``), errors logged per reporter as ``Reporter`` does."""
        reporters = [reporter for _, reporter in due]
        if time.monotonic() < self._save_until:
            for reporter in reporters:
                reporter.run_once()
            return
        # A record with changes not yet written (fields an older conductor
        # could not take, say) beats with a save, which carries them.
        pending = [r for r in reporters if r.service.service_ref.obj_what_changed()]
        for reporter in pending:
            reporter.run_once()
        reporters = [r for r in reporters if r not in pending]
        if not reporters:
            return
        refs = [r.service.service_ref for r in reporters]
        try:
            ctxt = (refs[0].obj_context or novalet_context.get_admin_context()
                    ).with_call_timeout(reporters[0].timeout)
            with metrics.timer():
                missing = set(objects.ServiceList.report_heartbeats(
                    ctxt, [ref.id for ref in refs]))
        except exception.DispatchRefused as e:
            # An older conductor: one save per service until it is upgraded.
            # (Logged by class: an error from the wire carries the remote
            # traceback in its text.)
            retry = max(float(self.conf.upgrade_levels.refresh_interval),
                        self.interval)
            log = LOG.debug if self._save_until else LOG.info
            log("The conductor does not take batched heartbeats (%s); sending "
                "one Service.save() per service, trying again in %ds",
                type(e).__name__.removesuffix("_Remote"), retry)
            self._save_until = time.monotonic() + retry
            for reporter in reporters:
                reporter.run_once()
            return
        except LOST_ERRORS as e:
            for reporter in reporters:
                reporter.failed(e)  # type: ignore[arg-type]
            return
        except Exception:
            LOG.exception("Unexpected error in the heartbeat of %d service(s) "
                          "(%s, ...); the next ones are still scheduled",
                          len(reporters), reporters[0].name)
            return
        if self._save_until:
            self._save_until = 0.0
            LOG.info("The conductor takes batched heartbeats again")
        for reporter, ref in zip(reporters, refs, strict=True):
            if ref.id in missing:
                try:
                    reporter.register_again()
                except Exception as e:
                    reporter.failed(e)
                    continue
            else:
                # Keep the local copy true (it is not sent by a later save).
                ref.report_count += 1
                ref.obj_reset_changes(["report_count"])
            reporter.worked()


class DbDriver(base.ServiceGroupDriver):
    """Heartbeats on the ``Service`` records, batched per process (see the
    module docstring); ``batched=False``: one timer and ``save()`` each."""

    batcher_class = Batcher

    def __init__(self, conf: Any, *,
                 initial_delay: float = base.DEFAULT_INITIAL_DELAY,
                 batched: bool = True) -> None:
        super().__init__(conf, initial_delay=initial_delay)
        self.batcher = self.batcher_class(conf) if batched else None

    def _make_reporter(self, host: str, topic: str,
                       service: Any) -> base.Reporter:
        if service.service_ref is None:
            raise exception.ObjectActionError(
                action="join", reason="%s has no Service record" % service)
        # A beat waits at most two intervals: after a broker or conductor
        # restart the next beat goes out soon instead of queuing behind a
        # call whose answer is lost (rpc_response_timeout, 60 s by default).
        timeout = 2.0 * max(1.0, float(self.conf.report_interval))
        return DbReporter(base.service_name(host, topic, service), service,
                          timeout, self.batcher)

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
