"""Which novalet code one warm ``ComputeNode.save()`` runs on the rpc path.

A conductor in this process behind oslo.messaging's ``fake://`` transport
(its own thread, as in the functional tests), a SQLite database in a
temporary directory, one compute node record. After warm-up saves, one
more ``save()`` is traced with ``sys.settrace`` in every thread, and the
novalet modules, distinct functions and calls it entered are printed for
the caller's side, the conductor's side and both together.

    python tools/trace_save_path.py [--list]

``--list`` also prints each module with its number of calls per side.
Issue #24 asked for at most 12 modules on both sides together.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import novalet  # noqa: E402  (first: selects oslo.service's threading backend)

PKG = os.path.dirname(os.path.abspath(novalet.__file__)) + os.sep


def _module(filename: str) -> str | None:
    if not filename.startswith(PKG):
        return None
    rel = filename[len(PKG) - len("novalet/"):-len(".py")]
    rel = rel.replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else rel


class Recorder:
    def __init__(self, caller: threading.Thread) -> None:
        self.caller = caller
        self.active = False
        self.calls: dict[str, collections.Counter[tuple[str, str]]] = {
            "caller": collections.Counter(), "conductor": collections.Counter()}

    def tracer(self, frame: Any, event: str, arg: Any) -> None:
        if event != "call" or not self.active:
            return None
        module = _module(frame.f_code.co_filename)
        if module is not None:
            side = ("caller" if threading.current_thread() is self.caller
                    else "conductor")
            self.calls[side][(module, frame.f_code.co_qualname)] += 1
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--list", action="store_true",
                        help="print each module's calls per side")
    parser.add_argument("--functions", action="store_true",
                        help="print each function's calls per side")
    args = parser.parse_args()

    from novalet import conf as novalet_conf
    from novalet import context, indirection, objects, rpc
    from novalet import service as novalet_service
    from novalet.conductor import manager as conductor_manager
    from novalet.db import migration

    conf = novalet_conf.CONF
    conf([], project="novalet", default_config_files=[])
    tmp = tempfile.mkdtemp(prefix="novalet-trace-")
    conf.set_override("connection", "sqlite:///%s/novalet.sqlite" % tmp, "database")
    conf.set_override("transport_url", "fake://")
    conf.set_override("topic", "conductor-trace", "conductor")
    migration.db_sync()
    objects.register_all()

    ctxt = context.get_admin_context()
    node = objects.ComputeNode(ctxt, host="h1", hypervisor_hostname="n1", vcpus=4,
                               memory_mb=4096, local_gb=40, hypervisor_type="fake",
                               hypervisor_version=1, cpu_info="{}")
    node.create()

    rpc.init(conf)
    # The conductor's threads start now: they get the tracer, which records
    # only while ``active``.
    recorder = Recorder(threading.current_thread())
    threading.settrace(recorder.tracer)
    server = novalet_service.rpc_server(
        conf.conductor.topic, [conductor_manager.ConductorManager(conf)],
        server="trace-conductor", objects_local=True)
    server.start()
    conf.set_override("indirection", "rpc", "objects")
    indirection.configure(conf)
    try:
        node = objects.ComputeNode.get_by_id(ctxt, node.id)
        for used in range(20):  # warm: caches, connections, negotiation
            node.memory_mb_used = used
            node.save()
        time.sleep(0.2)
        node.memory_mb_used = 100
        sys.settrace(recorder.tracer)
        recorder.active = True
        try:
            node.save()
        finally:
            recorder.active = False
            sys.settrace(None)
            threading.settrace(None)  # type: ignore[arg-type]
    finally:
        indirection.reset()
        server.stop()
        server.wait()
        rpc.cleanup()

    both: collections.Counter[tuple[str, str]] = collections.Counter()
    for side in ("caller", "conductor"):
        both.update(recorder.calls[side])
    for name, calls in (("caller", recorder.calls["caller"]),
                        ("conductor", recorder.calls["conductor"]), ("both", both)):
        modules = {module for module, _ in calls}
        print("%-9s %3d modules %4d functions %4d calls"
              % (name, len(modules), len(calls), sum(calls.values())))
    if args.list:
        per: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for side in ("caller", "conductor"):
            for (module, _), count in recorder.calls[side].items():
                per[module][side] += count
        for module in sorted(per):
            print("  %-40s caller %4d  conductor %4d"
                  % (module, per[module]["caller"], per[module]["conductor"]))
    if args.functions:
        for side in ("caller", "conductor"):
            for (module, function), count in sorted(recorder.calls[side].items()):
                print("  %-9s %-28s %-45s %3d" % (side, module, function, count))
    return 0


if __name__ == "__main__":
    sys.exit(main())
