"""Whether a value fits a column: the one check of values against columns,
used where an object's fields are checked before a remotable method runs
(``novalet.conductor.validate``) and where any statement writes
(``novalet.db.statements``: every app's tables, whoever the caller).

A value that does not fit is ``MalformedRequest`` naming ``table.column``
(or the object's field), raised before anything is written: text with a
NUL or longer than the column, an integer outside the column's range, a
float that is not finite, a datetime outside years 1000 to 9999 (what every
supported database stores), and a value of the wrong type for the column
(text for an integer, a boolean for an integer, a float for an integer,
a number for text). Columns of other types (JSON, a ``TypeDecorator`` of
the app's own, ``NullType``) are left to their type.
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any

import sqlalchemy as sa

from novalet import exception

#: Integer ranges by column type (the narrowest first).
SMALLINT_RANGE = (-(2 ** 15), 2 ** 15 - 1)
INT_RANGE = (-(2 ** 31), 2 ** 31 - 1)
BIGINT_RANGE = (-(2 ** 63), 2 ** 63 - 1)


def bad(where: str, reason: str) -> exception.MalformedRequest:
    return exception.MalformedRequest(reason="%s: %s" % (where, reason))


def check_text(where: str, value: str, limit: int | None) -> None:
    if "\0" in value:
        raise bad(where, "text with a NUL character")
    if limit is not None and len(value) > limit:
        raise bad(where, "text longer than %d" % limit)


def integer_range(column_type: Any) -> tuple[int, int]:
    """The values an integer column of ``column_type`` stores."""
    if isinstance(column_type, sa.BigInteger):
        return BIGINT_RANGE
    if isinstance(column_type, sa.SmallInteger):
        return SMALLINT_RANGE
    return INT_RANGE


def check(where: str, value: Any, column_type: Any) -> None:
    """``value`` fits a column of ``column_type``; raises
    ``MalformedRequest`` naming ``where``. None is left to the column's
    nullability (the database's own error)."""
    if value is None:
        return
    kind = type(value)
    integer = isinstance(value, int) and kind is not bool  # IntEnum too
    if isinstance(column_type, sa.Boolean):
        if kind is not bool and not (integer and value in (0, 1)):
            raise bad(where, "%s is not a boolean" % kind.__name__)
    elif isinstance(column_type, sa.Integer):
        if not integer:
            raise bad(where, "%s is not an integer" % kind.__name__)
        low, high = integer_range(column_type)
        if not low <= value <= high:
            raise bad(where, "integer out of range")
    elif isinstance(column_type, (sa.Float, sa.Numeric)):
        if not (integer or isinstance(value, (float, decimal.Decimal))):
            raise bad(where, "%s is not a number" % kind.__name__)
        if not integer and not math.isfinite(value):
            raise bad(where, "not a finite number")
    elif isinstance(column_type, sa.DateTime):
        if not isinstance(value, datetime.datetime):
            raise bad(where, "%s is not a datetime" % kind.__name__)
        if not 1000 <= value.year <= 9999:
            raise bad(where, "year %d out of range" % value.year)
    elif isinstance(column_type, sa.String) and not isinstance(
            column_type, sa.Enum):
        if not isinstance(value, str):
            raise bad(where, "%s is not text" % kind.__name__)
        check_text(where, value, column_type.length)
