"""SQL expressions that must be computed by the database, per dialect."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import functions


class utcnow(functions.FunctionElement[Any]):  # noqa: N801 (SQL function name)
    """The database server's current UTC time, as a naive DATETIME."""

    type = sa.DateTime()
    inherit_cache = True


@compiles(utcnow)
def _utcnow_default(element: utcnow, compiler: Any, **kw: Any) -> str:
    return "CURRENT_TIMESTAMP"


@compiles(utcnow, "sqlite")
def _utcnow_sqlite(element: utcnow, compiler: Any, **kw: Any) -> str:
    # SQLAlchemy stores SQLite datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff'.
    return "STRFTIME('%Y-%m-%d %H:%M:%f000', 'now')"


@compiles(utcnow, "postgresql")
def _utcnow_postgresql(element: utcnow, compiler: Any, **kw: Any) -> str:
    return "(CURRENT_TIMESTAMP AT TIME ZONE 'UTC')"


@compiles(utcnow, "mysql")
@compiles(utcnow, "mariadb")
def _utcnow_mysql(element: utcnow, compiler: Any, **kw: Any) -> str:
    return "UTC_TIMESTAMP()"


class exact(functions.FunctionElement[Any]):  # noqa: N801 (SQL function name)
    """Its one argument, compared byte for byte: ``column == exact(value)``
    is case- and space-sensitive on every database (MySQL's and MariaDB's
    default collations would match ``HostA`` and ``hosta ``)."""

    type = sa.String()
    inherit_cache = True


@compiles(exact)
def _exact_default(element: exact, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)  # type: ignore[no-any-return]


@compiles(exact, "mysql")
@compiles(exact, "mariadb")
def _exact_mysql(element: exact, compiler: Any, **kw: Any) -> str:
    return "CAST(%s AS BINARY)" % compiler.process(element.clauses, **kw)
