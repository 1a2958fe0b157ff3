"""``novalet.db.columns.check``: what fits a column and what is refused,
type by type (the one check of values against columns)."""

from __future__ import annotations

import datetime
import decimal
import enum
from typing import Any

import pytest
import sqlalchemy as sa

from novalet import exception
from novalet.db import columns


class Colour(enum.IntEnum):
    RED = 1


FITS = [
    (sa.String(3), "abc"), (sa.Text(), "x" * 100000), (sa.Integer(), 2 ** 31 - 1),
    (sa.Integer(), Colour.RED), (sa.BigInteger(), 2 ** 63 - 1),
    (sa.SmallInteger(), -(2 ** 15)), (sa.Boolean(), True), (sa.Boolean(), 0),
    (sa.Float(), 1), (sa.Float(), 1.5), (sa.Numeric(), decimal.Decimal("1.5")),
    (sa.DateTime(), datetime.datetime(2026, 1, 1)), (sa.Integer(), None),
    (sa.JSON(), {"any": "thing"}), (sa.Enum("a", "b"), "a"),
]

REFUSED = [
    (sa.String(3), "abcd", "text longer than 3"),
    (sa.String(3), "a\0", "NUL"), (sa.String(3), 12, "int is not text"),
    (sa.Integer(), "1", "str is not an integer"),
    (sa.Integer(), True, "bool is not an integer"),
    (sa.Integer(), 1.0, "float is not an integer"),
    (sa.Integer(), 2 ** 31, "out of range"),
    (sa.SmallInteger(), 2 ** 15, "out of range"),
    (sa.BigInteger(), 2 ** 63, "out of range"),
    (sa.Boolean(), 2, "not a boolean"), (sa.Boolean(), "true", "not a boolean"),
    (sa.Float(), float("nan"), "not a finite number"),
    (sa.Float(), "1.5", "str is not a number"),
    (sa.DateTime(), "2026-01-01", "str is not a datetime"),
    (sa.DateTime(), datetime.datetime(999, 1, 1), "year 999 out of range"),
]


@pytest.mark.parametrize("column_type, value", FITS)
def test_what_fits(column_type: Any, value: Any) -> None:
    columns.check("t.c", value, column_type)


@pytest.mark.parametrize("column_type, value, reason", REFUSED)
def test_what_is_refused_names_the_column(column_type: Any, value: Any,
                                          reason: str) -> None:
    with pytest.raises(exception.MalformedRequest) as info:
        columns.check("t.c", value, column_type)
    assert "t.c: " in info.value.message and reason in info.value.message
