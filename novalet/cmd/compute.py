"""``novalet-compute``: the compute agent of one host. It has no database
access: every object call goes to the conductor."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_log import log as logging
from oslo_service import service as oslo_service

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, rpc, service, servicegroup
from novalet.cmd import common
from novalet.compute import manager as compute_manager
from novalet.metrics import endpoint as metrics

LOG = logging.getLogger(__name__)
BINARY = "novalet-compute"

DESCRIPTION = (
    "The novalet compute agent of one host ([DEFAULT] host): it reports the "
    "host's nodes and their resources from its virt driver ([compute] "
    "virt_driver), sends its heartbeats and builds the instances it is "
    "sent. It never reaches the database: every object call goes to the "
    "conductor over RPC. " + novalet_conf.OPTIONS_HELP)
USAGE = "%(prog)s [--config-file PATH] [options]"


def check_no_database_access(conf: object) -> None:
    """Raise ``ConfigurationError`` if ``[objects] indirection`` would let
    this process run remotable methods against the database itself."""
    name = novalet_conf.CONF.objects.indirection or "rpc"
    api = indirection.load(name, novalet_conf.CONF)
    if getattr(api, "runs_locally", False) or name == "inprocess":
        raise exception.ConfigurationError(
            reason="[objects] indirection=%s would give %s database access; "
                   "a compute agent must use 'rpc' (the conductor)"
                   % (name, BINARY))


def _check_service_versions(conf: object) -> None:
    """Ask the conductor (bounded by ``startup_timeout``) whether a service
    older than this release supports is registered. The transport is closed
    again: the worker process opens its own."""
    CONF = novalet_conf.CONF
    indirection.configure(CONF, default="rpc", binary=BINARY)
    try:
        common.check_service_versions(context.get_admin_context().with_call_timeout(
            max(1, CONF.startup_timeout)))
    finally:
        indirection.reset()
        rpc.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    CONF = novalet_conf.CONF
    common.setup(argv, prog=BINARY, description=DESCRIPTION, usage=USAGE)
    common.setup_guru_meditation(BINARY)
    try:
        check_no_database_access(CONF)
        rpc.check_auth(CONF, BINARY, verifies_all=False)
        LOG.info("%s starting on %s: transport %s, virt driver %s, "
                 "servicegroup driver %s", BINARY, CONF.host,
                 rpc.masked_transport_url(CONF), CONF.compute.virt_driver,
                 CONF.servicegroup_driver)
        rpc.check_broker(CONF, CONF.startup_timeout)
        _check_service_versions(CONF)
        manager = compute_manager.ComputeManager(CONF, CONF.host)
        sg = servicegroup.API(CONF)
        endpoint = _metrics_endpoint(CONF, manager, sg)
    except Exception as e:  # one line and its exit code, never a traceback
        return common.fail(BINARY, e)
    server: Any = service.Service(
        CONF, host=CONF.host, binary=BINARY, topic=CONF.compute.topic,
        manager=manager, rpc_version=compute_manager.RPC_API_VERSION,
        default_indirection="rpc", servicegroup_api=sg,
        freeze_heap=True)
    if endpoint is not None:  # served by the worker process, from its memory
        server = metrics.WithEndpoint(server, endpoint)
    service.freeze_heap()
    launcher = oslo_service.launch(CONF, server, workers=1,
                                   restart_method="mutate")
    return int(launcher.wait() or 0)


def _metrics_endpoint(conf: Any, manager: compute_manager.ComputeManager,
                      sg: servicegroup.API) -> metrics.Endpoint | None:
    """The (bound, not yet served) endpoint of this compute: heartbeats,
    audits, claims, its nodes; healthy while the broker answers and its
    heartbeat works. None when ``[metrics] bind_port`` is unset."""
    from novalet.metrics import compute, health

    metrics.setup(conf)
    return metrics.serve(
        conf, checks=[health.broker_check(conf), health.heartbeat_check(conf, sg)],
        collectors=[compute.ComputeNodeCollector(lambda: [manager])], start=False)


if __name__ == "__main__":
    sys.exit(main())
