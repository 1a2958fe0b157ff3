"""The HTTP endpoint of a service: ``GET /metrics`` and ``GET /healthz``.

Off unless ``[metrics] bind_port`` is set. oslo.service's launcher runs a
service in a forked worker process (cotyledon), even for one worker, so
there are two ways to serve:

* ``novalet-conductor`` (``setup(conf, multiprocess=True)``): a directory
  of this run's own puts prometheus_client in multiprocess mode; every
  worker forked afterwards writes its values to files in it, and the parent
  process alone serves the endpoint, summing every worker's files
  (``MultiProcessCollector``), plus the fleet, read by the parent. The
  parent removes the directory when it exits. In-flight gauges of a worker
  that died are dropped at the next scrape; its counters stay in the sums.
* ``novalet-compute`` (one worker): the parent binds the port (a port in
  use fails the start with one line), the worker serves it from its own
  memory (``Endpoint.start()`` in the worker, through ``WithEndpoint``).
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import socket
import socketserver
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref import simple_server

from oslo_log import log as logging
from oslo_service import service as oslo_service

from novalet import exception
from novalet.metrics import database, registry
from novalet.metrics import health as health_mod

LOG = logging.getLogger(__name__)

_state_lock = threading.Lock()
_multiprocess_dir: str | None = None
_dir_owner: int | None = None
_endpoints: list[Endpoint] = []


def enabled(conf: Any) -> bool:
    return conf.metrics.bind_port is not None


def setup(conf: Any, *, multiprocess: bool = False) -> registry.Metrics | None:
    """Turn this process's metrics on if ``[metrics] bind_port`` is set
    (before any worker is forked); returns them, or None when off.
    ``multiprocess``: for workers whose values this process serves."""
    global _multiprocess_dir, _dir_owner
    if not enabled(conf):
        return None
    with _state_lock:
        directory = None
        if multiprocess and registry.current is None:
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                LOG.info("Ignoring PROMETHEUS_MULTIPROC_DIR=%s: this run "
                         "uses a directory of its own",
                         os.environ["PROMETHEUS_MULTIPROC_DIR"])
            directory = tempfile.mkdtemp(prefix="novalet-metrics-")
            _multiprocess_dir, _dir_owner = directory, os.getpid()
            atexit.register(cleanup)
            LOG.info("Collecting the workers' metrics in %s", directory)
    metrics = registry.enable(directory)
    # Every database engine of this process counts its errors, made
    # already or not: the database layer calls the hook, it imports no
    # metrics.
    database.watch_engines()
    return metrics


def multiprocess_dir() -> str | None:
    """The directory of this run's per-process metric files, if any."""
    return _multiprocess_dir


def cleanup() -> None:
    """Stop this process's endpoints; the process that created the
    multiprocess directory removes it (a forked worker never does)."""
    global _multiprocess_dir
    for endpoint in list(_endpoints):
        endpoint.stop()
    with _state_lock:
        directory = _multiprocess_dir
        if directory is None or _dir_owner != os.getpid():
            return
        _multiprocess_dir = None
    shutil.rmtree(directory, ignore_errors=True)


