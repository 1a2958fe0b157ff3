"""``novalet-manage service``: list services, disable/enable them, force
them down, delete them.

    service list [--binary B] [--host H] [--format table|json]
    service disable HOST BINARY [--reason R]
    service enable HOST BINARY
    service force-down HOST BINARY [--unset]
    service delete HOST BINARY [--force]

``list`` prints a table row (JSON: a record, with each app's release the
service runs, ``app_releases``) per service; ``disable``,
``enable`` and ``force-down`` print the changed service the same way (JSON:
one record); ``delete`` says what it deleted (JSON: ``deleted_service`` and
``deleted_compute_nodes``). Every action takes ``--format table|json``.

Liveness comes from the servicegroup API (``[DEFAULT] servicegroup_driver``);
the heartbeat age is measured against the database clock, as liveness is.
Disabling, enabling and forcing down write only those fields: they never
move ``last_seen_up`` (only a heartbeat does). ``delete`` refuses a service
that is up (stop it first; ``--force`` deletes it anyway, and a running
service then registers again at its next heartbeat, its compute nodes
following the new record).
"""

from __future__ import annotations

import datetime
from typing import Any

from novalet import conf as novalet_conf
from novalet import exception, objects, servicegroup
from novalet.cmd import manage_cli, output

BINARY = "novalet-manage"
COMPUTE_BINARY = "novalet-compute"

#: ``service list`` columns: (JSON key, table header).
COLUMNS = (
    ("id", "ID"),
    ("host", "Host"),
    ("binary", "Binary"),
    ("status", "Status"),
    ("state", "State"),
    ("forced_down", "Forced Down"),
    ("last_seen_up", "Last Seen Up (UTC)"),
    ("seconds_since_heartbeat", "Seconds Since Heartbeat"),
    ("report_count", "Report Count"),
    ("version", "Version"),
)

#: Keys of a service record: COLUMNS plus the disabled reason and the
#: release of each app the service runs (``{app: release}``; None for a
#: service of release 2 or older, which does not record it).
KEYS = ("id", "host", "binary", "status", "disabled_reason", "state",
        "forced_down", "last_seen_up", "seconds_since_heartbeat",
        "report_count", "version", "app_releases")


def _as_utc(value: datetime.datetime) -> datetime.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def db_now(ctxt: Any) -> datetime.datetime:
    """The database clock, aware UTC (``last_seen_up`` is on that clock)."""
    value: Any = objects.Service.get_db_time(ctxt)
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return _as_utc(value)


def service_record(service: Any, is_up: bool,
                   now: datetime.datetime | None) -> dict[str, Any]:
    """``service`` as a plain record with the keys ``KEYS``, in that order.
    ``seconds_since_heartbeat`` is None when it never reported (or ``now``
    is None), else whole seconds, never negative."""
    since: int | None = None
    if service.last_seen_up is not None and now is not None:
        elapsed = (now - _as_utc(service.last_seen_up)).total_seconds()
        since = max(0, int(elapsed))
    return {
        "id": service.id,
        "host": service.host,
        "binary": service.binary,
        "status": "disabled" if service.disabled else "enabled",
        "disabled_reason": service.disabled_reason,
        "state": "up" if is_up else "down",
        "forced_down": bool(service.forced_down),
        "last_seen_up": output.timestamp(service.last_seen_up),
        "seconds_since_heartbeat": since,
        "report_count": service.report_count,
        "version": service.version,
        "app_releases": (dict(service.app_releases)
                         if service.obj_attr_is_set("app_releases")
                         and service.app_releases is not None else None),
    }


def services_table(records: list[dict[str, Any]]) -> str:
    """Records as the ``service list`` table (the reason follows the status)."""
    rows = []
    for record in records:
        row = []
        for key, _header in COLUMNS:
            value = record[key]
            if key == "status" and record["disabled_reason"]:
                value = "%s (%s)" % (value, record["disabled_reason"])
            row.append(value)
        rows.append(row)
    return output.format_table([header for _key, header in COLUMNS], rows)


def _emit_one(ctxt: Any, fmt: str, service: Any) -> None:
    api = servicegroup.API(novalet_conf.CONF)
    try:
        is_up = api.is_up(service)
    finally:
        api.stop()
    record = service_record(service, is_up, db_now(ctxt))
    output.emit(fmt, record, services_table([record]))


def list_services(args: Any) -> int:
    """Print every live service (of ``--binary``, on ``--host``)."""
    ctxt = manage_cli.admin_context(BINARY)
    api = servicegroup.API(novalet_conf.CONF)
    try:
        pairs = api.get_all(ctxt, binary=args.binary_filter)
    finally:
        api.stop()
    if args.host_filter is not None:
        pairs = [(s, up) for s, up in pairs if s.host == args.host_filter]
    now = db_now(ctxt) if pairs else None
    records = [service_record(s, up, now) for s, up in pairs]
    output.emit(args.output_format, records, services_table(records))
    return 0


