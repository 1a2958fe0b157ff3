"""``novalet-manage hypervisor``: the compute nodes and their resources.

    hypervisor list [--format table|json]
    hypervisor show NODE|HOST/NODE [--format table|json]
    hypervisor stats [--format table|json]

A node's state and status are those of the ``novalet-compute`` service on
its host (no live service: down, status unknown). ``show`` takes a
``hypervisor_hostname``; when several hosts report a node of that name it
refuses and asks for ``HOST/NODE``.
"""

from __future__ import annotations

from typing import Any

from novalet import conf as novalet_conf
from novalet import exception, objects, servicegroup
from novalet.cmd import manage_cli, output

BINARY = "novalet-manage"
COMPUTE_BINARY = "novalet-compute"

#: ``hypervisor list`` columns: (JSON key, table header); the table shows
#: used/total pairs where the JSON has both keys.
LIST_COLUMNS = (
    ("id", "ID"),
    ("hypervisor_hostname", "Hypervisor Hostname"),
    ("host", "Host"),
    ("hypervisor_type", "Type"),
    ("state", "State"),
    ("status", "Status"),
    ("vcpus", "vCPUs (used/total)"),
    ("memory_mb", "RAM MB (used/total)"),
    ("local_gb", "Disk GB (used/total)"),
    ("running_vms", "Running VMs"),
)

#: ``hypervisor show`` fields of the node, in order (plus the service's).
SHOW_FIELDS = (
    "id", "uuid", "hypervisor_hostname", "host", "service_id",
    "hypervisor_type", "hypervisor_version", "host_ip",
    "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb",
    "local_gb", "local_gb_used", "free_disk_gb", "disk_available_least",
    "running_vms", "current_workload",
    "cpu_allocation_ratio", "ram_allocation_ratio", "disk_allocation_ratio",
    "cpu_info", "stats",
)

#: ``hypervisor stats``: summed node fields.
STATS_FIELDS = (
    "vcpus", "vcpus_used", "memory_mb", "memory_mb_used", "free_ram_mb",
    "local_gb", "local_gb_used", "free_disk_gb", "disk_available_least",
    "running_vms", "current_workload",
)


def _compute_services(ctxt: Any) -> dict[str, tuple[Any, bool]]:
    """``host -> (novalet-compute Service, is_up)`` of live services."""
    api = servicegroup.API(novalet_conf.CONF)
    try:
        pairs = api.get_all(ctxt, binary=COMPUTE_BINARY)
    finally:
        api.stop()
    return {service.host: (service, is_up) for service, is_up in pairs}


def _service_state(host: str, services: dict[str, tuple[Any, bool]]
                   ) -> dict[str, Any]:
    service, is_up = services.get(host, (None, False))
    if service is None:
        return {"state": "down", "status": None, "disabled_reason": None}
    return {"state": "up" if is_up else "down",
            "status": "disabled" if service.disabled else "enabled",
            "disabled_reason": service.disabled_reason}


def node_record(node: Any, services: dict[str, tuple[Any, bool]]) -> dict[str, Any]:
    """``node`` as a ``hypervisor list`` record."""
    return {
        "id": node.id,
        "uuid": node.uuid,
        "hypervisor_hostname": node.hypervisor_hostname,
        "host": node.host,
        "hypervisor_type": node.hypervisor_type,
        **{k: v for k, v in _service_state(node.host, services).items()
           if k != "disabled_reason"},
        "vcpus": node.vcpus,
        "vcpus_used": node.vcpus_used,
        "memory_mb": node.memory_mb,
        "memory_mb_used": node.memory_mb_used,
        "local_gb": node.local_gb,
        "local_gb_used": node.local_gb_used,
        "running_vms": node.running_vms,
    }


def _list_table(records: list[dict[str, Any]]) -> str:
    rows = []
    for record in records:
        row = []
        for key, _header in LIST_COLUMNS:
            if key in ("vcpus", "memory_mb", "local_gb"):
                row.append("%s/%s" % (record[key + "_used"], record[key]))
            else:
                row.append(record[key])
        rows.append(row)
    return output.format_table([header for _key, header in LIST_COLUMNS], rows)


