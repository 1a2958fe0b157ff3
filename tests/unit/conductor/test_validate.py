"""The conductor's argument checks (``novalet.conductor.validate``) called
directly on the core's remotable methods: each rule refuses with a typed
``MalformedRequest`` naming the call, and lets a good value through."""

from __future__ import annotations

from typing import Any

import pytest

from novalet import exception, objects
from novalet.conductor import validate


def _check(fn: Any, *args: Any, **kwargs: Any) -> None:
    validate.check_call(fn, "Obj.method", args, kwargs, drop=2)


def test_a_bool_is_not_an_int():
    """``True`` is an ``int`` to Python; a caller sending it for an id is
    refused, as is one for a float or inside a list of ints."""
    with pytest.raises(exception.MalformedRequest, match="bool is not int"):
        _check(objects.Service.get_by_id, True)
    with pytest.raises(exception.MalformedRequest, match="bool is not int"):
        _check(objects.ServiceList.report_heartbeats, [1, False])
    with pytest.raises(exception.MalformedRequest, match="bool is not float"):
        validate.check_value("Obj.method(x)", True, float)
    _check(objects.Service.get_by_id, 1)
    _check(objects.ServiceList.report_heartbeats, [1, 2])
    validate.check_value("Obj.method(x)", 1, float)
    validate.check_value("Obj.method(x)", 1.5, float)
    validate.check_value("Obj.method(x)", True, bool)


@pytest.mark.parametrize("value, hint", [
    ("1", int), (1.0, int), (None, int), (1, str), (b"x", str), (1, bool),
    (0, bool), ("x", float), (None, float), ("x", list[int]), (1, dict[str, int]),
    ("x", int | None), (1, str | None), (1, type(None)),
])
def test_values_that_do_not_match_their_annotation(value, hint):
    with pytest.raises(exception.MalformedRequest, match="Obj.method"):
        validate.check_value("Obj.method(x)", value, hint)


@pytest.mark.parametrize("value, hint", [
    (1, int), ("x", str), (False, bool), (None, int | None), (None, type(None)),
    ([1, 2], list[int]), ((1, 2), list[int]), ({"a": 1}, dict[str, int]),
    ("x", Any), (object(), Any), ("x", None),
])
def test_values_that_match_their_annotation(value, hint):
    validate.check_value("Obj.method(x)", value, hint)


@pytest.mark.parametrize("value, reason", [
    (2 ** 63, "out of range"), (-(2 ** 63) - 1, "out of range"),
    (float("inf"), "finite"), (float("nan"), "finite"),
    ("a\0b", "NUL"), ("x" * (validate.MAX_TEXT + 1), "longer than 255"),
    ([0] * (validate.MAX_ITEMS + 1), "more than"),
    ({str(i): 0 for i in range(validate.MAX_ITEMS + 1)}, "more than"),
    ({"a\0": 1}, "NUL"), ({"a": "b\0"}, "NUL"), ([["\0"]], "NUL"),
])
def test_limits(value, reason):
    with pytest.raises(exception.MalformedRequest, match=reason):
        validate.check_value("Obj.method(x)", value, None)


@pytest.mark.parametrize("value", [
    2 ** 63 - 1, -(2 ** 63), "x" * validate.MAX_TEXT,
    [0] * validate.MAX_ITEMS, 1.5,
])
def test_values_at_the_limits_pass(value):
    validate.check_value("Obj.method(x)", value, None)


def test_nesting_deeper_than_max_depth_is_refused():
    value: Any = "x"
    for _ in range(validate.MAX_DEPTH):
        value = [value]
    validate.check_value("Obj.method(x)", value, None)
    with pytest.raises(exception.MalformedRequest, match="nested too deep"):
        validate.check_value("Obj.method(x)", [value], None)


def test_the_call_binds_to_the_signature():
    for args, kwargs, reason in [
            ((), {}, "missing a required argument"),
            ((1, 2), {}, "too many"),
            ((), {"service_id": 1, "other": 2}, "unexpected keyword"),
            ((), {1: 1}, "argument names must be strings")]:
        with pytest.raises(exception.MalformedRequest, match=reason):
            validate.check_call(objects.Service.get_by_id, "Obj.method", args,
                                kwargs, drop=2)
    _check(objects.Service.get_by_id, service_id=1)
