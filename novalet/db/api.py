"""Database queries behind the objects' local path (oslo.db enginefacade).

Every public function takes a ``RequestContext`` first, checks that this
process may use the database (``novalet.db.check_access``), and runs in a
reader or writer transaction. Database errors leave as typed
``novalet.exception`` errors; rows are soft-deleted. Writes of a context
whose principal is a host are scoped to that host's rows in the statement
that writes them (``novalet.db.scope``).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_log import log as logging
from oslo_utils import timeutils

from novalet import exception
from novalet.db import models, scope
from novalet.db.engine import (  # the query layer's public names
    check_connection as check_connection,
)
from novalet.db.engine import (
    configure as configure,
)
from novalet.db.engine import (
    dispose as dispose,
)
from novalet.db.engine import (
    get_engine as get_engine,
)
from novalet.db.engine import (
    masked_connection as masked_connection,
)
from novalet.db.engine import (
    masked_url as masked_url,
)
from novalet.db.engine import (
    reader as reader,
)
from novalet.db.engine import (
    translate_errors as translate_errors,
)
from novalet.db.engine import (
    writer as writer,
)
from novalet.db.engine import (
    writer_connection as writer_connection,
)
from novalet.db.sqlfuncs import utcnow

LOG = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

def _live(model: type[models.Base]) -> Any:
    return sa.select(model).where(model.deleted == 0)


def _create(context: Any, model: type[models.Base], values: dict[str, Any],
            exists: Callable[[], Exception]) -> Any:
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
        _live(model).where(model.uuid == uuid)).scalars().first()  # type: ignore[attr-defined]
    if row is None:
        return None
    for name, value in values.items():
        if name not in _CREATE_STAMPS and (
                _comparable(getattr(row, name)) != _comparable(value)):
            return None
    return row


def _idempotent_create(model: type[models.Base]) -> Callable[[F], F]:
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


def _update(executor: Any, model: type[models.Base], row_id: int,
            values: dict[str, Any], not_found: Callable[[], Exception],
            exists: Callable[[], Exception], *,
            scoped: scope.Scoped | None = None, **sql_values: Any) -> Any:
    """UPDATE only ``values`` (plus ``updated_at``) of one live row, through
    ``executor`` (the context's session or connection); ``scoped``: only if
    the row is the caller's (else ``scoped.forbidden()``, nothing written)."""
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
    return stmt


def _soft_delete(context: Any, model: type[models.Base], row_id: int,
                 not_found: Callable[[], Exception]) -> None:
    """Soft-delete one live row; a host caller's own only (``Forbidden``)."""
    host = scope.caller_host(context)
    stmt = (sa.update(model)
            .where(model.id == row_id, model.deleted == 0)  # type: ignore[attr-defined]
            .values(deleted=model.id, deleted_at=timeutils.utcnow())  # type: ignore[attr-defined]
            .execution_options(synchronize_session=False))
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


def _one(context: Any, query: Any, not_found: Callable[[], Exception]) -> Any:
    row = context.session.execute(query).scalars().first()
    if row is None:
        raise not_found()
    return row


@reader
def db_utcnow(context: Any) -> Any:
    """The database server's clock (UTC, naive)."""
    return context.session.execute(sa.select(utcnow())).scalar_one()


# -- services ---------------------------------------------------------------

def _service_exists(values: dict[str, Any]) -> Callable[[], Exception]:
    return lambda: exception.ServiceBinaryExists(host=values.get("host"),
                                                 binary=values.get("binary"))


@_idempotent_create(models.Service)
@writer
def service_create(context: Any, values: dict[str, Any]) -> models.Service:
    scope.check_service_values(context, values, create=True)
    values = dict(values, last_auth=scope.how(context))
    return _create(context, models.Service, values, _service_exists(values))  # type: ignore[no-any-return]


@reader
def service_get(context: Any, service_id: int) -> models.Service:
    return _one(context, _live(models.Service).where(models.Service.id == service_id),  # type: ignore[no-any-return]
                lambda: exception.ServiceNotFound(service=service_id))


@reader
def service_get_by_uuid(context: Any, uuid: str) -> models.Service:
    return _one(context, _live(models.Service).where(models.Service.uuid == uuid),  # type: ignore[no-any-return]
                lambda: exception.ServiceNotFound(service=uuid))


@reader
def service_get_by_host_and_binary(context: Any, host: str,
                                   binary: str) -> models.Service:
    query = _live(models.Service).where(models.Service.host == host,
                                        models.Service.binary == binary)
    return _one(context, query,  # type: ignore[no-any-return]
                lambda: exception.ServiceNotFound(service="%s/%s" % (host, binary)))


@reader
def service_get_all(context: Any, binary: str | None = None,
                    host: str | None = None,
        replica: bool = False) -> Sequence[models.Service]:
    query = _live(models.Service).order_by(models.Service.id)
    if binary is not None:
        query = query.where(models.Service.binary == binary)
    if host is not None:
        query = query.where(models.Service.host == host)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@reader
def service_get_signing(context: Any) -> list[Any]:
    """``(host, binary, version, last_auth)`` of every live service that is
    not forced down (``last_auth``: how its last heartbeat arrived)."""
    S = models.Service
    query = sa.select(S.host, S.binary, S.version, S.last_auth).where(
        S.deleted == 0, S.forced_down == sa.false()).order_by(S.id)
    return list(context.session.execute(query).all())


@reader
def service_get_minimum_version(context: Any, binary: str) -> int | None:
    query = sa.select(sa.func.min(models.Service.version)).where(
        models.Service.binary == binary, models.Service.deleted == 0,
        models.Service.forced_down == sa.false())
    return context.session.execute(query).scalar()  # type: ignore[no-any-return]


@reader
def service_get_app_releases(context: Any, binary: str) -> list[str]:
    """The stored ``app_releases`` of the live services of ``binary`` that
    record them (not forced down)."""
    query = sa.select(models.Service.app_releases).where(
        models.Service.binary == binary, models.Service.deleted == 0,
        models.Service.forced_down == sa.false(),
        models.Service.app_releases.is_not(None))
    return list(context.session.execute(query).scalars())


@writer
def service_update(context: Any, service_id: int,
                   values: dict[str, Any]) -> models.Service:
    """Write ``values``; ``last_seen_up`` moves (DB clock) only when
    ``report_count`` grows, and is never written from ``values``
    (``Forbidden``). Returns the fresh row."""
    host = scope.check_service_values(context, values, create=False)
    sql_values: dict[str, Any] = {}
    if "report_count" in values:
        sql_values["last_seen_up"] = sa.case(
            (models.Service.report_count < values["report_count"], utcnow()),
            else_=models.Service.last_seen_up)
        values = dict(values, last_auth=scope.how(context))
    _update(context.session, models.Service, service_id, values,
            lambda: exception.ServiceNotFound(service=service_id),
            _service_exists(values),
            scoped=scope.scoped(context, host, "owned", "update a service",
                           "service %s" % service_id), **sql_values)
    return service_get(context, service_id)


#: Ids per UPDATE of ``service_heartbeat`` (each is a bound parameter:
#: SQLite builds before 3.32 allow 999 in one statement).
HEARTBEAT_CHUNK = 500


@writer
def service_heartbeat(context: Any, service_ids: Sequence[int]) -> list[int]:
    """One heartbeat for each live service in ``service_ids``: ``report_count``
    + 1 and ``last_seen_up`` moved to the database clock, one UPDATE per
    ``HEARTBEAT_CHUNK`` ids. Returns the ids with no live record (deleted),
    in the order given; their rows are untouched. A host caller beats for
    its own services only: ``Forbidden`` (nothing written) for an id of
    another host's record, live or deleted."""
    table: sa.Table = models.Service.__table__  # type: ignore[assignment]
    ids = list(dict.fromkeys(service_ids))
    now = timeutils.utcnow()
    host = scope.caller_host(context)
    if host is not None:
        for start in range(0, len(ids), HEARTBEAT_CHUNK):
            chunk = ids[start:start + HEARTBEAT_CHUNK]
            others = context.session.execute(
                sa.select(table.c.id).where(
                    table.c.id.in_(chunk),
                    sa.not_(scope.is_caller(table.c.host))).limit(5),
                {scope.CALLER: host}).scalars().all()
            if others:
                raise scope.refuse(context, "heartbeat for other hosts' "
                                   "services", "service(s) %s are not %s's"
                                   % (", ".join(map(str, others)), host))
    if not _first_delivery(context, now):
        return []
    how = scope.how(context)
    missing: list[int] = []
    for start in range(0, len(ids), HEARTBEAT_CHUNK):
        chunk = ids[start:start + HEARTBEAT_CHUNK]
        live = sa.and_(table.c.id.in_(chunk), table.c.deleted == 0)
        stmt = (sa.update(table).where(live).ordered_values(
            (table.c.report_count, table.c.report_count + 1),
            (table.c.last_seen_up, utcnow()), (table.c.last_auth, how),
            (table.c.updated_at, now)))
        if host is not None:
            stmt = stmt.where(scope.is_caller(table.c.host))
        if context.session.execute(
                stmt, {scope.CALLER: host} if host else {}).rowcount != len(chunk):
            found = set(context.session.execute(
                sa.select(table.c.id).where(live)).scalars())
            missing.extend(i for i in chunk if i not in found)
    return missing


def _first_delivery(context: Any, now: datetime.datetime) -> bool:
    """Record the signed request this transaction applies; False when it
    was applied already (the broker delivered it again, to this or another
    conductor, after a connection was lost before its acknowledgement).
    Unsigned and local requests are not recorded. Two deliveries running at
    once both pass the check; the second's insert then fails and its whole
    transaction is undone."""
    key = getattr(context, "delivery_key", None)
    if key is None:
        return True
    table = models.RPC_DELIVERIES
    try:
        window = int(cfg.CONF.auth.timestamp_window)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        window = 60
    session = context.session
    session.execute(sa.delete(table).where(
        table.c.seen_at < now - datetime.timedelta(seconds=2 * window)))
    if session.execute(sa.select(table.c.delivery_key).where(
            table.c.delivery_key == key)).first():
        LOG.info("A request delivered again was applied already: not again")
        return False
    session.execute(sa.insert(table).values(delivery_key=key, seen_at=now))
    return True


#: The binary whose services own compute nodes (those of their host).
COMPUTE_BINARY = "novalet-compute"


@writer
def service_destroy(context: Any, service_id: int) -> list[int]:
    """Soft-delete a service and, in the same transaction, the compute nodes
    that belong to it (a compute's: those of its host, and any linked by
    ``service_id``), so no node is left pointing at a deleted service.
    Returns the ids of the nodes deleted. Raises ``ServiceNotFound``, and
    ``ServiceHasInstances`` (nothing deleted) while live instances are on a
    compute's host."""
    service = service_get(context, service_id)
    host = scope.caller_host(context)
    if host is not None and service.host != host:
        raise scope.refuse(context, "delete a service", "service %s is not "
                           "%s's" % (service_id, host))
    node = models.ComputeNode
    owned = node.service_id == service_id
    if service.binary == COMPUTE_BINARY:
        count = context.session.execute(
            sa.select(sa.func.count()).select_from(models.Instance).where(
                models.Instance.host == service.host,
                models.Instance.deleted == 0)).scalar_one()
        if count:
            raise exception.ServiceHasInstances(
                host=service.host, binary=service.binary, count=count)
        owned = sa.or_(owned, node.host == service.host)
    node_ids = list(context.session.execute(
        sa.select(node.id).where(node.deleted == 0, owned)
        .order_by(node.id)).scalars())
    if node_ids:
        context.session.execute(
            sa.update(node).where(node.id.in_(node_ids), node.deleted == 0)
            .values(deleted=node.id, deleted_at=timeutils.utcnow())
            .execution_options(synchronize_session=False))
    _soft_delete(context, models.Service, service_id,
                 lambda: exception.ServiceNotFound(service=service_id))
    return node_ids


# -- compute nodes ----------------------------------------------------------

def _node_exists(values: dict[str, Any]) -> Callable[[], Exception]:
    return lambda: exception.ComputeHostExists(
        host=values.get("host"), node=values.get("hypervisor_hostname"))


@_idempotent_create(models.ComputeNode)
@writer
def compute_node_create(context: Any,
                        values: dict[str, Any]) -> models.ComputeNode:
    scope.check_node_values(context, values, create=True,
                            connection=context.session)
    return _create(context, models.ComputeNode, values, _node_exists(values))  # type: ignore[no-any-return]


@reader
def compute_node_get(context: Any, node_id: int) -> models.ComputeNode:
    query = _live(models.ComputeNode).where(models.ComputeNode.id == node_id)
    return _one(context, query,  # type: ignore[no-any-return]
                lambda: exception.ComputeHostNotFound(node=node_id))


@reader
def compute_node_get_by_host_and_nodename(
        context: Any, host: str, nodename: str) -> models.ComputeNode:
    query = _live(models.ComputeNode).where(
        models.ComputeNode.host == host,
        models.ComputeNode.hypervisor_hostname == nodename)
    return _one(context, query,  # type: ignore[no-any-return]
                lambda: exception.ComputeHostNotFound(node="%s/%s" % (host, nodename)))


@reader
def compute_node_get_all(context: Any, host: str | None = None,
                         nodename: str | None = None,
        replica: bool = False) -> Sequence[models.ComputeNode]:
    query = _live(models.ComputeNode).order_by(models.ComputeNode.id)
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
    return _update(context.connection, models.ComputeNode, node_id, values,
                   lambda: exception.ComputeHostNotFound(node=node_id),
                   _node_exists(values),
                   scoped=scope.scoped(context, host, "owned",
                                  "update a compute node", "node %s" % node_id))


@writer
def compute_node_destroy(context: Any, node_id: int) -> None:
    _soft_delete(context, models.ComputeNode, node_id,
                 lambda: exception.ComputeHostNotFound(node=node_id))


# -- instances --------------------------------------------------------------

@_idempotent_create(models.Instance)
@writer
def instance_create(context: Any, values: dict[str, Any]) -> models.Instance:
    scope.check_instance_values(context, values, create=True,
                                connection=context.session)
    return _create(context, models.Instance, values,  # type: ignore[no-any-return]
                   lambda: exception.InstanceExists(uuid=values.get("uuid")))


@reader
def instance_get_by_uuid(context: Any, uuid: str) -> models.Instance:
    query = _live(models.Instance).where(models.Instance.uuid == uuid)
    return _one(context, query,  # type: ignore[no-any-return]
                lambda: exception.InstanceNotFound(instance=uuid))


@reader
def instance_get_all(context: Any, host: str | None = None,
                     node: str | None = None,
        replica: bool = False) -> Sequence[models.Instance]:
    query = _live(models.Instance).order_by(models.Instance.id)
    if host is not None:
        query = query.where(models.Instance.host == host)
    if node is not None:
        query = query.where(models.Instance.node == node)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@writer_connection
def instance_update(context: Any, instance_id: int,
                    values: dict[str, Any]) -> Any:
    """Write ``values`` only. A host caller updates the instances on it,
    places one that is nowhere yet on itself, or moves one along an
    in-progress migration it takes part in (``novalet.db.scope``)."""
    host = scope.check_instance_values(context, values, create=False,
                                       connection=context.connection,
                                       instance_id=instance_id)
    kind = ("instance_unplaced" if host is not None
            and values.get("host", None) == host else "instance")
    return _update(context.connection, models.Instance, instance_id, values,
                   lambda: exception.InstanceNotFound(instance=instance_id),
                   lambda: exception.InstanceExists(uuid=values.get("uuid")),
                   scoped=scope.scoped(context, host, kind, "update an instance",
                                  "instance %s" % instance_id))


@writer
def instance_destroy(context: Any, instance_id: int) -> None:
    _soft_delete(context, models.Instance, instance_id,
                 lambda: exception.InstanceNotFound(instance=instance_id))


# -- migrations -------------------------------------------------------------

@_idempotent_create(models.Migration)
@writer
def migration_create(context: Any, values: dict[str, Any]) -> models.Migration:
    scope.check_migration_values(context, values, create=True)
    return _create(context, models.Migration, values,  # type: ignore[no-any-return]
                   lambda: exception.Conflict(
                       reason="migration %s exists" % values.get("uuid")))


@reader
def migration_get(context: Any, migration_id: int) -> models.Migration:
    query = _live(models.Migration).where(models.Migration.id == migration_id)
    return _one(context, query,  # type: ignore[no-any-return]
                lambda: exception.MigrationNotFound(migration=migration_id))


@reader
def migration_get_in_progress_by_host_and_node(
        context: Any, host: str, node: str,
        done_statuses: Sequence[str]) -> Sequence[models.Migration]:
    M = models.Migration
    query = _live(M).where(
        sa.or_(sa.and_(M.source_compute == host, M.source_node == node),
               sa.and_(M.dest_compute == host, M.dest_node == node)),
        M.status.not_in(list(done_statuses))).order_by(M.id)
    return context.session.execute(query).scalars().all()  # type: ignore[no-any-return]


@writer_connection
def migration_update(context: Any, migration_id: int,
                     values: dict[str, Any]) -> Any:
    host = scope.check_migration_values(context, values, create=False,
                                        connection=context.connection,
                                        migration_id=migration_id)
    return _update(context.connection, models.Migration, migration_id, values,
                   lambda: exception.MigrationNotFound(migration=migration_id),
                   lambda: exception.Conflict(reason="duplicate migration"),
                   scoped=scope.scoped(context, host, "owned", "update a migration",
                                  "migration %s" % migration_id))


@writer
def migration_destroy(context: Any, migration_id: int) -> None:
    _soft_delete(context, models.Migration, migration_id,
                 lambda: exception.MigrationNotFound(migration=migration_id))
