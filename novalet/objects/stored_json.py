"""JSON held in text columns: one way to read every such column.

A stored value that does not parse as what its field holds (corrupt text, or
JSON of the wrong shape) never makes its row unreadable. It reads as the
field's empty value; a warning naming the table, the row, the column and the
start of the bad text is logged once per process; the field is marked
changed, so the object's next ``save()`` (a compute's next resource audit)
writes a valid value over it. ``novalet-status upgrade check`` lists the rows
that still hold such values (``corrupt_columns``).

A parser takes the column's text and returns the field value, or raises
``InvalidJSONValue``; empty text (NULL, ``""``) is the empty value, not an
error.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from oslo_log import log as logging
from oslo_serialization import jsonutils

from novalet import exception

LOG = logging.getLogger(__name__)

Parser = Callable[[Any], Any]

#: (table, row uuid or id, column, text) already warned about; bounded.
_warned: set[tuple[str, Any, str, str]] = set()
_warned_lock = threading.Lock()
MAX_WARNED = 10000


def loads(text: Any, what: str) -> Any:
    """``text`` parsed as JSON; raises ``InvalidJSONValue`` naming ``what``."""
    if not isinstance(text, str):
        raise exception.InvalidJSONValue(
            what=what, reason="not text but %s" % type(text).__name__)
    try:
        return jsonutils.loads(text)
    except ValueError as e:
        raise exception.InvalidJSONValue(what=what, reason="not JSON: %s" % e)


def list_object(list_class: Any, text: Any, item: str) -> Any:
    """A list object (``list_class.from_dicts``) read from its stored JSON
    list of dicts; empty text is an empty list. Raises ``InvalidJSONValue``
    naming the class for anything else (``item`` names one entry)."""
    if not text:
        return list_class.from_dicts([])
    values = loads(text, list_class.__name__)
    if not isinstance(values, list):
        raise exception.InvalidJSONValue(what=list_class.__name__,
                                         reason="not a JSON list")
    try:
        return list_class.from_dicts(values)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise exception.InvalidJSONValue(
            what=list_class.__name__, reason="bad %s: %s: %s"
            % (item, type(e).__name__, e))


def parse_dict_of_strings(text: Any) -> dict[str, str]:
    """A JSON object of scalar values, as strings (``ComputeNode.stats``)."""
    if not text:
        return {}
    value = loads(text, "a dict of strings")
    if not isinstance(value, dict) or not all(
            isinstance(v, (str, int, float, bool)) for v in value.values()):
        raise exception.InvalidJSONValue(
            what="a dict of strings",
            reason="not an object of scalar values: %.60r" % (value,))
    return {str(k): str(v) for k, v in value.items()}


def read(obj: Any, table: str, field: str, column: str, text: Any,
         parse: Parser, empty: Callable[[], Any], row_label: str = "") -> Any:
    """``parse(text)``; on ``InvalidJSONValue`` the ``empty()`` value, the
    warning (once) and ``field`` noted in ``obj._obj_corrupt_fields`` (the
    object marks them changed once loaded)."""
    try:
        return parse(text)
    except exception.InvalidJSONValue as e:
        corrupt = getattr(obj, "_obj_corrupt_fields", None)
        if corrupt is not None:
            corrupt.add(field)
        row_id = obj.id if obj.obj_attr_is_set("id") else None
        # By uuid where there is one: ids repeat across databases.
        key = (table, getattr(obj, "uuid", row_id) if obj.obj_attr_is_set(
            "uuid") else row_id, column, str(text))
        with _warned_lock:
            first = key not in _warned
            if first:
                if len(_warned) >= MAX_WARNED:
                    _warned.clear()
                _warned.add(key)
        if first:
            LOG.warning("%s row %s%s: column %s holds a corrupt value (%s): "
                        "%.120r; it reads as empty until it is written again",
                        table, row_id, row_label, column, e.message, text)
        return empty()


def corrupt_columns(row: Any, columns: dict[str, Parser]) -> list[str]:
    """The columns of ``row`` (``{column: parser}``) whose value does not
    parse."""
    bad = []
    for column, parse in columns.items():
        try:
            parse(getattr(row, column))
        except exception.InvalidJSONValue:
            bad.append(column)
    return bad
