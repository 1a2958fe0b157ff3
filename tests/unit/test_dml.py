"""``novalet.db.dml`` reads SQLAlchemy's private attributes of INSERT,
UPDATE and DELETE constructs: what it reads must be what the library
itself compiles (a SQLAlchemy upgrade that changes them fails here, not
silently in a scope check)."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from novalet.db import dml

T = sa.Table("t", sa.MetaData(),
             sa.Column("id", sa.Integer, primary_key=True),
             sa.Column("host", sa.String(9)), sa.Column("n", sa.Integer))

STATEMENTS = [
    sa.insert(T).values(host="a", n=1),
    sa.insert(T).values({T.c.host: "b", "n": 2}),
    sa.insert(T).values([{"host": "a", "n": 1}, {"host": "b", "n": 2}]),
    sa.insert(T).values([(7, "c", 3)]),
    sa.update(T).where(T.c.id == 3).values(host="x", n=5),
    sa.update(T).ordered_values((T.c.n, 4), (T.c.host, "y")),
    sa.update(T).values(host=sa.func.lower("Z")),
]


def _compiled_rows(statement: Any) -> list[dict[str, Any]]:
    """Per row, ``{column key: value}`` as SQLAlchemy binds them."""
    params = statement.compile().params
    if any(key.endswith("_m0") for key in params):
        rows: dict[int, dict[str, Any]] = {}
        for key, value in params.items():
            name, _, index = key.rpartition("_m")
            rows.setdefault(int(index), {})[name] = value
        return [rows[i] for i in sorted(rows)]
    return [{c.key: params[c.key] for c in T.c if c.key in params}]


@pytest.mark.parametrize("statement", STATEMENTS)
def test_written_is_what_sqlalchemy_binds(statement: Any) -> None:
    read = list(dml.written(statement, []))
    compiled = _compiled_rows(statement)
    assert len(read) == len(compiled)
    for mine, theirs in zip(read, compiled, strict=True):
        bound = {k: v for k, v in mine.items() if v is not dml.EXPRESSION}
        assert bound == theirs
        expressions = {k for k, v in mine.items() if v is dml.EXPRESSION}
        for key in expressions:  # in the SQL, not bound
            assert key not in theirs and "lower" in str(statement.compile())


def test_parameters_add_to_and_repeat_the_statements_rows() -> None:
    rows = list(dml.written(sa.insert(T), [{"host": "a"}, {"host": "b"}]))
    assert rows == [{"host": "a"}, {"host": "b"}]
    rows = list(dml.written(sa.update(T).values(n=1), [{"host": "c"}]))
    assert rows == [{"n": 1, "host": "c"}]


@pytest.mark.parametrize("statement, upsert", [
    (sqlite.insert(T).values(host="a").on_conflict_do_nothing(), False),
    (postgresql.insert(T).values(host="a").on_conflict_do_nothing(), False),
    (sqlite.insert(T).values(host="a").on_conflict_do_update(
        index_elements=["id"], set_={"n": 1}), True),
    (postgresql.insert(T).values(host="a").on_conflict_do_update(
        index_elements=["id"], set_={"n": 1}), True),
    (mysql.insert(T).values(host="a").on_duplicate_key_update(n=1), True),
    (sa.insert(T).values(host="a").prefix_with("OR REPLACE"), True),
    (sa.insert(T).values(host="a"), False),
])
def test_upserts_are_what_the_dialect_compiles(statement: Any,
                                               upsert: bool) -> None:
    # The dialect whose insert() made it (sqlalchemy.dialects.<name>.dml).
    dialect = {"sqlite": sqlite, "postgresql": postgresql, "mysql": mysql}.get(
        type(statement).__module__.split(".")[-2], sqlite).dialect()
    sql = str(statement.compile(dialect=dialect)).upper()
    assert dml.is_upsert(statement) is upsert
    assert upsert == any(word in sql for word in (
        "DO UPDATE", "ON DUPLICATE KEY", "REPLACE"))


def test_targets_through_aliases_and_nested_writes() -> None:
    alias = T.alias("x")
    assert dml.target(sa.update(alias).values(n=1)) is T
    assert dml.target(sa.select(T)) is None
    cte = sa.update(T).values(n=1).returning(T.c.id).cte("u")
    select = sa.select(sa.literal(1)).add_cte(cte)
    tables, texts, writes = dml.parts(select)
    assert (tables, texts) == ({"t"}, [])
    assert [type(w).__name__ for w in writes] == ["Update"]
    # An INSERT ... SELECT has no values to read: no owner is seen.
    assert list(dml.written(sa.insert(T).from_select(
        ["host"], sa.select(T.c.host)), [])) == [{}]
    tables, texts, writes = dml.parts(sa.select(sa.literal_column("x"))
                                      .select_from(sa.text("t")))
    assert (tables, sorted(texts), writes) == (set(), ["t", "x"], [])
    assert dml.parts(sa.update(alias).values(n=1))[0] == {"t"}
