"""``novalet-conductor``: the only service that touches the database."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging
from oslo_service import service as oslo_service

from novalet import app, context, rpc, service, servicegroup
from novalet import conf as novalet_conf
from novalet.cmd import common
from novalet.conductor import manager as conductor_manager
from novalet.db import engine as db_engine
from novalet.metrics import endpoint as metrics

LOG = logging.getLogger(__name__)
BINARY = "novalet-conductor"

DESCRIPTION = (
    "The novalet conductor, the one service that reaches the database: it "
    "runs the remotable methods of every app's objects that the compute "
    "agents call over RPC ([conductor] topic), with [conductor] workers "
    "processes, and serves the fleet's metrics ([metrics] bind_port). Run "
    "it on one or more hosts behind the same broker. "
    + novalet_conf.OPTIONS_HELP)
USAGE = "%(prog)s [--config-file PATH] [options]"


def main(argv: Sequence[str] | None = None) -> int:
    CONF = novalet_conf.CONF
    common.setup(argv, prog=BINARY, description=DESCRIPTION, usage=USAGE)
    common.setup_guru_meditation(BINARY)
    # Before any worker exists (the launcher forks even one): every worker's
    # metrics go to this run's directory and this process serves them all.
    metrics.setup(CONF, multiprocess=True)
    if CONF.objects.indirection not in (None, "direct"):
        LOG.warning("[objects] indirection=%s ignored: the conductor always "
                    "runs remotable methods itself (direct)",
                    CONF.objects.indirection)
        CONF.set_override("indirection", "direct", "objects")
    try:
        LOG.info("%s starting on %s: transport %s, database %s, %d worker(s), "
                 "servicegroup driver %s", BINARY, CONF.host,
                 rpc.masked_transport_url(CONF),
                 db_engine.masked_url(CONF.database.connection),
                 CONF.conductor.workers, CONF.servicegroup_driver)
        LOG.info("%s serves the apps %s", BINARY, app.summary())
        rpc.check_auth(CONF, BINARY, verifies_all=True)
        db_engine.check_connection(CONF, CONF.startup_timeout)
        common.check_schema()
        common.check_service_versions(context.get_admin_context())
        rpc.check_broker(CONF, CONF.startup_timeout)
    except Exception as e:  # one line and its exit code, never a traceback
        return common.fail(BINARY, e)
    db_engine.dispose()  # workers open their own connections after the fork
    sg = servicegroup.API(CONF)
    server = service.Service(
        CONF, host=CONF.host, binary=BINARY, topic=CONF.conductor.topic,
        manager=conductor_manager.ConductorManager(CONF),
        rpc_version=conductor_manager.RPC_API_VERSION,
        default_indirection="direct", objects_local=True,
        servicegroup_api=sg,
        freeze_heap=True)
    try:
        _serve_metrics(CONF, sg)
    except Exception as e:  # MetricsPortUnavailable: one line, exit 1
        return common.fail(BINARY, e)
    service.freeze_heap()
    launcher = oslo_service.launch(CONF, server,
                                   workers=CONF.conductor.workers,
                                   restart_method="mutate")
    code = launcher.wait()
    metrics.cleanup()
    return int(code or 0)


def _serve_metrics(conf: Any, sg: servicegroup.API) -> None:
    """The endpoint of this conductor (all its workers): its calls, the
    fleet; healthy while the broker and the database answer."""
    from novalet.metrics import fleet, health

    metrics.serve(conf, checks=[health.broker_check(conf),
                                health.database_check(conf)],
                  collectors=[fleet.FleetCollector(conf, sg)])


if __name__ == "__main__":
    sys.exit(main())

