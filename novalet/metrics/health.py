"""``GET /healthz``: is this service serving?

A check is a callable returning None (fine) or a one-line reason. The
endpoint answers 200 ``ok`` when every check passes, else 503 with the first
reason. Probes that cost a round trip (broker, database) are cached for
``[metrics] health_probe_interval`` seconds, so a busy scraper cannot turn
them into load; one probe runs at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

Check = Callable[[], "str | None"]


def one_line(error: BaseException) -> str:
    text = str(getattr(error, "message", None) or error or type(error).__name__)
    return " ".join(text.split())[:300]


class Cached:
    """``check``'s answer, re-asked at most once per ``seconds()``."""

    def __init__(self, check: Check, seconds: Callable[[], float]) -> None:
        self._check = check
        self._seconds = seconds
        self._lock = threading.Lock()
        self._expires = 0.0
        self._answer: str | None = None

    def __call__(self) -> str | None:
        with self._lock:
            if time.monotonic() >= self._expires:
                self._answer = self._check()
                self._expires = time.monotonic() + self._seconds()
            return self._answer


class Health:
    """The checks of one service."""

    def __init__(self, checks: Sequence[Check]) -> None:
        self.checks = list(checks)

    def status(self) -> tuple[bool, str]:
        """``(True, "ok")`` or ``(False, reason)``."""
        for check in self.checks:
            try:
                reason = check()
            except Exception as e:  # a check that breaks is a failed check
                reason = "health check failed: %s" % one_line(e)
            if reason:
                return False, reason
        return True, "ok"


def _cached(conf: Any, check: Check) -> Check:
    return Cached(check, lambda: float(conf.metrics.health_probe_interval))


def broker_check(conf: Any) -> Check:
    """The broker of ``transport_url`` accepts a connection (one AMQP
    connection per probe; none for ``fake://``)."""
    from novalet import exception, rpc

    def check() -> str | None:
        try:
            rpc.check_broker(conf, 0)
        except exception.RPCUnavailable as e:
            return "broker unreachable: %s" % one_line(e)
        return None

    return _cached(conf, check)


def database_check(conf: Any) -> Check:
    """The database answers (the database clock is read: one query)."""
    from novalet import context, objects

    def check() -> str | None:
        try:
            objects.Service.get_db_time(context.get_admin_context())
        except Exception as e:
            return "database unreachable: %s" % one_line(e)
        return None

    return _cached(conf, check)


def heartbeat_check(conf: Any, servicegroup_api: Any) -> Check:
    """Every service that joined ``servicegroup_api`` in this process had a
    heartbeat work within ``service_down_time`` (the time after which the
    fleet sees it down). Before its first beat, a service is not healthy."""

    def check() -> str | None:
        driver = servicegroup_api.driver
        now = time.monotonic()
        joined = driver.joined()
        if not joined:
            return "no service has joined the service group"
        for host, topic in joined:
            reporter = driver.reporter(host, topic)
            if reporter is None:
                continue
            last = reporter.last_worked
            if last is None:
                return "%s: no heartbeat has worked yet" % reporter.name
            if now - last > conf.service_down_time:
                return "%s: last heartbeat %.0fs ago (service_down_time %ss)" % (
                    reporter.name, now - last, conf.service_down_time)
        return None

    return check
