"""The servicegroup driver interface and the heartbeat timer both drivers use.

A driver answers two questions: "report that this service is alive"
(``join`` starts a ``Reporter`` for one ``(host, topic)``, ``leave`` stops it)
and "is that service alive?" (``is_up``, ``are_up``). Driver state lives on
the driver instance, never in the module: one process may run thousands of
reporters (the fleet benchmark's simulated computes), each with its own timer.
"""

from __future__ import annotations

import abc
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall

from novalet import exception
from novalet.metrics import heartbeat as metrics

LOG = logging.getLogger(__name__)

#: Seconds between ``join`` and the first heartbeat unless told otherwise.
DEFAULT_INITIAL_DELAY = 5.0


class Reporter:
    """One heartbeat timer: ``beat()`` every ``interval`` seconds on an
    oslo.service ``FixedIntervalLoopingCall``.

    A failing beat never ends the loop. An error in ``lost_errors`` means the
    backend (``what``, e.g. "model server") is unreachable: it is logged once
    as "<what> went away" (error, no traceback), and the first beat that works
    again logs "<what> recovered" once (info). Any other error is logged with
    its traceback, every time, and the loop goes on.
    """

    def __init__(self, name: str, beat: Callable[[], Any], *,
                 what: str, lost_errors: tuple[type[BaseException], ...],
                 close: Callable[[], None] | None = None) -> None:
        self.name = name
        self.what = what
        self._beat = beat
        self._close = close
        self._lost_errors = lost_errors
        self.lost = False
        #: Monotonic time of the last beat that worked (None: none yet).
        self.last_worked: float | None = None
        self._timer: Any = None

    def __repr__(self) -> str:
        return "<Reporter %s>" % self.name

    def run_once(self) -> bool:
        """One heartbeat, errors handled as the class says; True if it worked."""
        try:
            with metrics.timer():
                self._beat()
        except Exception as e:
            return self.failed(e)
        return self.worked()

    def failed(self, error: Exception) -> bool:
        """Log a failed beat as the class says (also for beats sent by
        someone else on this reporter's behalf); returns False."""
        metrics.counted(False)
        if isinstance(error, self._lost_errors):
            if not self.lost:
                self.lost = True
                LOG.error("Heartbeat of %s failed: %s went away (%s)",
                          self.name, self.what, error)
        else:
            LOG.error("Unexpected error in the heartbeat of %s; the next one "
                      "is still scheduled", self.name,
                      exc_info=(type(error), error, error.__traceback__))
        return False

    def worked(self) -> bool:
        """Note a beat that worked ("recovered" once after an outage);
        returns True."""
        self.last_worked = time.monotonic()
        metrics.counted(True)
        if self.lost:
            self.lost = False
            LOG.info("Heartbeat of %s: %s recovered", self.name, self.what)
        return True

    def start(self, interval: float, initial_delay: float) -> None:
        """Start beating: first after ``initial_delay``, then every ``interval``."""
        self._timer = loopingcall.FixedIntervalLoopingCall(self.run_once)
        self._timer.start(interval=interval, initial_delay=initial_delay,
                          stop_on_exception=False)

    def stop(self) -> None:
        """Stop the timer, wait for a beat in flight (every backend call has
        a timeout), then release what the reporter holds. No beat runs after
        this returns."""
        if self._timer is not None:
            self._timer.stop()
            self._timer.wait()
            self._timer = None
        if self._close is not None:
            self._close()


class ServiceGroupDriver(abc.ABC):
    """Base of servicegroup drivers (entry point namespace
    ``novalet.servicegroup_drivers``), constructed with the configuration.

    ``initial_delay`` is the default delay before a reporter's first beat;
    ``join`` can override it per service.
    """

    def __init__(self, conf: cfg.ConfigOpts, *,
                 initial_delay: float = DEFAULT_INITIAL_DELAY) -> None:
        self.conf = conf
        self.initial_delay = initial_delay
        self._lock = threading.Lock()
        self._reporters: dict[tuple[str, str], Reporter] = {}
        self._joining: set[tuple[str, str]] = set()

    # -- reporting --------------------------------------------------------

    @abc.abstractmethod
    def _make_reporter(self, host: str, topic: str, service: Any) -> Reporter:
        """Set up what heartbeats of ``service`` need; return its reporter."""

    def join(self, host: str, topic: str, service: Any, *,
             initial_delay: float | None = None) -> None:
        """Start reporting ``service`` (it has ``.service_ref`` and ``.binary``)
        as alive, every ``report_interval`` seconds.

        Raises ``Conflict`` if ``(host, topic)`` already reports in this
        driver; the driver's own backend errors if it cannot set up.
        """
        key = (host, topic)
        with self._lock:
            if key in self._reporters or key in self._joining:
                raise exception.Conflict(
                    reason="%s/%s already joined the service group" % key)
            self._joining.add(key)
        try:
            reporter = self._make_reporter(host, topic, service)
            delay = self.initial_delay if initial_delay is None else initial_delay
            try:
                reporter.start(self.conf.report_interval,
                               self._first_delay(delay))
            except Exception:
                reporter.stop()
                raise
            with self._lock:
                self._reporters[key] = reporter
        finally:
            with self._lock:
                self._joining.discard(key)
        LOG.debug("%s joined the service group (every %ss)", reporter.name,
                  self.conf.report_interval)

    def _first_delay(self, initial_delay: float) -> float:
        return initial_delay

    def leave(self, host: str, topic: str, service: Any = None) -> None:
        """Stop reporting ``(host, topic)``; a no-op if it is not reporting.
        Returns once no heartbeat of it can run any more."""
        with self._lock:
            reporter = self._reporters.pop((host, topic), None)
        if reporter is not None:
            reporter.stop()
            LOG.debug("%s left the service group", reporter.name)

    def joined(self) -> list[tuple[str, str]]:
        """The ``(host, topic)`` pairs reporting through this driver."""
        with self._lock:
            return sorted(self._reporters)

    def reporter(self, host: str, topic: str) -> Reporter | None:
        """The reporter of ``(host, topic)``, if it joined."""
        with self._lock:
            return self._reporters.get((host, topic))

    def stop(self) -> None:
        """Leave for every joined service."""
        for host, topic in self.joined():
            self.leave(host, topic)

    # -- liveness ---------------------------------------------------------

    @abc.abstractmethod
    def is_up(self, service_ref: Any) -> bool:
        """Whether the ``Service`` object ``service_ref`` is alive."""

    def are_up(self, ctxt: Any, services: Sequence[Any]) -> list[bool]:
        """``is_up`` for each of ``services``, in order (drivers batch it)."""
        return [self.is_up(s) for s in services]


def service_name(host: str, topic: str, service: Any) -> str:
    """How logs name a reporting service."""
    return "%s on %s (topic %s)" % (service_binary(service), host, topic)


def service_binary(service: Any) -> str:
    """The binary of ``service`` (a ``novalet.service.Service`` or alike)."""
    binary = getattr(service, "binary", None)
    if binary is None:
        binary = service.service_ref.binary
    return str(binary)
