"""A novalet service process: its record, RPC server, periodic tasks, liveness.

Start sequence (``Service.start``), in this order:

1. install the indirection API (``[objects] indirection``, the binary's default);
2. get or create the ``Service`` record (a sibling worker that creates it
   first is tolerated);
3. ``manager.init_host()``;
4. ``manager.pre_start_hook()`` (the compute's first resource audit);
5. the RPC server on ``topic`` with ``server=host``;
6. ``manager.post_start_hook()``;
7. servicegroup ``join`` (the heartbeat starts);
8. the periodic tasks, after a random delay in ``[0, periodic_fuzzy_delay]``.

``stop()`` stops timers, waits (up to ``periodic_task_stop_timeout``) for a
periodic task that is running, stops the heartbeat and the RPC server, then
``manager.cleanup_host()``; it keeps the record.
"""

from __future__ import annotations

import gc
import random
import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import loopingcall
from oslo_service import service as oslo_service
from oslo_utils import timeutils

from novalet import app, exception, indirection, objects, rpc, upgrade
from novalet import context as novalet_context

LOG = logging.getLogger(__name__)


def rpc_server(topic: str, endpoints: Any, *, server: str, version: str = "1.0",
               objects_local: bool = False, conf: Any = None) -> rpc.Server:
    """An RPC server of novalet's: what arrives is rebuilt by the objects'
    serializer (``objects_local``, the conductor: without asking any
    indirection API, its refusals counted by the conductor's metrics), and
    every request is counted by the RPC metrics."""
    from novalet.metrics import conductor as conductor_metrics
    from novalet.metrics import rpc as rpc_metrics
    from novalet.objects import base as objects_base

    def refused(entity: Any) -> None:
        conductor_metrics.refused_before_dispatch(
            entity, objects_base.NovaletObject.OBJ_SERIAL_NAMESPACE)

    entities = objects_base.NovaletObjectSerializer(
        local=objects_local, on_refused=refused if objects_local else None)
    return rpc.Server(topic, endpoints, server=server, version=version,
                      entities=entities, observer=rpc_metrics.OBSERVER, conf=conf)


def freeze_heap() -> None:
    """Exempt everything made so far (modules, configuration, SQLAlchemy
    metadata, the service's own set-up) from garbage collection: it lives as
    long as the process, yet every full collection would scan it again, tens
    of milliseconds in the middle of some RPC call. Called by the service
    entry points before the launcher starts the service (workers forked
    after it share those pages) and by a ``freeze_heap`` service once
    started."""
    gc.collect()
    gc.freeze()


