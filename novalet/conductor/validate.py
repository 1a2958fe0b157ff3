"""The arguments of a remotable call, checked before the method runs.

The conductor runs only remotable methods (``manager``); this checks what a
caller hands them, so a bad value is a typed ``MalformedRequest`` answered
without a traceback in the log rather than a database or Python error deep
inside a method:

* the call binds to the method's signature (no missing or unknown
  arguments);
* each argument matches its annotation (``int``, ``str``, ``float``,
  ``bool``, ``X | None``, ``list[...]``, ``dict[...]``; ``bool`` is not an
  ``int``), in the database's range (32-bit integers), strings without NUL
  and at most ``MAX_TEXT`` characters, lists at most ``MAX_ITEMS`` long,
  nesting at most ``MAX_DEPTH`` deep;
* the fields of the object a method runs on (and of an object argument):
  text without NUL and within its column's length, integers within their
  column's range, floats finite, datetimes within years 1000 to 9999 (what
  every supported database stores). The columns are those of the object's
  table, for the objects of every app alike: the class names it
  (``obj_db_table``: a SQLAlchemy ``Table`` or a mapped class; fields named
  otherwise than their columns in ``obj_db_columns``). Whatever a method
  then writes is checked again against its columns where the statement runs
  (``novalet.db.statements``), for any table.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import math
import types
import typing
from typing import Any

import sqlalchemy as sa

from novalet.db import columns as db_columns
from novalet.objects import base as objects_base

MAX_TEXT = 255
MAX_ITEMS = 10000
MAX_DEPTH = 6
#: A version manifest names at most this many objects (novalet's and every
#: app's together are a few dozen).
MAX_MANIFEST = 1000
INT_RANGE = db_columns.INT_RANGE
BIGINT_RANGE = db_columns.BIGINT_RANGE
#: Text in an object's fields without a column to say how long it may be.
MAX_FIELD_TEXT = 65535

_bad = db_columns.bad


@functools.lru_cache(maxsize=1024)
def _signature(fn: Any, drop: int) -> tuple[inspect.Signature, dict[str, Any]]:
    """The parameters a caller passes (``drop``: self/cls and the context
    the conductor supplies) and their annotations (those that resolve)."""
    real = inspect.unwrap(fn)
    signature = inspect.signature(real)
    params = list(signature.parameters.values())[drop:]
    try:
        hints = typing.get_type_hints(real)
    except Exception:  # an annotation that does not resolve: not checked
        hints = {}
    return signature.replace(parameters=params), hints


def check_call(fn: Any, where: str, args: tuple[Any, ...],
               kwargs: dict[str, Any], *, drop: int) -> None:
    """Check a call of the remotable ``fn`` (``where``: Object.method);
    raises ``MalformedRequest``."""
    if not all(type(k) is str for k in kwargs):
        raise _bad(where, "argument names must be strings")
    # The function itself (a bound method is made anew for every call).
    fn = getattr(fn, "original_fn", None) or getattr(fn, "__func__", fn)
    signature, hints = _signature(fn, drop)
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError as e:
        raise _bad(where, str(e))
    for name, value in bound.arguments.items():
        kind = signature.parameters[name].kind
        if kind is inspect.Parameter.VAR_POSITIONAL:
            for item in value:
                check_value("%s(%s)" % (where, name), item, None)
        elif kind is inspect.Parameter.VAR_KEYWORD:
            for key, item in value.items():
                check_value("%s(%s)" % (where, key), item, None)
        else:
            check_value("%s(%s)" % (where, name), value, hints.get(name))


def check_value(where: str, value: Any, hint: Any, depth: int = 0) -> None:
    """``value`` matches ``hint`` (None: any plain value) and the limits."""
    if depth > MAX_DEPTH:
        raise _bad(where, "nested too deep")
    if hint is not None and hint is not Any:
        _check_type(where, value, hint)
    if isinstance(value, objects_base.NovaletObject):
        check_object(value, where)
    elif type(value) is str:
        _check_text(where, value, MAX_TEXT)
    elif type(value) is int:
        if not BIGINT_RANGE[0] <= value <= BIGINT_RANGE[1]:
            raise _bad(where, "integer out of range")
    elif type(value) is float:
        if not math.isfinite(value):
            raise _bad(where, "not a finite number")
    elif isinstance(value, (list, tuple)):
        if len(value) > MAX_ITEMS:
            raise _bad(where, "more than %d items" % MAX_ITEMS)
        for item in value:
            check_value(where, item, _item_hint(hint), depth + 1)
    elif isinstance(value, dict):
        if len(value) > MAX_ITEMS:
            raise _bad(where, "more than %d items" % MAX_ITEMS)
        for key, item in value.items():
            check_value(where, key, None, depth + 1)
            check_value(where, item, _item_hint(hint, 1), depth + 1)


def _item_hint(hint: Any, index: int = 0) -> Any:
    args = typing.get_args(hint)
    if typing.get_origin(hint) in (list, dict, tuple) and len(args) > index:
        return args[index]
    return None


def _matches(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    if hint is None or hint is type(None):
        return value is None
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, option) for option in typing.get_args(hint))
    if origin is not None:
        return isinstance(value, origin) or (origin is list
                                             and isinstance(value, tuple))
    if hint is int:
        return type(value) is int
    if hint is float:
        return type(value) in (int, float)
    if hint is bool:
        return type(value) is bool
    if hint is str:
        return type(value) is str
    if isinstance(hint, type):
        return isinstance(value, hint)
    return True  # a hint this does not understand is not checked


def _check_type(where: str, value: Any, hint: Any) -> None:
    if not _matches(value, hint):
        raise _bad(where, "%s is not %s" % (type(value).__name__,
                                            getattr(hint, "__name__", hint)))


_check_text = db_columns.check_text


def _columns(objinst: Any) -> dict[str, Any]:
    """The columns of ``objinst``'s fields, by field name: those of the
    table its class names (``obj_db_table``), whatever its app."""
    table = getattr(type(objinst), "obj_db_table", None)
    if table is None:
        return {}
    table = getattr(table, "__table__", table)
    names = getattr(objinst, "obj_db_columns", {})
    return {field: table.c[names.get(field, field)] for field in objinst.fields
            if names.get(field, field) in table.c}


def check_object(objinst: Any, where: str | None = None, *,
                 changed_only: bool = False) -> None:
    """The fields of ``objinst`` fit its table (see the module docstring);
    ``changed_only``: the fields it would write (its changes) and its id.
    Raises ``MalformedRequest``."""
    columns = _columns(objinst)
    names = objinst.obj_what_changed() | {"id"} if changed_only \
        else objinst.fields
    for name in names:
        if name not in objinst.fields or not objinst.obj_attr_is_set(name):
            continue
        value = getattr(objinst, name)
        column = columns.get(name)
        field_where = "%s.%s" % (objinst.obj_name(), name)
        if type(value) is str:
            length = getattr(column.type, "length", None) if column is not None \
                else None
            _check_text(field_where, value, length or MAX_FIELD_TEXT)
        elif type(value) is int:
            bounds = (db_columns.integer_range(column.type)
                      if column is not None
                      and isinstance(column.type, sa.Integer)
                      else BIGINT_RANGE)
            if not bounds[0] <= value <= bounds[1]:
                raise _bad(field_where, "integer out of range")
        elif type(value) is float:
            if not math.isfinite(value):
                raise _bad(field_where, "not a finite number")
        elif isinstance(value, datetime.datetime):
            if not 1000 <= value.year <= 9999:
                raise _bad(field_where, "year %d out of range" % value.year)
        elif isinstance(value, objects_base.NovaletObject):
            check_object(value)
        elif isinstance(value, list):
            if len(value) > MAX_ITEMS:
                raise _bad(field_where, "more than %d items" % MAX_ITEMS)
            for item in value:
                if isinstance(item, objects_base.NovaletObject):
                    check_object(item)
                else:
                    check_value(field_where, item, None, 1)
        elif isinstance(value, dict):
            check_value(field_where, value, None, 1)


def check_manifest(where: str, versions: Any) -> None:
    """A version manifest: at most ``MAX_MANIFEST`` names and versions, text."""
    if not isinstance(versions, dict):
        return
    if len(versions) > MAX_MANIFEST:
        raise _bad(where, "object_versions names more than %d objects" % MAX_MANIFEST)
    for key, value in versions.items():
        if type(key) is not str or type(value) is not str:
            raise _bad(where, "object_versions maps names to version strings")
        _check_text(where, key, MAX_TEXT)
        _check_text(where, value, 32)
