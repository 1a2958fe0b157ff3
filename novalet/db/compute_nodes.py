"""The ``compute_nodes`` table: the hypervisor nodes of each host and the
resources they report.

Every function takes a ``RequestContext`` first and runs in a reader or
writer transaction (``novalet.db.engine``); a host caller writes its own
nodes only, linked to its own services (``novalet.db.scope``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from novalet import exception
from novalet.db import models, rows, scope
from novalet.db.engine import reader, writer, writer_connection


def _node_exists(values: dict[str, Any]) -> Callable[[], Exception]:
    return lambda: exception.ComputeHostExists(
        host=values.get("host"), node=values.get("hypervisor_hostname"))


@rows.idempotent_create(models.ComputeNode)
@writer
def compute_node_create(context: Any,
                        values: dict[str, Any]) -> models.ComputeNode:
    scope.check_node_values(context, values, create=True,
                            connection=context.session)
    return rows.create(context, models.ComputeNode, values,  # type: ignore[no-any-return]
                       _node_exists(values))


@reader
def compute_node_get(context: Any, node_id: int) -> models.ComputeNode:
    query = rows.live(models.ComputeNode).where(models.ComputeNode.id == node_id)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.ComputeHostNotFound(node=node_id))


@reader
def compute_node_get_by_host_and_nodename(
        context: Any, host: str, nodename: str) -> models.ComputeNode:
    query = rows.live(models.ComputeNode).where(
        models.ComputeNode.host == host,
        models.ComputeNode.hypervisor_hostname == nodename)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.ComputeHostNotFound(
                        node="%s/%s" % (host, nodename)))


@reader
def compute_node_get_all(context: Any, host: str | None = None,
                         nodename: str | None = None,
                         replica: bool = False) -> Sequence[models.ComputeNode]:
    query = rows.live(models.ComputeNode).order_by(models.ComputeNode.id)
    if host is not None:
        query = query.where(models.ComputeNode.host == host)
    if nodename is not None:
        query = query.where(models.ComputeNode.hypervisor_hostname == nodename)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@writer_connection
def compute_node_update(context: Any, node_id: int,
                        values: dict[str, Any]) -> Any:
    """Write ``values`` only; returns the new ``updated_at``."""
    host = scope.check_node_values(context, values, create=False,
                                   connection=context.connection)
    return rows.update(context.connection, models.ComputeNode, node_id, values,
                       lambda: exception.ComputeHostNotFound(node=node_id),
                       _node_exists(values),
                       scoped=scope.scoped(context, host, "owned",
                                           "update a compute node", "node %s" % node_id))


@writer
def compute_node_destroy(context: Any, node_id: int) -> None:
    rows.soft_delete(context, models.ComputeNode, node_id,
                     lambda: exception.ComputeHostNotFound(node=node_id))
