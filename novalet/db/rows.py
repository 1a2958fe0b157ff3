"""The row helpers every table module writes with: a live row's select,
create, update (one statement, scoped to the caller's rows), soft delete,
and the idempotent create of a resent request.

Rows are soft-deleted (``deleted`` is the row's id once deleted). Writes of
a context whose principal is a host are confined to that host's rows in the
statement that writes them (``novalet.db.scope``).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import timeutils

from novalet import exception
from novalet.db import models, scope
from novalet.db.engine import writer

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])


def live(model: type[models.Base]) -> Any:
    """``SELECT`` of the live (not soft-deleted) rows of ``model``."""
    return sa.select(model).where(model.deleted == 0)


def create(context: Any, model: type[models.Base], values: dict[str, Any],
           exists: Callable[[], Exception]) -> Any:
    """Insert a row of ``values`` in the context's session; a duplicate
    raises ``exists()``."""
    row = model()
    row.update(values)
    if row.created_at is None:
        row.created_at = timeutils.utcnow()
    try:
        context.session.add(row)
        context.session.flush()
    except db_exc.DBDuplicateEntry:
        raise exists()
    return row


#: Columns a resent create may differ in (set where the create ran).
_CREATE_STAMPS = frozenset({"created_at", "updated_at"})


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime.datetime) and value.tzinfo is not None:
        return value.astimezone(datetime.UTC).replace(tzinfo=None)
    if isinstance(value, float):
        return round(value, 5)
    return value


@writer
def _created_before(context: Any, model: type[models.Base],
                    values: dict[str, Any]) -> Any:
    """The live row a create of ``values`` already made (same uuid, same
    values), or None. On the writer: a replica may not have it yet."""
    uuid = values.get("uuid")
    if not uuid:
        return None
    row = context.session.execute(
        live(model).where(model.uuid == uuid)).scalars().first()  # type: ignore[attr-defined]
    if row is None:
        return None
    for name, value in values.items():
        if name not in _CREATE_STAMPS and (
                _comparable(getattr(row, name)) != _comparable(value)):
            return None
    return row


def idempotent_create(model: type[models.Base]) -> Callable[[F], F]:
    """A create whose uuid already names a live row holding the same values
    returns that row: it is the same create, sent again after its reply was
    lost. Any other duplicate raises as before."""
    def decorator(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(context: Any, values: dict[str, Any]) -> Any:
            try:
                return fn(context, values)
            except exception.Conflict:
                row = _created_before(context, model, values)
                if row is None:
                    raise
                LOG.info("%s %s was created before: the same create again",
                         model.__name__, values.get("uuid"))
                return row
        return wrapper  # type: ignore[return-value]
    return decorator


def update(executor: Any, model: type[models.Base], row_id: int,
           values: dict[str, Any], not_found: Callable[[], Exception],
           exists: Callable[[], Exception], *,
           scoped: scope.Scoped | None = None, **sql_values: Any) -> Any:
    """UPDATE only ``values`` (plus ``updated_at``) of one live row, through
    ``executor`` (the context's session or connection); ``scoped``: only if
    the row is the caller's (else ``scoped.forbidden()``, nothing written).
    Returns the ``updated_at`` written."""
    now = timeutils.utcnow()
    table: sa.Table = model.__table__  # type: ignore[assignment]
    if sql_values:
        # Database-computed values go first: MySQL evaluates SET left to
        # right and would otherwise see the new values of the other columns.
        assignments = [*sql_values.items(), *values.items(), ("updated_at", now)]
        stmt = (sa.update(table)
                .where(table.c.id == row_id, table.c.deleted == 0)
                .ordered_values(*assignments))
        if scoped is not None:
            stmt = stmt.where(scope.condition(scoped.kind, model))
        stmt = scope.checked(stmt)
        params: dict[str, Any] = {}
    else:
        stmt = _update_statement(model.__tablename__, tuple(values),
                                 scoped.kind if scoped else None)
        params = {"p_" + name: value for name, value in values.items()}
        params.update(p_updated_at=now, row_id=row_id)
    if scoped is not None:
        params[scope.CALLER] = scoped.host
    try:
        result = executor.execute(stmt, params)
    except db_exc.DBDuplicateEntry:
        raise exists()
    if result.rowcount == 0:
        if scoped is not None and executor.execute(
                sa.select(table.c.id).where(table.c.id == row_id,
                                            table.c.deleted == 0)).first():
            raise scoped.forbidden()
        raise not_found()
    return now


@functools.lru_cache(maxsize=512)
def _update_statement(table_name: str, names: tuple[str, ...],
                      scope_kind: str | None = None) -> Any:
    """``UPDATE <table> SET <names>, updated_at WHERE id = :row_id AND
    deleted = 0`` (and the scope's condition), values as bound parameters
    ``p_<name>``: built once per set of columns and scope (a Core statement,
    not the ORM's bulk-update path, which costs several times the statement
    itself)."""
    table = models.Base.metadata.tables[table_name]
    columns = [table.c[name] for name in (*names, "updated_at")]
    stmt = (sa.update(table)
            .where(table.c.id == sa.bindparam("row_id"), table.c.deleted == 0)
            .ordered_values(*[(c, sa.bindparam("p_" + c.name, type_=c.type))
                              for c in columns]))
    if scope_kind is not None:
        stmt = stmt.where(scope.condition(scope_kind, table_name))
    return scope.checked(stmt)


def soft_delete(context: Any, model: type[models.Base], row_id: int,
                not_found: Callable[[], Exception]) -> None:
    """Soft-delete one live row; a host caller's own only (``Forbidden``)."""
    host = scope.caller_host(context)
    stmt = (sa.update(model)
            .where(model.id == row_id, model.deleted == 0)  # type: ignore[attr-defined]
            .values(deleted=model.id, deleted_at=timeutils.utcnow())  # type: ignore[attr-defined]
            .execution_options(synchronize_session=False,
                               **{scope.CHECKED_OPTION: True}))
    params = {}
    if host is not None:
        stmt = stmt.where(scope.owned_condition(model))
        params[scope.CALLER] = host
    if context.session.execute(stmt, params).rowcount == 0:
        if host is not None and context.session.execute(
                sa.select(model.id).where(model.id == row_id,  # type: ignore[attr-defined]
                                          model.deleted == 0)).first():
            raise scope.refuse(context, "delete a %s" % model.__tablename__
                               .rstrip("s").replace("_", " "),
                               "%s %s is not %s's" % (model.__tablename__,
                                                      row_id, host))
        raise not_found()


def one(context: Any, query: Any, not_found: Callable[[], Exception]) -> Any:
    """The first row of ``query`` in the context's session, or
    ``not_found()`` raised."""
    row = context.session.execute(query).scalars().first()
    if row is None:
        raise not_found()
    return row
