"""A statement that names a table or column the database does not have: a
field added to an object before its migration, or a database not synced
since an upgrade. ``schema_error(error)`` turns such a driver error into
``SchemaIncomplete`` (a ``SchemaNotCurrent``) naming the app whose code ran
the statement, what is missing and ``novalet-manage db sync``; any other
error gives None.

Recognised on each backend novalet runs on, by the driver's error code
where it has one:

* SQLite: ``no such table: T``, ``no such column: C``, ``table T has no
  column named C``;
* MariaDB/MySQL: 1146 ``Table 'db.T' doesn't exist``, 1054 ``Unknown column
  'C' in ...``;
* PostgreSQL: 42P01 ``relation "T" does not exist``, 42703 ``column "C" of
  relation "T" does not exist`` / ``column T.C does not exist``;
* oslo.db's own ``DBNonExistentTable``, whatever the backend.
"""

from __future__ import annotations

import re
from types import TracebackType

import sqlalchemy as sa
from oslo_db import exception as db_exc

from novalet import app, exception

_SQLITE = (
    (re.compile(r"no such table: (\S+)"), "table"),
    (re.compile(r"table (\S+) has no column named (\S+)"), "column"),
    (re.compile(r"no such column: (\S+)"), "column"),
)
_MYSQL = {
    1146: (re.compile(r"Table '(?:[^'.]+\.)?([^']+)' doesn't exist"), "table"),
    1054: (re.compile(r"Unknown column '([^']+)'"), "column"),
}
_POSTGRESQL = {
    "42P01": (re.compile(r'relation "([^"]+)" does not exist'), "table"),
    "42703": (re.compile(r'column (?:"([^"]+)" of relation "([^"]+)"|(\S+)) '
                         r'does not exist'), "column"),
}


def _driver_error(error: BaseException) -> BaseException | None:
    """The DBAPI error under oslo.db's and SQLAlchemy's wrappers."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, sa.exc.DBAPIError):
            return current.orig  # type: ignore[return-value]
        inner = getattr(current, "inner_exception", None)
        current = inner if isinstance(inner, BaseException) else (
            current.__cause__ or current.__context__)
    return None


def missing_object(error: BaseException) -> str | None:
    """``"table T"``, ``"column T.C"`` or ``"column C"`` when ``error`` says
    the database lacks it; None for any other error."""
    if isinstance(error, db_exc.DBNonExistentTable) and error.table:
        return "table %s" % error.table
    orig = _driver_error(error)
    if orig is None:
        return None
    text = str(orig).strip().splitlines()[0] if str(orig).strip() else ""
    module = type(orig).__module__
    if module.startswith("sqlite3"):
        for pattern, kind in _SQLITE:
            match = pattern.search(text)
            if match:
                return "%s %s" % (kind, ".".join(match.groups()))
        return None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _MYSQL:
        pattern, kind = _MYSQL[args[0]]
        match = pattern.search(str(args[1]) if len(args) > 1 else text)
        return "%s %s" % (kind, match.group(1)) if match else None
    pgcode = getattr(orig, "pgcode", None) or getattr(orig, "sqlstate", None)
    if pgcode in _POSTGRESQL:
        pattern, kind = _POSTGRESQL[pgcode]
        match = pattern.search(text)
        if not match:
            return None
        if kind == "column" and match.group(1):
            return "column %s.%s" % (match.group(2), match.group(1))
        return "%s %s" % (kind, next(g for g in match.groups() if g))
    return None


def _owner_by_code(traceback: TracebackType | None) -> str | None:
    """The app whose object module is the innermost one the error passed
    through (its remotable method ran the statement)."""
    modules = {module: name for name, loaded in app.loaded().items()
               for module in loaded.object_modules}
    owner = None
    while traceback is not None:
        name = traceback.tb_frame.f_globals.get("__name__")
        if name in modules:
            owner = modules[name]
        traceback = traceback.tb_next
    return owner


def _revisions(app_name: str) -> tuple[str, str]:
    """(the database's revision, the code's head) of ``app_name``'s
    lineage, as text; what cannot be read says so."""
    from novalet.db import migration

    try:
        head = migration.head_revision(app_name) or "nothing"
    except exception.NovaletException:
        return "unknown", "no migrations"
    try:
        current = migration.db_version(app_name) or "nothing"
    except Exception:
        current = "unknown"
    return current, head


def _owner_behind() -> str | None:
    """The first lineage whose database revision is not the code's head."""
    from novalet.db import migration

    try:
        for name in migration.lineages():
            if migration.db_version(name) != migration.head_revision(name):
                return name
    except Exception:
        return None
    return None


def schema_error(error: BaseException) -> exception.SchemaIncomplete | None:
    """``SchemaIncomplete`` for a missing table or column (naming the app:
    the one whose object module ran the statement, else the first whose
    schema is behind), None for any other error."""
    missing = missing_object(error)
    if missing is None:
        return None
    owner = _owner_by_code(error.__traceback__) or _owner_behind() or app.CORE
    current, head = _revisions(owner)
    what = "database schema" if owner == app.CORE else "app %s's schema" % owner
    return exception.SchemaIncomplete(what=what, app=owner, missing=missing,
                                      current=current, head=head)