_PID = re.compile(r"_(\d+)\.db$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _WorkersCollector:
    """Every worker's values from the multiprocess directory, after
    dropping the live-mode gauges of processes that are gone."""

    def __init__(self, directory: str) -> None:
        from prometheus_client import multiprocess

        self._directory = directory
        self._inner = multiprocess.MultiProcessCollector(None, path=directory)

    def collect(self) -> Iterator[Any]:
        from prometheus_client import multiprocess

        for path in glob.glob(os.path.join(self._directory, "gauge_live*.db")):
            match = _PID.search(path)
            if match and not _alive(int(match.group(1))):
                multiprocess.mark_process_dead(int(match.group(1)),
                                               self._directory)
        return self._inner.collect()  # type: ignore[no-any-return]


class _ThreadingServer(socketserver.ThreadingMixIn, simple_server.WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ThreadingServer6(_ThreadingServer):
    address_family = socket.AF_INET6


class _QuietHandler(simple_server.WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("metrics endpoint: " + format, *args)


class Endpoint:
    """``/metrics`` of ``collectors`` (and this process's metrics, or every
    worker's) and ``/healthz`` of ``health``, on ``host:port`` in a thread."""

    def __init__(self, host: str, port: int, health: health_mod.Health,
                 collectors: Iterable[Any] = ()) -> None:
        import prometheus_client as prom
        from prometheus_client import process_collector

        metrics = registry.current
        self.registry = prom.CollectorRegistry()
        if _multiprocess_dir is not None:
            self.registry.register(_WorkersCollector(_multiprocess_dir))
        else:
            if metrics is not None and metrics.registry is not None:
                self.registry.register(_Forward(metrics.registry))
            process_collector.ProcessCollector(registry=self.registry)
        for collector in collectors:
            self.registry.register(collector)
        self.health = health
        self._metrics_app = prom.make_wsgi_app(self.registry)
        server_class = _ThreadingServer6 if ":" in host else _ThreadingServer
        try:
            self._server = simple_server.make_server(
                host, port, self._app, server_class=server_class,
                handler_class=_QuietHandler)
        except OSError as e:  # in use, a privileged port, an address not ours
            raise exception.MetricsPortUnavailable(
                port=port, host=host, reason=e.strerror or e) from e
        self.host = host
        self.port = self._server.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "[%s]" % self.host if ":" in self.host else self.host
        return "http://%s:%d" % (host, self.port)

    def _app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            start_response("405 Method Not Allowed",
                           [("Content-Type", "text/plain"), ("Allow", "GET")])
            return [b"only GET\n"]
        if path == "/metrics":
            return self._metrics_app(environ, start_response)
        if path == "/healthz":
            ok, reason = self.health.status()
            start_response("200 OK" if ok else "503 Service Unavailable",
                           [("Content-Type", "text/plain; charset=utf-8"),
                            ("Cache-Control", "no-store")])
            return [(reason + "\n").encode()]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"GET /metrics or /healthz\n"]

    def start(self) -> Endpoint:
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="novalet-metrics", daemon=True)
        self._thread.start()
        with _state_lock:
            _endpoints.append(self)
        LOG.info("Metrics on %s/metrics, health on %s/healthz", self.url,
                 self.url)
        return self

    def stop(self) -> None:
        """Stop serving (if this process serves it) and close the socket."""
        with _state_lock:
            started = self in _endpoints
            if started:
                _endpoints.remove(self)
        if started:
            self._server.shutdown()
            if self._thread is not None:
                self._thread.join(10)
        self._server.server_close()

    @property
    def serving(self) -> bool:
        return self._thread is not None

    def close_in_child(self) -> None:
        """In a forked worker: drop the inherited listening socket of an
        endpoint the parent serves (its thread exists in the parent only)."""
        self._server.socket.close()


class _Forward:
    """The metrics of a one-process registry, through the endpoint's."""

    def __init__(self, source: Any) -> None:
        self._source = source

    def collect(self) -> Iterator[Any]:
        return self._source.collect()  # type: ignore[no-any-return]


def _after_fork_in_child() -> None:
    for endpoint in list(_endpoints):
        endpoint.close_in_child()
    _endpoints.clear()  # an endpoint bound but not started stays, to serve here


os.register_at_fork(after_in_child=_after_fork_in_child)


def serve(conf: Any, *, checks: Iterable[health_mod.Check] = (),
          collectors: Iterable[Any] = (), start: bool = True) -> Endpoint | None:
    """Bind the endpoint on ``[metrics] bind_host:bind_port`` and start
    serving it unless ``start`` is false (metrics must be ``setup()``);
    None when metrics are off. Raises ``MetricsPortUnavailable`` if it
    cannot bind (the port in use, say)."""
    if not enabled(conf) or registry.current is None:
        return None
    endpoint = Endpoint(conf.metrics.bind_host, conf.metrics.bind_port,
                        health_mod.Health(list(checks)), collectors)
    return endpoint.start() if start else endpoint


class WithEndpoint(oslo_service.ServiceBase):
    """``service`` whose worker process serves ``endpoint`` while it runs
    (the launcher forks the worker after the endpoint was bound)."""

    def __init__(self, service: Any, endpoint: Endpoint) -> None:
        self.service = service
        self.endpoint = endpoint

    def start(self) -> None:
        self.endpoint.start()
        self.service.start()

    def stop(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.service.stop(*args, **kwargs)
        finally:
            self.endpoint.stop()

    def wait(self) -> None:
        self.service.wait()

    def reset(self) -> None:
        self.service.reset()
