"""How novalet commands print results: aligned text tables or JSON.

Commands build plain records (dicts with a fixed key order, values that JSON
can hold) and hand them to ``emit``; ``--format table`` renders them for
people, ``--format json`` for scripts. The JSON keys are the records' keys and
are part of the command's interface: add keys, never rename them.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

FORMATS = ("table", "json")

#: What an absent value (None) looks like in a table.
EMPTY = "-"


def timestamp(value: datetime.datetime | None) -> str | None:
    """``value`` as UTC ISO 8601 text to the second, ``Z``-suffixed (None
    stays None). Naive values are taken as UTC, as the database returns them."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def cell(value: Any) -> str:
    """One table cell: None is ``-``, booleans are ``yes``/``no``, floats
    lose trailing zeros, dicts and lists are compact JSON."""
    if value is None:
        return EMPTY
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return ("%.2f" % value).rstrip("0").rstrip(".")
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def format_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` under ``columns``, each column as wide as its widest cell,
    separated by two spaces, a dashed line under the header. A column whose
    values are all numbers (or None) is right-aligned."""
    rows = [list(row) for row in rows]
    for row in rows:
        if len(row) != len(columns):
            raise ValueError("row %r does not have %d columns" % (row, len(columns)))
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
               for i in range(len(columns))]
    text_rows = [[cell(value) for value in row] for row in rows]
    widths = [max([len(column)] + [len(row[i]) for row in text_rows])
              for i, column in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        parts = [value.rjust(width) if right else value.ljust(width)
                 for value, width, right in zip(values, widths, numeric, strict=True)]
        return "  ".join(parts).rstrip()

    lines = [line(list(columns)), line(["-" * width for width in widths])]
    lines.extend(line(row) for row in text_rows)
    return "\n".join(lines)


def format_fields(record: Mapping[str, Any],
                  labels: Mapping[str, str] | None = None) -> str:
    """One record as a two-column ``Field``/``Value`` table; ``labels`` maps
    keys to the names shown (default: the keys)."""
    labels = labels or {}
    return format_table(["Field", "Value"],
                        [[labels.get(key, key), cell(value)]
                         for key, value in record.items()])


def format_json(data: Any) -> str:
    """``data`` as indented JSON, keys in the order the record gives them."""
    return json.dumps(data, indent=2, ensure_ascii=False)


def emit(fmt: str, data: Any, table: str) -> None:
    """Print ``data`` as JSON when ``fmt`` is ``json``, else print ``table``
    (the caller's rendering of the same data)."""
    if fmt == "json":
        print(format_json(data))
    else:
        print(table)


__all__ = ["EMPTY", "FORMATS", "cell", "emit", "format_fields", "format_json",
           "format_table", "timestamp"]
