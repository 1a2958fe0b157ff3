"""The ``services`` table: service records, their heartbeats, the versions
and releases they run, and their deletion with the compute nodes they own.

Every function takes a ``RequestContext`` first and runs in a reader or
writer transaction (``novalet.db.engine``); a host caller writes its own
records only (``novalet.db.scope``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa
from oslo_utils import timeutils

from novalet import exception
from novalet.db import deliveries, models, rows, scope
from novalet.db.engine import reader, writer, writer_connection
from novalet.db.sqlfuncs import utcnow


@reader
def db_utcnow(context: Any) -> Any:
    """The database server's clock (UTC, naive): the clock that writes
    ``last_seen_up``."""
    return context.session.execute(sa.select(utcnow())).scalar_one()


def _service_exists(values: dict[str, Any]) -> Callable[[], Exception]:
    return lambda: exception.ServiceBinaryExists(host=values.get("host"),
                                                 binary=values.get("binary"))


@rows.idempotent_create(models.Service)
@writer
def service_create(context: Any, values: dict[str, Any]) -> models.Service:
    scope.check_service_values(context, values, create=True)
    values = dict(values, last_auth=scope.how(context))
    return rows.create(context, models.Service, values,  # type: ignore[no-any-return]
                       _service_exists(values))


@reader
def service_get(context: Any, service_id: int) -> models.Service:
    query = rows.live(models.Service).where(models.Service.id == service_id)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.ServiceNotFound(service=service_id))


@reader
def service_get_by_uuid(context: Any, uuid: str) -> models.Service:
    query = rows.live(models.Service).where(models.Service.uuid == uuid)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.ServiceNotFound(service=uuid))


@reader
def service_get_by_host_and_binary(context: Any, host: str,
                                   binary: str) -> models.Service:
    query = rows.live(models.Service).where(models.Service.host == host,
                                            models.Service.binary == binary)
    return rows.one(context, query,  # type: ignore[no-any-return]
                    lambda: exception.ServiceNotFound(
                        service="%s/%s" % (host, binary)))


@reader
def service_get_all(context: Any, binary: str | None = None,
                    host: str | None = None,
                    replica: bool = False) -> Sequence[models.Service]:
    query = rows.live(models.Service).order_by(models.Service.id)
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
    rows.update(context.session, models.Service, service_id, values,
                lambda: exception.ServiceNotFound(service=service_id),
                _service_exists(values),
                scoped=scope.scoped(context, host, "owned", "update a service",
                                    "service %s" % service_id),
                **sql_values)
    return service_get(context, service_id)


#: Ids per UPDATE of ``service_heartbeat`` (the expanding ``IN`` makes each
#: a bound parameter: SQLite builds before 3.32 allow 999 in one statement).
HEARTBEAT_CHUNK = 500


@functools.cache
def _heartbeat_statement(scoped: bool, signed: bool) -> sa.Update:
    """The heartbeat's UPDATE, built once per kind of caller: confined to
    the caller's host (``scoped``); skipping the rows that applied this
    request already and remembering it (``signed``: it has a delivery key).
    Parameters: ``ids``, ``beat_how``, ``beat_now``, ``scope.CALLER`` and
    ``deliveries.PARAM``."""
    table: sa.Table = models.Service.__table__  # type: ignore[assignment]
    where = [table.c.id.in_(sa.bindparam("ids", expanding=True)),
             table.c.deleted == 0]
    # Database-computed values go first (MySQL evaluates SET left to right).
    values: list[tuple[Any, Any]] = [
        (table.c.report_count, table.c.report_count + 1),
        (table.c.last_seen_up, utcnow())]
    if scoped:
        where.append(scope.is_caller(table.c.host))
    if signed:
        recent = table.c.recent_deliveries
        where.append(deliveries.not_applied(recent))
        values.append((recent, deliveries.remembered(recent)))
    values += [(table.c.last_auth, sa.bindparam("beat_how", type_=sa.String())),
               (table.c.updated_at, sa.bindparam("beat_now", type_=sa.DateTime()))]
    return scope.checked(
        sa.update(table).where(*where).ordered_values(*values))


@writer_connection
def service_heartbeat(context: Any, service_ids: Sequence[int]) -> list[int]:
    """One heartbeat for each live service in ``service_ids``: ``report_count``
    + 1 and ``last_seen_up`` moved to the database clock, one UPDATE per
    ``HEARTBEAT_CHUNK`` ids. Returns the ids with no live record (deleted),
    in the order given; their rows are untouched. A host caller beats for
    its own services only: ``Forbidden`` (nothing written) for an id of
    another host's record, live or deleted. A signed request is applied
    once however often the broker delivers it (``novalet.db.deliveries``):
    again, it changes nothing and returns the ids deleted meanwhile."""
    table: sa.Table = models.Service.__table__  # type: ignore[assignment]
    connection = context.connection
    ids = list(dict.fromkeys(service_ids))
    host = scope.caller_host(context)
    delivery = deliveries.entry(context)
    stmt = _heartbeat_statement(host is not None, delivery is not None)
    params: dict[str, Any] = {"beat_how": scope.how(context),
                              "beat_now": timeutils.utcnow()}
    if host is not None:
        params[scope.CALLER] = host
    if delivery is not None:
        params[deliveries.PARAM] = delivery
    missing: list[int] = []
    for start in range(0, len(ids), HEARTBEAT_CHUNK):
        chunk = ids[start:start + HEARTBEAT_CHUNK]
        if connection.execute(stmt, dict(params, ids=chunk)).rowcount == len(chunk):
            continue
        # Some rows were not beaten: another host's (refused whole: the
        # transaction is undone), deleted, or this request's already.
        if host is not None:
            _refuse_other_hosts(context, table, chunk, host)
        found = set(connection.execute(sa.select(table.c.id).where(
            table.c.id.in_(chunk), table.c.deleted == 0)).scalars())
        missing.extend(i for i in chunk if i not in found)
    return missing


def _refuse_other_hosts(context: Any, table: sa.Table, chunk: list[int],
                        host: str) -> None:
    """``Forbidden`` if any id of ``chunk`` is another host's record."""
    others = context.connection.execute(
        sa.select(table.c.id).where(
            table.c.id.in_(chunk), sa.not_(scope.is_caller(table.c.host))).limit(5),
        {scope.CALLER: host}).scalars().all()
    if others:
        raise scope.refuse(context, "heartbeat for other hosts' services",
                           "service(s) %s are not %s's"
                           % (", ".join(map(str, others)), host))


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
            .execution_options(synchronize_session=False,
                               **{scope.CHECKED_OPTION: True}))
    rows.soft_delete(context, models.Service, service_id,
                     lambda: exception.ServiceNotFound(service=service_id))
    return node_ids