def list_hypervisors(args: Any) -> int:
    """Print every live compute node."""
    ctxt = manage_cli.admin_context(BINARY)
    nodes = list(objects.ComputeNodeList.get_all(ctxt))
    services = _compute_services(ctxt) if nodes else {}
    records = [node_record(node, services) for node in nodes]
    output.emit(args.output_format, records, _list_table(records))
    return 0


def find_node(ctxt: Any, name: str) -> Any:
    """The live node ``name`` (a ``hypervisor_hostname``, or ``HOST/NODE``).

    Raises ``ComputeHostNotFound``, or ``Invalid`` when several hosts have
    a node of that name.
    """
    if "/" in name:
        host, _, nodename = name.partition("/")
        return objects.ComputeNode.get_by_host_and_nodename(ctxt, host, nodename)
    matches = [node for node in objects.ComputeNodeList.get_all(ctxt)
               if node.hypervisor_hostname == name]
    if not matches:
        raise exception.ComputeHostNotFound(node=name)
    if len(matches) > 1:
        hosts = ", ".join(sorted(node.host for node in matches))
        raise exception.Invalid(
            "Hypervisor %s is ambiguous: hosts %s each have a node of that "
            "name; name it as HOST/NODE, e.g. %s/%s"
            % (name, hosts, matches[0].host, name))
    return matches[0]


def show_hypervisor(args: Any) -> int:
    """Print every field of one node and its service's state."""
    ctxt = manage_cli.admin_context(BINARY)
    node = find_node(ctxt, args.node_name)
    record = {name: getattr(node, name) for name in SHOW_FIELDS}
    record.update(_service_state(node.host, _compute_services(ctxt)))
    record["created_at"] = output.timestamp(node.created_at)
    record["updated_at"] = output.timestamp(node.updated_at)
    output.emit(args.output_format, record, output.format_fields(record))
    return 0


def node_totals(nodes: list[Any]) -> dict[str, int]:
    """``count`` and the sum of each of ``STATS_FIELDS`` over ``nodes`` (an
    unset value counts as 0; an unset free value as total minus used)."""
    totals = {"count": len(nodes), **{name: 0 for name in STATS_FIELDS}}
    for node in nodes:
        for name in STATS_FIELDS:
            value = getattr(node, name)
            if value is None and name == "free_ram_mb":
                value = node.memory_mb - node.memory_mb_used
            elif value is None and name == "free_disk_gb":
                value = node.local_gb - node.local_gb_used
            totals[name] += value or 0
    return totals


def hypervisor_stats(args: Any) -> int:
    """Print the resources of all live nodes, summed."""
    ctxt = manage_cli.admin_context(BINARY)
    totals = node_totals(list(objects.ComputeNodeList.get_all(ctxt)))
    output.emit(args.output_format, totals, output.format_fields(totals))
    return 0


def add_parsers(subparsers: Any, parents: list[Any]) -> None:
    """Add ``hypervisor`` and its actions to the ``novalet-manage`` parser;
    ``parents`` carry the shared options (``--format``)."""
    hypervisor = subparsers.add_parser("hypervisor",
                                       help="compute nodes and their resources: "
                                            "list, show, stats")
    actions = hypervisor.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser("list", parents=parents,
                                 help="list compute nodes")
    listing.set_defaults(func=list_hypervisors)
    show = actions.add_parser("show", parents=parents,
                              help="show one compute node")
    show.add_argument("node_name", metavar="NODE",
                      help="hypervisor_hostname, or HOST/NODE when several "
                           "hosts have a node of that name")
    show.set_defaults(func=show_hypervisor)
    stats = actions.add_parser("stats", parents=parents,
                               help="resources of all nodes, summed")
    stats.set_defaults(func=hypervisor_stats)