def _get(ctxt: Any, args: Any) -> Any:
    return objects.Service.get_by_host_and_binary(ctxt, args.service_host,
                                                  args.service_binary)


def disable_service(args: Any) -> int:
    """Disable ``HOST BINARY`` (with ``--reason``); raises ServiceNotFound."""
    ctxt = manage_cli.admin_context(BINARY)
    service = _get(ctxt, args)
    service.disabled = True
    service.disabled_reason = args.reason
    service.save()
    _emit_one(ctxt, args.output_format, service)
    return 0


def enable_service(args: Any) -> int:
    """Enable ``HOST BINARY`` and clear its reason; raises ServiceNotFound."""
    ctxt = manage_cli.admin_context(BINARY)
    service = _get(ctxt, args)
    service.disabled = False
    service.disabled_reason = None
    service.save()
    _emit_one(ctxt, args.output_format, service)
    return 0


def force_down_service(args: Any) -> int:
    """Mark ``HOST BINARY`` forced down (``--unset``: clear the mark);
    raises ServiceNotFound."""
    ctxt = manage_cli.admin_context(BINARY)
    service = _get(ctxt, args)
    service.forced_down = not args.unset
    service.save()
    _emit_one(ctxt, args.output_format, service)
    return 0


def _refuse_if_up(ctxt: Any, service: Any) -> None:
    """Raise ``ServiceIsUp`` while ``service`` heartbeats."""
    conf = novalet_conf.CONF
    api = servicegroup.API(conf)
    try:
        is_up = api.is_up(service)
    finally:
        api.stop()
    if not is_up:
        return
    record = service_record(service, True, db_now(ctxt))
    since = record["seconds_since_heartbeat"]
    raise exception.ServiceIsUp(
        host=service.host, binary=service.binary,
        age="%ds ago" % since if since is not None else "just now",
        down_time=conf.service_down_time)


def delete_service(args: Any) -> int:
    """Delete ``HOST BINARY`` and, in the same transaction, its compute nodes.

    Raises ``ServiceNotFound``; ``ServiceIsUp`` while it heartbeats (unless
    ``--force``); ``ServiceHasInstances`` while instances are on that
    compute host. Nothing is deleted when it raises.
    """
    ctxt = manage_cli.admin_context(BINARY)
    service = _get(ctxt, args)
    if not args.force:
        _refuse_if_up(ctxt, service)
    nodes: list[Any] = []
    if service.binary == COMPUTE_BINARY:
        # What the delete will take with it (it runs in one transaction).
        nodes = list(objects.ComputeNodeList.get_by_host(ctxt, service.host))
    service.destroy()
    record = {
        "deleted_service": {"id": service.id, "host": service.host,
                            "binary": service.binary},
        "deleted_compute_nodes": [
            {"id": node.id, "hypervisor_hostname": node.hypervisor_hostname}
            for node in nodes],
    }
    table = "Deleted service %d (%s/%s)" % (service.id, service.host,
                                            service.binary)
    if service.binary == COMPUTE_BINARY:
        table += " and %d compute node(s)%s" % (
            len(nodes), ": " + ", ".join(n.hypervisor_hostname for n in nodes)
            if nodes else "")
    output.emit(args.output_format, record, table)
    return 0


def add_parsers(subparsers: Any, parents: list[Any]) -> None:
    """Add ``service`` and its actions to the ``novalet-manage`` parser;
    ``parents`` carry the shared options (``--format``)."""
    service = subparsers.add_parser(
        "service", help="the services and their liveness: list, disable, "
                        "enable, force-down, delete")
    actions = service.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    listing = actions.add_parser("list", parents=parents,
                                 help="list live services")
    listing.add_argument("--binary", dest="binary_filter", default=None,
                         metavar="BINARY", help="only services of BINARY")
    listing.add_argument("--host", dest="host_filter", default=None,
                         metavar="HOST", help="only services on HOST")
    listing.set_defaults(func=list_services)

    def target(name: str, help: str) -> Any:
        parser = actions.add_parser(name, parents=parents, help=help)
        parser.add_argument("service_host", metavar="HOST",
                            help="host of the service")
        parser.add_argument("service_binary", metavar="BINARY",
                            help="binary of the service, e.g. novalet-compute")
        return parser

    disable = target("disable", "stop scheduling to a service")
    disable.add_argument("--reason", default=None, help="why (shown by list)")
    disable.set_defaults(func=disable_service)

    enable = target("enable", "allow scheduling to a service again")
    enable.set_defaults(func=enable_service)

    force_down = target("force-down", "mark a service down whatever its "
                                      "heartbeat says (fencing)")
    force_down.add_argument("--unset", action="store_true",
                            help="clear the forced-down mark")
    force_down.set_defaults(func=force_down_service)

    delete = target("delete", "delete a stopped service (a compute: also its "
                              "compute nodes; refused while it is up or has "
                              "instances)")
    delete.add_argument("--force", action="store_true",
                        help="delete it even while it is up (a running "
                             "service registers again at its next heartbeat)")
    delete.set_defaults(func=delete_service)
