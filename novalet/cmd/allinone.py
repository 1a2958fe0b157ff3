"""``novalet-allinone``: a conductor and N compute agents in one process,
with a live status view.

On the embedded default (SQLite under ``state_path``, the in-process
conductor, the fake driver) it needs no service at all; with
``--transport-url`` and ``--database-connection`` the same command runs on
RabbitMQ and PostgreSQL, the conductor then serving RPC like
``novalet-conductor``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc, service, servicegroup
from novalet.cmd import common, exit_codes, status_view
from novalet.compute import manager as compute_manager
from novalet.compute import rpcapi as compute_rpcapi
from novalet.conductor import manager as conductor_manager
from novalet.db import engine as db_engine
from novalet.db import migration
from novalet.metrics import endpoint as metrics_endpoint
from novalet.virt import fake

LOG = logging.getLogger(__name__)
BINARY = "novalet-allinone"


DESCRIPTION = """\
A whole novalet cluster in one process: a conductor and --computes compute
agents of --nodes fake nodes each, which boot --instances instances, shown in
a live view refreshed every second until Ctrl-C. On the embedded default
(a fresh SQLite database under [DEFAULT] state_path, the conductor in this
process) it needs no other service; with --transport-url and
--database-connection it runs on RabbitMQ and PostgreSQL, its conductor then
serving RPC like novalet-conductor's. The log goes to a file and the metrics
to a free loopback port: the view names both above its tables.
"""

#: The configuration defaults of this command, (group, option): value;
#: ``--help`` lists them.
DEFAULTS: dict[tuple[str | None, str], Any] = {
    (None, "report_interval"): 1,
    (None, "service_down_time"): 5,
    (None, "update_resources_interval"): 2,
    (None, "periodic_fuzzy_delay"): 0,
    (None, "log_file"): "$state_path/novalet-allinone.log",
    ("metrics", "bind_port"): 0,
}

#: What the live view's columns mean (``status_view.render``).
COLUMNS = """\
The live view:
  Services     host, binary; state: up, or DOWN when its last heartbeat is
               older than [DEFAULT] service_down_time; last beat: seconds
               since that heartbeat; reports: heartbeats counted;
               flags: disabled (novalet-manage service disable: no new work
               is scheduled to it), forced-down (novalet-manage service
               force-down: counted down whatever its heartbeats say), - for
               neither
  Hypervisors  node; vCPU, RAM, disk: used/total with a bar; VMs: instances
               running; TOTAL: the sum of every node

