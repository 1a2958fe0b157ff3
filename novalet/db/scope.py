"""Host-scoped writes: what a host principal may write, checked where the
row is written.

Which tables are host-scoped, and by which column, every app declares
(``App(host_scoped={"table": "column"})``, read by ``scoped_tables()``);
novalet's own app declares its tables the same way. Any write of a host
principal to such a table, ORM or Core, is confined in its statement to
the rows whose column is the caller (``novalet.db.statements``). The core's
table modules add the rules below to that base rule for their own tables
and mark their statements as checked (``checked``).

A request signed with a host's key (``novalet.auth``) may create, update and
delete only that host's ``services``, ``compute_nodes`` and ``instances``
rows, and registers no conductor (``ADMIN_BINARIES``). The checks never
trust the object the caller sent: the values it asks to write are checked
here, and the row it names must be the caller's in the database, in the
same statement that writes it (``UPDATE ... WHERE id = :id AND host =
:caller``). A refusal is ``Forbidden`` with nothing written and one warning
naming the verified caller. Admins and local callers are unscoped.

Migrations are started by an admin (the conductor, on an admin's or the
API's request), never by a host: a host creates and deletes none, and
reports only the ``status`` of an in-progress migration it is the source or
destination of. While such a migration is in progress and the instance sits
on one of its ends, either end may update the instance and move it to the
other end (the host and node the migration names); a host never changes an
instance's sizes. So no host acts on an instance that is not on it unless an
admin made it an end of that instance's migration, and no host makes
another host's resource tracker count anything.

Whoever the caller, ``services.last_seen_up`` is written by the database
clock only (a heartbeat), never from a value sent.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from novalet import app, exception
from novalet.auth import principal as principal_mod
from novalet.auth import signing
from novalet.db import models
from novalet.db.sqlfuncs import exact

#: The bound parameter of the caller's host in scoped statements.
CALLER = "scope_caller"

#: The execution option of a statement that carries its own scope (the
#: core's table modules): ``novalet.db.statements`` leaves it as it is.
CHECKED_OPTION = "novalet_scope_checked"

#: Service fields only an admin changes (fencing and scheduling marks).
ADMIN_SERVICE_FIELDS = frozenset({"forced_down", "disabled", "disabled_reason"})

#: Service binaries only an admin registers: the conductors, which sign
#: with the master key. Every caller's ``auto`` caps follow the lowest
#: service version among them, so a host that could register one would hold
#: every caller at an old release.
ADMIN_BINARIES = frozenset({"novalet-conductor"})

#: The core's host-scoped tables, those this module's rules are written
#: for: a host writes its own services, nodes and instances (and moves an
#: instance along a migration it is an end of); it writes no migration but
#: through those rules. The core app declares them (``novalet.novalet_app``
#: names this map as its ``host_scoped``); they live here, with the rules,
#: so they hold whether the core app is loaded or not, and the database
#: layer does not import the app declarations above it.
CORE_HOST_SCOPED: Mapping[str, str | None] = types.MappingProxyType({
    "services": "host", "compute_nodes": "host", "instances": "host",
    "migrations": None})

_refusals = signing.RefusalLog(interval=10.0)


def scoped_tables() -> dict[str, str | None]:
    """``{table: column}``: the tables a host principal writes only the rows
    of whose column is the caller, as every loaded app declares them
    (``App.host_scoped``; None: a host writes no row of it but through the
    core's own rules). The core's are always in it, loaded or not
    (``CORE_HOST_SCOPED``)."""
    found: dict[str, str | None] = dict(CORE_HOST_SCOPED)
    for loaded in app.loaded().values():
        found.update(loaded.host_scoped)
    return found


def checked(statement: Any) -> Any:
    """``statement`` marked as carrying its own scope condition (the core's
    table modules: ``novalet.db.statements`` adds nothing to it)."""
    return statement.execution_options(**{CHECKED_OPTION: True})


def caller_host(context: Any) -> str | None:
    """The host the writes of ``context`` are confined to (None: unscoped)."""
    return principal_mod.scoped_host(context)


def how(context: Any) -> str:
    """How a request reached the database, as ``services.last_auth`` keeps
    it for a service's heartbeat: ``host``, ``admin``, ``unsigned`` (accepted
    because ``[auth] enforce`` is false) or ``local`` (this process)."""
    principal = getattr(context, "principal", None)
    return "local" if principal is None else principal.kind  # type: ignore[no-any-return]


def refuse(context: Any, action: str, reason: str) -> exception.Forbidden:
    """The ``Forbidden`` error for ``action``, after one warning naming the
    verified caller (at most one per caller and action every 10 s)."""
    who = principal_mod.describe(context)
    _refusals.warn("%s|%s" % (who, action), "Refused: %s may not %s: %s",
                   who, action, reason)
    return exception.Forbidden(principal=who, action=action, reason=reason)


def is_caller(column: Any, host: str | None = None) -> Any:
    """``column`` equals the caller's host, byte for byte (the parameter
    ``CALLER``, or ``host`` bound in the statement)."""
    if host is None:
        return column == exact(sa.bindparam(CALLER, type_=sa.String()))
    return column == exact(sa.bindparam(CALLER, host, type_=sa.String(),
                                        unique=True))


def check_value(context: Any, action: str, what: str, value: Any,
                allowed: tuple[Any, ...]) -> None:
    """Refuse writing ``what = value`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise refuse(context, action, "%s would be %r, not %s" % (
            what, value, " or ".join(repr(a) for a in allowed)))


# -- per table ------------------------------------------------------------------

def no_last_seen_up(context: Any, values: dict[str, Any], *,
                    create: bool) -> None:
    """Refuse a ``last_seen_up`` sent by any caller (a create may leave it
    unset: None)."""
    if "last_seen_up" in values and not (create and values["last_seen_up"]
                                         is None):
        raise refuse(context, "set last_seen_up",
                     "only a heartbeat moves it, by the database clock")


def check_service_values(context: Any, values: dict[str, Any], *,
                         create: bool) -> str | None:
    """Check what a caller writes into a ``services`` row; returns its host
    (None: unscoped)."""
    no_last_seen_up(context, values, create=create)
    host = caller_host(context)
    if host is None:
        return None
    action = "create a service" if create else "update a service"
    if create or "host" in values:
        check_value(context, action, "host", values.get("host"), (host,))
    if values.get("binary") in ADMIN_BINARIES:
        raise refuse(context, action, "a %s is registered by an admin"
                     % values["binary"])
    if not create:
        admin_only = sorted(ADMIN_SERVICE_FIELDS & set(values))
        if admin_only:
            raise refuse(context, action, "%s are set by an admin"
                         % ", ".join(admin_only))
    return host


def check_node_values(context: Any, values: dict[str, Any], *,
                      create: bool, connection: Any) -> str | None:
    """Check what a caller writes into a ``compute_nodes`` row: its host,
    and the service it links to (one of its host's, or none)."""
    host = caller_host(context)
    if host is None:
        return None
    action = "create a compute node" if create else "update a compute node"
    if create or "host" in values:
        check_value(context, action, "host", values.get("host"), (host,))
    service_id = values.get("service_id")
    if service_id is not None:
        table = models.Service.__table__
        owner = connection.execute(sa.select(table.c.host).where(
            table.c.id == service_id)).scalar()
        if owner != host:
            raise refuse(context, action, "service %s is not a service of %s"
                         % (service_id, host))
    return host


#: Instance fields only an admin changes: what a resource tracker counts
#: wherever the instance goes, and the name its migrations refer to.
ADMIN_INSTANCE_FIELDS = frozenset({"uuid", "vcpus", "memory_mb", "root_gb",
                                   "ephemeral_gb"})

#: Migration fields a host writes: the progress it reports as an end.
HOST_MIGRATION_FIELDS = frozenset({"status"})


def in_progress(migrations: Any) -> Any:
    """A live migration not in a done state (it holds resources)."""
    return sa.and_(migrations.c.deleted == 0, migrations.c.status.not_in(
        list(models.MIGRATION_DONE_STATES)))


def is_end(migrations: Any) -> Any:
    """The caller is the migration's source or destination."""
    return sa.or_(is_caller(migrations.c.source_compute),
                  is_caller(migrations.c.dest_compute))


def migration_ends(connection: Any, instance_uuid: Any,
                   host: str) -> set[tuple[str, Any]]:
    """The (host, node) ends of the in-progress migrations of
    ``instance_uuid`` of which ``host`` is an end (that the instance sits
    on one of them is the statement's condition: ``instance_condition``)."""
    table = models.Migration.__table__
    rows = connection.execute(sa.select(
        table.c.source_compute, table.c.source_node, table.c.dest_compute,
        table.c.dest_node).where(
        table.c.instance_uuid == instance_uuid, in_progress(table),
        is_end(table)), {CALLER: host}).all()
    return {end for src, src_node, dest, dest_node in rows
            for end in ((src, src_node), (dest, dest_node))}


def check_instance_values(context: Any, values: dict[str, Any], *,
                          create: bool, connection: Any,
                          instance_id: int | None = None) -> str | None:
    """Check where a caller puts an instance: on itself, nowhere (taking it
    off itself), or on the other end (host and node) of an in-progress
    migration an admin made it an end of; and that it changes no size."""
    host = caller_host(context)
    if host is None:
        return None
    if create:
        check_value(context, "create an instance", "host", values.get("host"),
                    (host,))
        return host
    admin_only = sorted(ADMIN_INSTANCE_FIELDS & set(values))
    if admin_only:
        raise refuse(context, "update an instance", "%s are set by an admin"
                     % ", ".join(admin_only))
    if "host" not in values and "node" not in values:
        return host
    if values.get("host", host) in (None, host) and "host" in values:
        return host  # on itself, or off itself (kind "instance_own")
    table = models.Instance.__table__
    row = connection.execute(sa.select(
        table.c.uuid, table.c.host, table.c.node).where(
        table.c.id == instance_id)).first()
    if row is None:
        return host  # the update finds nothing: InstanceNotFound
    after = (values.get("host", row.host), values.get("node", row.node))
    if after[0] == host:
        return host  # a node of its own
    ends = migration_ends(connection, row.uuid, host)
    if not any(after[0] == end and node in (None, after[1])
               for end, node in ends):
        raise refuse(context, "move an instance", "%r (node %r) is not %s "
                     "and no migration of the instance in progress leads "
                     "there" % (after[0], after[1], host))
    return host


def instance_condition(kind: str) -> Any:
    """The instances a caller may update: ``instance_own``: on itself only
    (it takes one off itself); ``instance``: on itself, or subject of an
    in-progress migration it is an end of while on one of its ends;
    ``instance_unplaced``: those, or placed nowhere yet (a build claims it
    by placing it on itself)."""
    instances = models.Instance.__table__
    if kind == "instance_own":
        return is_caller(instances.c.host)
    migrations = models.Migration.__table__
    moving = sa.exists().where(
        migrations.c.instance_uuid == instances.c.uuid,
        in_progress(migrations), is_end(migrations),
        sa.or_(instances.c.host == migrations.c.source_compute,
               instances.c.host == migrations.c.dest_compute))
    allowed = [is_caller(instances.c.host), moving]
    if kind == "instance_unplaced":
        allowed.append(instances.c.host.is_(None))
    return sa.or_(*allowed)


def check_migration_values(context: Any, values: dict[str, Any], *,
                           create: bool) -> str | None:
    """A host creates no migration (an admin starts them) and writes only
    the ``status`` of one (the row must be in progress with the caller as
    an end: ``migration_condition``)."""
    host = caller_host(context)
    if host is None:
        return None
    if create:
        raise refuse(context, "create a migration", "migrations are started "
                     "by an admin, not by a host")
    others = sorted(set(values) - HOST_MIGRATION_FIELDS)
    if others:
        raise refuse(context, "update a migration", "%s are set by an admin; "
                     "an end reports its status only" % ", ".join(others))
    return host


def migration_condition(model: type[models.Base]) -> Any:
    """The migrations a host updates: in progress, the caller an end."""
    table = models.Migration.__table__
    return sa.and_(in_progress(table), is_end(table))


def owned_condition(model: type[models.Base]) -> Any:
    """The rows of ``model`` a host owns (for deletes and node/service
    updates): its host-scoped column is the caller. A host owns no row of a
    table declared without a column (the core's ``migrations``)."""
    table: sa.Table = model.__table__  # type: ignore[assignment]
    column = scoped_tables().get(table.name)
    if column is None:
        return sa.false()
    return is_caller(table.c[column])


# -- scoped updates ---------------------------------------------------------------

class Scoped:
    """Which rows of a table a scoped update may touch: ``kind`` names the
    condition (``condition``), ``host`` is the caller, ``forbidden`` the
    error when the row exists but is not the caller's."""

    __slots__ = ("kind", "host", "forbidden")

    def __init__(self, kind: str, host: str,
                 forbidden: Callable[[], Exception]) -> None:
        self.kind = kind
        self.host = host
        self.forbidden = forbidden


_CONDITIONS: dict[str, Callable[[type[models.Base]], Any]] = {
    "owned": owned_condition,
    "migration": migration_condition,
    "instance": lambda model: instance_condition("instance"),
    "instance_own": lambda model: instance_condition("instance_own"),
    "instance_unplaced": lambda model: instance_condition("instance_unplaced"),
}


def condition(kind: str, model: type[models.Base] | str) -> Any:
    """The condition of scope ``kind`` on ``model`` (or its table name)."""
    if isinstance(model, str):
        model = next(m.class_ for m in models.Base.registry.mappers
                     if m.class_.__tablename__ == model)
    return _CONDITIONS[kind](model)


def scoped(context: Any, host: str | None, kind: str, action: str,
           what: str) -> Scoped | None:
    """The scope of an update of a caller confined to ``host`` (None:
    unscoped)."""
    if host is None:
        return None
    return Scoped(kind, host, lambda: refuse(
        context, action, "%s is not %s's" % (what, host)))
