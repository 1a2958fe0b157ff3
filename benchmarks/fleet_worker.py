"""The load generator of ``fleet.py`` (``fleet.py --worker``): N/K
simulated computes in one process, every heartbeat timed, each compute
signing with its own host key. Not a benchmark itself (no ``__main__``)."""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import resource
import sys
import threading
import time
import types
from collections.abc import Callable
from concurrent import futures
from typing import Any

BINARY, TOPIC = "novalet-compute", "compute"
Beat = tuple[float, float, bool, str]  # (start or due time, latency, ok, host)


class Recorder:
    """Every heartbeat of this process: when, how long, whether it worked."""

    def __init__(self) -> None:
        self.beats: list[Beat] = []
        self.calls: list[tuple[float, float, int]] = []  # batched calls: start, latency, beats

    def timed(self, host: str, run_once: Callable[[], bool]) -> Callable[[], bool]:
        def run() -> bool:
            start, t0 = time.time(), time.perf_counter()
            ok = run_once()
            self.beats.append((start, time.perf_counter() - t0, ok, host))
            return ok
        return run

    def summary(self, t0: float, t1: float) -> dict[str, Any]:
        """Beats that started (were due) in [t0, t1); the longest gap between
        two completed beats of one compute, ending in the window."""
        window = [b for b in self.beats if t0 <= b[0] < t1]
        ends: dict[str, list[float]] = {}
        for start, latency, ok, host in sorted(self.beats):
            if ok:
                ends.setdefault(host, []).append(start + latency)
        gap = max((b - a for e in ends.values() for a, b in itertools.pairwise(e)
                   if t0 <= b < t1), default=0.0)
        return {"latencies": [round(b[1], 5) for b in window if b[2]],
                "failed": sum(1 for b in window if not b[2]), "max_gap": gap,
                "calls": [c[1:] for c in self.calls if t0 <= c[0] < t1]}


class HostSigners:
    """The simulated computes' own keys, one file each in ``key_dir``: a
    call made inside ``as_host(host)`` is signed with ``host``'s key, any
    other with the process's own key (``[auth]``, if any). Installed as
    ``novalet.auth.signer``, which novalet's RPC client asks at every call."""

    def __init__(self, key_dir: str, conductor_topic: str) -> None:
        from novalet import auth
        self._auth = auth
        self._process_signer = auth.signer
        self._dir = key_dir
        self._topic = conductor_topic
        self._signers: dict[str, Any] = {}
        self._local = threading.local()
        auth.signer = self.current  # type: ignore[assignment]

    def load(self, host: str) -> None:
        ring = self._auth.keys.KeyRing.from_files(
            None, os.path.join(self._dir, host + ".key"), self._topic)
        assert ring is not None
        self._signers[host] = self._auth.signing.Signer(ring)

    def current(self) -> Any:
        host = getattr(self._local, "host", None)
        return self._process_signer() if host is None else self._signers[host]

    @contextlib.contextmanager
    def as_host(self, host: str | None) -> Any:
        before = getattr(self._local, "host", None)
        self._local.host = host
        try:
            yield
        finally:
            self._local.host = before


def timed_driver(name: str, conf: Any, recorder: Recorder, group_prefix: str,
                 batched: bool = True, signers: HostSigners | None = None) -> Any:
    """The ``name`` servicegroup driver, every beat timed."""
    from novalet.servicegroup.drivers import db, tooz

    def signing(hosts: set[str]) -> Any:
        """Sign as the one host beating, if host keys are in use."""
        if signers is None or len(hosts) != 1:
            return contextlib.nullcontext()
        return signers.as_host(hosts.pop())

    class TimedBatcher(db.Batcher):
        def send(self, due: list[tuple[float, Any]]) -> None:
            start, t0 = time.time(), time.monotonic()
            with signing({reporter.name for _, reporter in due}):
                super().send(due)
            end = time.monotonic()
            recorder.calls.append((start, end - t0, len(due)))
            for when, reporter in due:  # when: monotonic due time (or just after)
                recorder.beats.append((start - (t0 - when), end - min(when, t0),
                                       not reporter.lost, reporter.name))

    if name == "db":
        class TimedDbDriver(db.DbDriver):
            batcher_class = TimedBatcher

            def _make_reporter(self, host: str, topic: str, service: Any) -> Any:
                reporter = super()._make_reporter(host, topic, service)
                reporter.name = host
                if not batched:
                    run_once = reporter.run_once

                    def signed_run_once() -> bool:
                        with signing({host}):
                            return bool(run_once())
                    reporter.run_once = recorder.timed(host, signed_run_once)  # type: ignore[method-assign]
                return reporter

        return TimedDbDriver(conf, batched=batched)

    class TimedToozDriver(tooz.ToozDriver):
        def _make_reporter(self, host: str, topic: str, service: Any) -> Any:
            reporter = super()._make_reporter(host, topic, service)
            reporter.run_once = recorder.timed(host, reporter.run_once)  # type: ignore[method-assign]
            return reporter

    return TimedToozDriver(conf, group_prefix=group_prefix)


def worker(args: argparse.Namespace) -> int:
    from novalet import conf as novalet_conf
    from novalet import context, indirection, objects, servicegroup
    conf = novalet_conf.CONF
    novalet_conf.parse_args(["--config-file", args.config], default_config_files=[])
    conf.set_override("indirection", "rpc", "objects")
    objects.register_all()
    indirection.configure(conf, binary=BINARY)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # tooz: a socket each
    ctxt, rnd, recorder = context.get_admin_context(), random.Random(args.index), Recorder()
    hosts = ["%s-w%d-%05d" % (args.prefix, args.index, i) for i in range(args.count)]
    signers = HostSigners(args.keys, conf.conductor.topic)
    for host in hosts:
        signers.load(host)

    def create(host: str) -> Any:
        with signers.as_host(host):  # each compute creates its own record
            ref = objects.Service(ctxt, host=host, binary=BINARY, topic=TOPIC)
            ref.create()
        return ref

    with futures.ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(create, hosts))
    print("created", flush=True)
    if not sys.stdin.readline():
        os._exit(1)  # the run was interrupted
    def new_api() -> Any:
        return servicegroup.API(conf, driver=timed_driver(
            conf.servicegroup_driver, conf, recorder, args.group_prefix,
            batched=args.mode != "save",
            signers=None if args.mode == "batched" else signers))

    apis = [new_api()]

    def join_all() -> None:
        for ref in refs:
            if args.mode == "separate" and apis[-1].driver.joined():
                apis.append(new_api())
            apis[-1].join(ref.host, TOPIC, types.SimpleNamespace(service_ref=ref, binary=BINARY),
                          initial_delay=rnd.uniform(0, conf.report_interval))

    joining = threading.Thread(target=join_all, daemon=True)
    joining.start()
    joining.join(args.join_timeout)  # the ones not joined by then run but are down

    def stop() -> None:
        for api in apis:
            api.stop()

    print("joined %d threads" % threading.active_count(), flush=True)
    window = sys.stdin.readline().split()
    if window:
        print(json.dumps(recorder.summary(float(window[0]), float(window[1]))), flush=True)
    threading.Timer(60, os._exit, (3,)).start()  # a bound on stopping
    stop()
    os._exit(0)