Other options are novalet's configuration and logging options, as
novalet-conductor --help lists them: --config-file PATH, --config-dir DIR,
--debug, --log-file PATH and the rest of oslo.log's. Its configuration
defaults differ from the services' (the view moves within seconds, the log
goes to a file, metrics are on, on a free loopback port):
"""

#: Under the tables of every frame of the live view.
LEGEND = ("flags: disabled = no new work is scheduled to it; forced-down = "
          "counted down\n       whatever its heartbeats say. Every column: "
          "%s --help" % BINARY)


def _parse(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        prog=BINARY, usage="%(prog)s [options] [--config-file PATH]",
        description=DESCRIPTION,
        epilog=COLUMNS + textwrap.fill(", ".join(
            "%s%s = %s" % ("[%s] " % group if group else "", name, value)
            for (group, name), value in DEFAULTS.items()) + ".",
            79, initial_indent="  ", subsequent_indent="  ") + "\n\n" +
        textwrap.fill(exit_codes.HELP, 79),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--computes", type=int, default=3, metavar="N",
                        help="compute agents to run, compute-1 to compute-N "
                             "(default: %(default)s)")
    parser.add_argument("--nodes", type=int, default=2, metavar="N",
                        help="fake nodes per compute (default: %(default)s)")
    parser.add_argument("--instances", type=int, default=6, metavar="N",
                        help="instances to boot through build_instance, "
                             "round-robin over the computes (default: "
                             "%(default)s)")
    parser.add_argument("--once", action="store_true",
                        help="print one snapshot once the cluster is up, then "
                             "stop (default: a live view until Ctrl-C)")
    parser.add_argument("--duration", type=float, default=None,
                        metavar="SECONDS",
                        help="stop after this many seconds (default: run "
                             "until Ctrl-C)")
    parser.add_argument("--transport-url", default=None, metavar="URL",
                        help="the message broker, e.g. "
                             "rabbit://guest:guest@127.0.0.1:5672/ (default: "
                             "[DEFAULT] transport_url, else fake://: in "
                             "this process)")
    parser.add_argument("--database-connection", default=None, metavar="URL",
                        help="the database, e.g. "
                             "postgresql+psycopg2://user@host/db (default: "
                             "[database] connection, else a fresh "
                             "$state_path/novalet-allinone.sqlite)")
    args, rest = parser.parse_known_args(list(argv))
    if args.computes < 1 or args.nodes < 1 or args.instances < 0:
        parser.error("--computes and --nodes must be >= 1, --instances >= 0")
    return args, rest


class Cluster:
    """The services of one all-in-one run."""

    def __init__(self, conf: Any, args: argparse.Namespace) -> None:
        self.conf = conf
        self.args = args
        self.services: list[service.Service] = []
        self.sg = servicegroup.API(conf, initial_delay=0)

    def start(self) -> None:
        conf = self.conf
        remote = conf.transport_url != "fake://"
        if remote:
            conductor = service.Service(
                conf, host=conf.host, binary="novalet-conductor",
                topic=conf.conductor.topic,
                manager=conductor_manager.ConductorManager(conf),
                rpc_version=conductor_manager.RPC_API_VERSION,
                default_indirection="direct", objects_local=True,
                servicegroup_api=self.sg)
            conductor.start()
            self.services.append(conductor)
        for i in range(1, self.args.computes + 1):
            host = "compute-%d" % i
            driver = fake.FakeDriver(conf, host=host, nodes=self.args.nodes)
            svc = service.Service(
                conf, host=host, binary="novalet-compute",
                topic=conf.compute.topic,
                manager=compute_manager.ComputeManager(conf, host, driver),
                rpc_version=compute_manager.RPC_API_VERSION,
                default_indirection="rpc" if remote else "inprocess",
                servicegroup_api=self.sg, periodic_fuzzy_delay=0)
            svc.start()
            self.services.append(svc)

    def serve_metrics(self) -> Any:
        """The metrics endpoint of the whole cluster (conductor calls,
        every compute's nodes, the fleet); None if ``[metrics] bind_port``
        is unset."""
        from novalet.metrics import compute, fleet, health

        conf = self.conf
        metrics_endpoint.setup(conf)
        return metrics_endpoint.serve(
            conf, checks=[health.broker_check(conf), health.database_check(conf),
                          health.heartbeat_check(conf, self.sg)],
            collectors=[fleet.FleetCollector(conf, self.sg),
                        compute.ComputeNodeCollector(lambda: [
                            s.manager for s in self.services
                            if s.binary == "novalet-compute"])])

    def boot(self, count: int) -> None:
        ctxt = context.get_admin_context()
        api = compute_rpcapi.ComputeAPI(self.conf)
        computes = [s for s in self.services if s.binary == "novalet-compute"]
        for i in range(count):
            target = computes[i % len(computes)]
            inst = objects.Instance(ctxt, vcpus=1 + i % 4,
                                    memory_mb=512 * (1 + i % 4),
                                    root_gb=10 * (1 + i % 3))
            inst.create()
            try:
                api.build_instance(ctxt, inst, target.host)
            except exception.ComputeResourcesUnavailable as e:
                LOG.warning("Instance %d did not fit: %s", i, e.message)

    def snapshot(self) -> str:
        ctxt = context.get_admin_context()
        services = self.sg.get_all(ctxt)
        nodes = list(objects.ComputeNodeList.get_all(ctxt))
        return status_view.render(services, nodes,
                                  objects.Service.get_db_time(ctxt),
                                  title="novalet-allinone (%d computes x %d "
                                  "nodes)" % (self.args.computes,
                                              self.args.nodes))

    def all_up(self) -> bool:
        return all(up for _, up in self.sg.get_all(context.get_admin_context()))

    def stop(self) -> None:
        for svc in reversed(self.services):
            try:
                svc.stop()
            except Exception:
                LOG.exception("Stopping %s failed", svc)
        self.sg.stop()


def _own_master_key(conf: Any) -> None:
    """On a real transport, the whole cluster of this process signs as the
    admin with a master key: ``[auth] master_key_file``, else one kept in
    ``state_path`` (made on first use). The embedded run needs none."""
    from novalet import auth

    if rpc.is_in_process(conf) or conf.auth.master_key_file:
        return
    path = os.path.join(conf.state_path, "novalet-allinone-master.key")
    if not os.path.exists(path):
        auth.keys.init_master(path)
    conf.set_override("master_key_file", path, "auth")


def _log_path(conf: Any) -> str:
    """Where the log goes: ``log_file`` (under ``log_dir`` if relative)."""
    if not conf.log_file:
        return "stderr"
    return os.path.abspath(os.path.join(conf.log_dir or "", conf.log_file))


def main(argv: Sequence[str] | None = None) -> int:
    args, rest = _parse(sys.argv[1:] if argv is None else argv)
    CONF = novalet_conf.CONF
    for (group, name), value in DEFAULTS.items():
        CONF.set_default(name, value, group)
    common.setup(rest, prog=BINARY)
    if args.transport_url:
        CONF.set_override("transport_url", args.transport_url)
    if args.database_connection:
        CONF.set_override("connection", args.database_connection, "database")
    elif CONF.database.connection == novalet_conf.database.DEFAULT_CONNECTION \
            .replace("$state_path", CONF.state_path):
        # The embedded default: a fresh database of its own for every run.
        path = os.path.join(CONF.state_path, "novalet-allinone.sqlite")
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)
        CONF.set_override("connection", "sqlite:///" + path, "database")
    if CONF.transport_url == "fake://":
        CONF.set_override("indirection", "inprocess", "objects")
    try:
        _own_master_key(CONF)
        db_engine.check_connection(CONF, CONF.startup_timeout)
        migration.db_sync()
        rpc.check_broker(CONF, CONF.startup_timeout)
    except Exception as e:  # one line and its exit code, never a traceback
        return common.fail(BINARY, e)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *a: stop.set())
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    cluster = Cluster(CONF, args)
    endpoint = cluster.serve_metrics()
    # The start lines head every frame of the live view too.
    started = ["novalet-allinone: starting %d compute(s) x %d node(s) on %s, %s "
               "(log: %s)" % (args.computes, args.nodes,
                              rpc.masked_transport_url(CONF),
                              db_engine.masked_url(CONF.database.connection),
                              _log_path(CONF))]
    if endpoint is not None:
        started.append("novalet-allinone: metrics on %s/metrics, health on "
                       "%s/healthz" % (endpoint.url, endpoint.url))
    print("\n".join(started), flush=True)
    try:
        cluster.start()
        cluster.boot(args.instances)
        deadline = time.monotonic() + 30
        while not cluster.all_up() and time.monotonic() < deadline \
                and not stop.is_set():
            time.sleep(0.2)
        if args.once:
            print(cluster.snapshot(), flush=True)
            return 0
        end = None if args.duration is None else time.monotonic() + args.duration
        while not stop.is_set() and (end is None or time.monotonic() < end):
            sys.stdout.write("\x1b[H\x1b[2J" + "\n".join(started) + "\n\n" +
                             cluster.snapshot() + "\n\n" + LEGEND +
                             "\nCtrl-C stops every service.\n")
            sys.stdout.flush()
            stop.wait(1.0)
    except Exception as e:  # one line and its exit code, never a traceback
        return common.fail(BINARY, e)
    finally:
        cluster.stop()
        metrics_endpoint.cleanup()
        indirection.reset()
        rpc.cleanup()
        print("novalet-allinone: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
