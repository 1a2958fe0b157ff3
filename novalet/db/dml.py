"""What a SQLAlchemy statement writes, read from the statement itself: the
one module that reads SQLAlchemy's private attributes of ``INSERT``,
``UPDATE`` and ``DELETE`` constructs (``_values``, ``_multi_values``,
``_post_values_clause``, ``_prefixes``). SQLAlchemy has no public reader of
what ``.values()`` was given; ``tests/unit/db/test_dml.py`` compares what
this reads with the SQL the library compiles, so a change of those
internals fails a test rather than a check.

``written(statement, parameter_sets)`` gives, for each row (or parameter
set) a statement writes, the values it assigns by column key, from
``.values()`` and from the execution parameters alike.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql import dml as sa_dml
from sqlalchemy.sql import visitors

#: A value this module cannot read (a SQL expression: ``func.lower(x)``,
#: a column, a subquery): not a bound Python value.
EXPRESSION = object()


def target(statement: Any) -> Any:
    """The table an ``INSERT``/``UPDATE``/``DELETE`` writes (an alias's
    table), or None for any other statement."""
    if not isinstance(statement, sa_dml.UpdateBase):
        return None
    table: Any = statement.table
    while isinstance(table, sa.Alias):
        table = table.element
    return table


def tables_in(element: Any) -> list[Any]:
    """Every table ``element`` names (a join's, an alias's), as tables."""
    found = []
    for node in visitors.iterate(element):
        if isinstance(node, sa.TableClause):
            found.append(node)
    return found


def _key(column: Any) -> Any:
    return column if isinstance(column, str) else getattr(column, "key", column)


def _value(element: Any) -> Any:
    if isinstance(element, sa.BindParameter):
        return element.effective_value
    if isinstance(element, sa.ClauseElement) or hasattr(
            element, "__clause_element__"):
        return EXPRESSION
    return element


def _statement_rows(statement: Any) -> list[dict[str, Any]]:
    """The rows ``.values()`` gives (one, several for a multi-row insert,
    none without ``.values()``); a row given as a tuple fills the table's
    columns in order."""
    rows = []
    for batch in getattr(statement, "_multi_values", None) or ():
        for row in batch:
            if not isinstance(row, dict):
                row = dict(zip(statement.table.c, row, strict=False))
            rows.append({_key(k): _value(v) for k, v in row.items()})
    values = getattr(statement, "_values", None)
    if values:
        rows.append({_key(k): _value(v) for k, v in values.items()})
    return rows


def value_columns(statement: Any) -> set[Any]:
    """The column objects named as keys of ``.values()`` (to find a value
    written into another table than the target: MySQL's multi-table
    ``UPDATE``)."""
    values = getattr(statement, "_values", None) or {}
    return {k for k in values if isinstance(k, sa.Column)}


def written(statement: Any, parameter_sets: Sequence[dict[str, Any]]
            ) -> Iterator[dict[str, Any]]:
    """For each row ``statement`` writes, ``{column key: value}``: what
    ``.values()`` gives, with the execution parameters of the same names
    (a value that is a SQL expression is ``EXPRESSION``). Parameters that
    name no column (bound names of a ``WHERE``) are left in: the caller
    looks up the columns it cares about."""
    rows = _statement_rows(statement) or [{}]
    params = list(parameter_sets) or [{}]
    for row in rows:
        for param in params:
            merged = dict(row)
            merged.update(param)
            yield merged


def is_upsert(statement: Any) -> bool:
    """An ``INSERT`` that may change an existing row instead: a dialect's
    ``ON CONFLICT DO UPDATE`` / ``ON DUPLICATE KEY UPDATE``, or a prefix
    (``OR REPLACE``); ``ON CONFLICT DO NOTHING`` is not one."""
    clause = getattr(statement, "_post_values_clause", None)
    if clause is not None and type(clause).__name__ != "OnConflictDoNothing":
        return True
    return bool(getattr(statement, "_prefixes", ()))


def parts(statement: Any) -> tuple[set[str], list[str], list[Any]]:
    """One pass over ``statement``: the names of the tables it names, the
    SQL text written by hand in it (``text()`` and ``literal_column()``
    fragments, the statement itself if it is one), and the
    ``INSERT``/``UPDATE``/``DELETE`` inside it other than itself (in a CTE:
    PostgreSQL's ``WITH u AS (UPDATE ...) SELECT``)."""
    tables: set[str] = set()
    texts: list[str] = []
    writes: list[Any] = []
    for node in visitors.iterate(statement):
        if isinstance(node, sa.TableClause):
            tables.add(node.name)
        elif isinstance(node, sa.TextClause):
            texts.append(node.text)
        elif isinstance(node, sa.ColumnClause) and node.is_literal:
            texts.append(node.name)
        elif isinstance(node, sa_dml.UpdateBase) and node is not statement:
            writes.append(node)
    return tables, texts, writes
