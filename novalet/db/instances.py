"""The ``instances`` table: the instances on each host and node.

Every function takes a ``RequestContext`` first and runs in a reader or
writer transaction (``novalet.db.engine``); a host caller writes the
instances on it, or moves one along a migration an admin made it an end of
(``novalet.db.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from novalet import exception
from novalet.db import models, rows, scope
from novalet.db.engine import reader, writer, writer_connection


@rows.idempotent_create(models.Instance)
@writer
def instance_create(context: Any, values: dict[str, Any]) -> models.Instance:
    scope.check_instance_values(context, values, create=True,
                                connection=context.session)
    return rows.create(context, models.Instance, values,  # type: ignore[no-any-return]
                       lambda: exception.InstanceExists(uuid=values.get("uuid")))


@reader
def instance_get_by_uuid(context: Any, uuid: str) -> models.Instance:
    query = rows.live(models.Instance).where(models.Instance.uuid == uuid)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.InstanceNotFound(instance=uuid))


@reader
def instance_get_all(context: Any, host: str | None = None,
                     node: str | None = None,
                     replica: bool = False) -> Sequence[models.Instance]:
    query = rows.live(models.Instance).order_by(models.Instance.id)
    if host is not None:
        query = query.where(models.Instance.host == host)
    if node is not None:
        query = query.where(models.Instance.node == node)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@writer_connection
def instance_update(context: Any, instance_id: int,
                    values: dict[str, Any]) -> Any:
    """Write ``values`` only. A host caller updates the instances on it,
    places one that is nowhere yet on itself, takes one off itself, or
    moves one along an in-progress migration an admin made it an end of
    (``novalet.db.scope``)."""
    host = scope.check_instance_values(context, values, create=False,
                                       connection=context.connection,
                                       instance_id=instance_id)
    kind = "instance"
    if host is not None and "host" in values:
        kind = ("instance_unplaced" if values["host"] == host
                else "instance_own" if values["host"] is None else "instance")
    return rows.update(context.connection, models.Instance, instance_id, values,
                       lambda: exception.InstanceNotFound(instance=instance_id),
                       lambda: exception.InstanceExists(uuid=values.get("uuid")),
                       scoped=scope.scoped(context, host, kind, "update an instance",
                                           "instance %s" % instance_id))


@writer
def instance_destroy(context: Any, instance_id: int) -> None:
    rows.soft_delete(context, models.Instance, instance_id,
                     lambda: exception.InstanceNotFound(instance=instance_id))
