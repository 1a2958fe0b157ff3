"""The checks every statement passes as it executes, whoever wrote it (the
core's table modules or an app's remotable method through
``novalet.db.reader`` / ``novalet.db.writer``):

* the values an ``INSERT`` or ``UPDATE`` writes fit their columns
  (``novalet.db.columns``), for every caller: ``MalformedRequest``, nothing
  written;
* a host principal's writes to a host-scoped table (``App.host_scoped``,
  ``novalet.db.scope.scoped_tables``) touch only the rows whose column is
  the caller: an ``INSERT`` must set the column to the caller in values this
  can read (an upsert or ``INSERT ... SELECT`` is refused); an ``UPDATE`` may not set it to another
  host; an ``UPDATE`` or ``DELETE`` naming any row that is not the caller's
  is refused, and the statement that runs carries ``AND column = :caller``
  itself (a row changed meanwhile is still not touched); text SQL, DDL or a
  write nested in a CTE naming the table is refused. A refusal is
  ``Forbidden`` (one warning naming the caller), raised before the
  statement runs.

A transaction learns its caller from ``bind()`` (``novalet.db.engine``
calls it for every transaction of a context with a host principal): the
context rides on the transaction's connection as an execution option.
Statements of the core's table modules that carry their own scope
(``novalet.db.scope.checked``) are left as they are.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import sqlalchemy as sa
from sqlalchemy import orm

from novalet.db import columns, dml, scope

#: The connection's execution option holding the context of a host caller.
CONTEXT_OPTION = "novalet_scope_context"


def install(engine: sa.engine.Engine) -> None:
    """Check every statement ``engine`` runs (once per engine)."""
    sa.event.listen(engine, "before_execute", _before_execute, retval=True)
    sa.event.listen(engine, "before_cursor_execute", _before_driver_sql)


def bind(context: Any, executor: Any) -> None:
    """The transaction of ``executor`` (a session or a connection) runs for
    ``context``: scope its writes if its principal is a host."""
    if scope.caller_host(context) is None:
        return
    connection = (executor.connection() if isinstance(executor, orm.Session)
                  else executor)
    connection.execution_options(**{CONTEXT_OPTION: context})


def _parameter_sets(multiparams: Any, params: Any) -> list[dict[str, Any]]:
    if multiparams:
        return [dict(p) for p in multiparams]
    return [dict(params)] if params else []


def _before_execute(conn: Any, statement: Any, multiparams: Any, params: Any,
                    options: Any) -> tuple[Any, Any, Any]:
    parameter_sets = _parameter_sets(multiparams, params)
    target = dml.target(statement)
    if isinstance(target, sa.Table) and not isinstance(statement, sa.Delete):
        _check_values(target, statement, parameter_sets)
    context = options.get(CONTEXT_OPTION)
    if context is not None and not options.get(scope.CHECKED_OPTION):
        host = scope.caller_host(context)
        if host is not None:
            statement = _scoped(conn, context, host, statement,
                                parameter_sets)
    return statement, multiparams, params


@functools.lru_cache(maxsize=1024)
def _columns_by_key(table: sa.Table) -> dict[str, tuple[str, Any]]:
    """``{key: ("table.column", type)}`` of ``table`` (built once)."""
    return {c.key: ("%s.%s" % (table.name, c.name), c.type) for c in table.c}


def _check_values(table: sa.Table, statement: Any,
                  parameter_sets: list[dict[str, Any]]) -> None:
    by_key = _columns_by_key(table)
    for row in dml.written(statement, parameter_sets):
        for key, value in row.items():
            found = by_key.get(key)
            if found is not None and value is not dml.EXPRESSION:
                columns.check(found[0], value, found[1])


def _named(text: str, tables: dict[str, Any]) -> list[str]:
    return sorted(name for name in tables if re.search(
        r"(?<![\w$])%s(?![\w$])" % re.escape(name), text, re.IGNORECASE))


def _refuse(context: Any, action: str, reason: str) -> Exception:
    return scope.refuse(context, action, reason)


def _scoped(conn: Any, context: Any, host: str, statement: Any,
            parameter_sets: list[dict[str, Any]]) -> Any:
    """``statement`` as a host caller may run it, or ``Forbidden``."""
    tables = scope.scoped_tables()
    names, texts, nested_writes = dml.parts(statement)
    for text in texts:
        named = _named(text, tables)
        if named:
            raise _refuse(context, "run SQL text on %s" % ", ".join(named),
                          "text SQL cannot be confined to a host's rows")
    if isinstance(statement, sa.schema.ExecutableDDLElement):
        named = _named(str(getattr(statement, "target", "")), tables)
        if named:
            raise _refuse(context, "alter %s" % ", ".join(named),
                          "a host changes no host-scoped table")
        return statement
    names |= {c.table.name for c in dml.value_columns(statement)
              if getattr(c, "table", None) is not None}
    if not names & set(tables):
        return statement  # names no host-scoped table
    for nested in nested_writes:
        named = sorted({t.name for t in dml.tables_in(nested.table)} & set(tables))
        if named:
            raise _refuse(context, "write %s in a subquery" % ", ".join(named),
                          "only a statement writing the table itself is "
                          "confined to the caller's rows")
    target = dml.target(statement)
    if target is None:
        return statement
    written = {t.name for t in dml.tables_in(statement.table)}
    written |= {c.table.name for c in dml.value_columns(statement)
                if getattr(c, "table", None) is not None}
    hit = sorted(written & set(tables))
    if not hit:
        return statement
    verb = ("insert into" if isinstance(statement, sa.Insert) else
            "update" if isinstance(statement, sa.Update) else "delete from")
    action = "%s %s" % (verb, ", ".join(hit))
    if written != {target.name}:
        raise _refuse(context, action, "a write through a join or into "
                      "another table is not confined to the caller's rows")
    column_name = tables[target.name]
    if column_name is None:
        raise _refuse(context, action, "a host writes no row of %s"
                      % target.name)
    dml_table = statement.table
    column = next((c for c in dml_table.c if c.name == column_name), None)
    if column is None:
        raise _refuse(context, action, "%s has no column %s (its app's "
                      "host_scoped names it)" % (target.name, column_name))
    if isinstance(statement, sa.Insert):
        if dml.is_upsert(statement):
            raise _refuse(context, action, "an upsert or a prefixed insert "
                          "may write other hosts' rows")
        # Each row must name the caller (an INSERT ... SELECT names none
        # this can read: refused here too).
        for row in dml.written(statement, parameter_sets):
            _check_owner(context, action, column, row.get(column.key, None),
                         host)
        return statement
    if isinstance(statement, sa.Update):
        for row in dml.written(statement, parameter_sets):
            if column.key in row:
                _check_owner(context, action, column, row[column.key], host)
    if names_foreign_rows(conn, statement, column, host, parameter_sets):
        raise _refuse(context, action, "it names rows of %s that are not "
                      "%s's" % (target.name, host))
    # The rows may change hands between that look and the write: the write
    # carries the condition itself.
    return statement.where(scope.is_caller(column, host))


def names_foreign_rows(conn: Any, statement: Any, column: Any, host: str,
                       parameter_sets: list[dict[str, Any]]) -> bool:
    """Whether the ``UPDATE``/``DELETE`` ``statement`` names a row whose
    ``column`` is not ``host`` (for the error: it is refused whole)."""
    foreign = sa.or_(column.is_(None), sa.not_(scope.is_caller(column, host)))
    probe = sa.select(sa.literal(1)).select_from(statement.table).where(foreign)
    if statement.whereclause is not None:
        probe = probe.where(statement.whereclause)
    return any(conn.execute(probe.limit(1), params).first() is not None
               for params in parameter_sets or [{}])


def _check_owner(context: Any, action: str, column: Any, value: Any,
                 host: str) -> None:
    if value is dml.EXPRESSION or type(value) is not str or value != host:
        shown = "an SQL expression" if value is dml.EXPRESSION else repr(value)
        raise _refuse(context, action, "%s would be %s, not %r"
                      % (column.name, shown, host))


def _before_driver_sql(conn: Any, cursor: Any, statement: str, parameters: Any,
                       context: Any, executemany: bool) -> None:
    """SQL sent as a string (``exec_driver_sql``): refused to a host caller
    when it names a host-scoped table."""
    if context is None or context.compiled is not None:
        return
    caller = context.execution_options.get(CONTEXT_OPTION)
    if caller is None or scope.caller_host(caller) is None:
        return
    named = _named(statement, scope.scoped_tables())
    if named:
        raise _refuse(caller, "run SQL text on %s" % ", ".join(named),
                      "text SQL cannot be confined to a host's rows")
