"""The ``migrations`` table: the records of instances moving between hosts
(not the schema migrations: those are ``novalet.db.migration`` and the
alembic scripts in ``novalet/db/migrations/``).

Every function takes a ``RequestContext`` first and runs in a reader or
writer transaction (``novalet.db.engine``). An admin (or a local caller)
starts, changes and deletes migrations; a host caller only reports the
status of an in-progress one it is the source or destination of
(``novalet.db.scope``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from novalet import exception
from novalet.db import models, rows, scope
from novalet.db.engine import reader, writer, writer_connection


@rows.idempotent_create(models.Migration)
@writer
def migration_create(context: Any, values: dict[str, Any]) -> models.Migration:
    scope.check_migration_values(context, values, create=True)
    return rows.create(context, models.Migration, values,  # type: ignore[no-any-return]
                       lambda: exception.Conflict(
                           reason="migration %s exists" % values.get("uuid")))


@reader
def migration_get(context: Any, migration_id: int) -> models.Migration:
    query = rows.live(models.Migration).where(models.Migration.id == migration_id)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.MigrationNotFound(migration=migration_id))


@reader
def migration_get_in_progress_by_host_and_node(
        context: Any, host: str, node: str,
        done_statuses: Sequence[str]) -> Sequence[models.Migration]:
    M = models.Migration
    query = rows.live(M).where(
        sa.or_(sa.and_(M.source_compute == host, M.source_node == node),
               sa.and_(M.dest_compute == host, M.dest_node == node)),
        M.status.not_in(list(done_statuses))).order_by(M.id)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@writer_connection
def migration_update(context: Any, migration_id: int,
                     values: dict[str, Any]) -> Any:
    host = scope.check_migration_values(context, values, create=False)
    return rows.update(context.connection, models.Migration, migration_id, values,
                       lambda: exception.MigrationNotFound(migration=migration_id),
                       lambda: exception.Conflict(reason="duplicate migration"),
                       scoped=scope.scoped(context, host, "migration",
                                           "update a migration",
                                           "migration %s" % migration_id))


@writer
def migration_destroy(context: Any, migration_id: int) -> None:
    """Soft-delete a migration: an admin's or a local caller's only (a host
    owns none: ``scope.owned_condition``)."""
    rows.soft_delete(context, models.Migration, migration_id,
                     lambda: exception.MigrationNotFound(migration=migration_id))