class Service(oslo_service.Service):
    """One novalet service (conductor or compute) in one process."""

    def __init__(self, conf: cfg.ConfigOpts, *, host: str, binary: str,
                 topic: str, manager: Any, rpc_version: str,
                 default_indirection: str,
                 servicegroup_api: Any = None,
                 periodic_enable: bool = True,
                 objects_local: bool = False,
                 periodic_fuzzy_delay: int | None = None,
                 freeze_heap: bool = False) -> None:
        super().__init__()
        #: Once started, exempt what start-up made from garbage collection
        #: (the service's own process only: not where tests start many).
        self.freeze_heap = freeze_heap
        self.conf = conf
        self.host = host
        self.binary = binary
        self.topic = topic
        self.manager = manager
        self.rpc_version = rpc_version
        self.default_indirection = default_indirection
        self.servicegroup_api = servicegroup_api
        self.periodic_enable = periodic_enable
        self.objects_local = objects_local
        self.periodic_fuzzy_delay = (conf.periodic_fuzzy_delay
                                     if periodic_fuzzy_delay is None
                                     else periodic_fuzzy_delay)
        self.service_ref: Any = None
        self.rpcserver: rpc.Server | None = None
        self._periodic: Any = None
        self.started = False
        self._stopped = threading.Event()
        #: Held while periodic tasks run; none starts once _stopping is set.
        self._periodic_lock = threading.Lock()
        self._stopping = False

    def __repr__(self) -> str:
        return "<Service %s on %s (topic %s)>" % (self.binary, self.host,
                                                  self.topic)

    # -- lifecycle -------------------------------------------------------

    def start(self) -> None:
        self._stopping = False
        objects.register_all()
        indirection.configure(self.conf, default=self.default_indirection,
                              binary=self.binary)
        rpc.init(self.conf)
        ctxt = novalet_context.get_admin_context()
        self.service_ref = self._wait_for_record(ctxt)
        if hasattr(self.manager, "service_ref"):
            self.manager.service_ref = self.service_ref
        self.manager.init_host()
        self.manager.pre_start_hook()
        self.rpcserver = rpc_server(self.topic, [self.manager],
                                    server=self.host, version=self.rpc_version,
                                    objects_local=self.objects_local)
        self.rpcserver.start()
        self.manager.post_start_hook()
        if self.servicegroup_api is not None:
            self.servicegroup_api.join(self.host, self.topic, self)
        if self.periodic_enable and hasattr(self.manager,
                                            "run_periodic_tasks"):
            delay = (random.randint(0, self.periodic_fuzzy_delay)
                     if self.periodic_fuzzy_delay else 0)
            self._periodic = loopingcall.DynamicLoopingCall(
                self.periodic_tasks)
            self._periodic.start(
                initial_delay=delay,
                periodic_interval_max=self.conf.periodic_interval_max)
        self.started = True
        if self.freeze_heap:
            freeze_heap()
        LOG.info("%s started on %s (topic %s, record %s)", self.binary,
                 self.host, self.topic, self.service_ref.uuid)

    def _wait_for_record(self, ctxt: Any) -> Any:
        """Get or create the record, waiting for the conductor if needed."""
        warned = False
        while True:
            try:
                return self._get_or_create_record(ctxt)
            except exception.RPCUnavailable as e:
                if self._stopped.is_set():
                    raise
                if not warned:
                    LOG.warning("Waiting for the conductor: %s", e.message)
                    warned = True
                self._stopped.wait(1.0)

    def _get_or_create_record(self, ctxt: Any) -> Any:
        try:
            ref = objects.Service.get_by_host_and_binary(ctxt, self.host,
                                                         self.binary)
        except exception.ServiceNotFound:
            ref = objects.Service(ctxt, host=self.host, binary=self.binary,
                                  topic=self.topic,
                                  version=upgrade.releases.SERVICE_VERSION,
                                  started_at=timeutils.utcnow(),
                                  app_releases=app.current_releases())
            try:
                ref.create()
                return ref
            except exception.ServiceBinaryExists:
                # A sibling worker won the race to create it.
                ref = objects.Service.get_by_host_and_binary(
                    ctxt, self.host, self.binary)
        version = upgrade.releases.SERVICE_VERSION
        if ref.version != version:
            ref.version = version
        releases = app.current_releases()
        if (not ref.obj_attr_is_set("app_releases")
                or ref.app_releases != releases):
            ref.app_releases = releases
        ref.started_at = timeutils.utcnow()
        ref.save()
        return ref

    def record_replaced(self, ref: Any) -> None:
        """The servicegroup registered this running service again (its
        record was deleted under it): ``ref`` is the new record. The manager
        follows it (``service_record_replaced(context, ref)``: a compute
        links its nodes to it)."""
        self.service_ref = ref
        if hasattr(self.manager, "service_ref"):
            self.manager.service_ref = ref
        follow = getattr(self.manager, "service_record_replaced", None)
        if follow is not None:
            follow(novalet_context.get_admin_context(), ref)

    def reset(self) -> None:
        """oslo.service's in-process ``Launcher.restart()``: re-read the
        peers' versions for the caps (mutable options were already reloaded).

        Not what SIGHUP does to ``novalet-conductor`` and ``novalet-compute``:
        their launcher (oslo.service's threading backend, on cotyledon)
        re-reads the config files in the parent with ``mutate_config_files``
        (immutable options keep their values), then stops the worker as
        SIGTERM does and forks a new one, which starts from the beginning
        (``start()``: record, audit, RPC server, caps read afresh)."""
        api = indirection.current()
        if api is not None and hasattr(api, "invalidate_caps"):
            api.invalidate_caps()
        LOG.info("%s on %s: configuration reloaded", self.binary, self.host)

    def periodic_tasks(self, raise_on_error: bool = False) -> float:
        """Run due periodic tasks; returns the seconds until the next one
        (none run once ``stop()`` began)."""
        with self._periodic_lock:
            if self._stopping:
                return float(self.conf.periodic_interval_max)
            ctxt = novalet_context.get_admin_context()
            return self.manager.run_periodic_tasks(  # type: ignore[no-any-return]
                ctxt, raise_on_error=raise_on_error)

    def _wait_for_periodic_tasks(self) -> None:
        """Let a running periodic task (an audit reading the driver) finish
        before the manager closes what it uses; bounded."""
        self._stopping = True
        timeout = self.conf.periodic_task_stop_timeout
        if timeout > 0:
            idle = self._periodic_lock.acquire(timeout=timeout)
        else:
            idle = self._periodic_lock.acquire(blocking=False)
        if idle:
            self._periodic_lock.release()
            return
        LOG.warning("%s on %s: a periodic task is still running after %ss; "
                    "stopping anyway", self.binary, self.host, timeout)

    def stop(self, graceful: bool = True) -> None:
        if self._periodic is not None:
            self._periodic.stop()
        self._wait_for_periodic_tasks()
        if self.servicegroup_api is not None:
            try:
                self.servicegroup_api.leave(self.host, self.topic, self)
            except Exception:
                LOG.exception("Leaving the service group failed")
        if self.rpcserver is not None:
            try:
                self.rpcserver.stop()
                if graceful:
                    self.rpcserver.wait()
            except Exception:
                LOG.exception("Stopping the RPC server failed")
        if hasattr(self.manager, "cleanup_host"):
            self.manager.cleanup_host()
        self.started = False
        self._stopped.set()
        super().stop(graceful=graceful)
        LOG.info("%s on %s stopped", self.binary, self.host)

    def wait(self) -> None:
        """Block until ``stop()``."""
        self._stopped.wait()
