"""A heartbeat the broker delivers twice counts once: the verified request's
delivery key (its principal and signed nonce) is recorded with the write."""

from __future__ import annotations

import datetime
from typing import Any

from novalet import auth, context, objects
from novalet.db import services as db_services


def _beats(ctxt: Any, service_id: int) -> int:
    db_services.service_heartbeat(ctxt, [service_id])
    with objects.base.run_locally():
        return objects.Service.get_by_id(context.get_admin_context(),
                                         service_id).report_count


def _delivered(key: str | None) -> Any:
    ctxt = context.get_admin_context()
    ctxt.delivery_key = key
    return ctxt


def test_a_request_delivered_twice_counts_once(database: Any) -> None:
    svc = objects.Service(context.get_admin_context(), host="h1",
                          binary="novalet-compute")
    svc.create()
    assert _beats(_delivered("a" * 64), svc.id) == 1
    assert _beats(_delivered("a" * 64), svc.id) == 1  # the same, again
    assert _beats(_delivered("b" * 64), svc.id) == 2
    # Unsigned and local requests have no key: each one counts.
    assert _beats(_delivered(None), svc.id) == 3
    assert _beats(_delivered(None), svc.id) == 4
    [(count,)] = database.query("SELECT count(*) FROM rpc_deliveries")
    assert count == 2


def test_recorded_deliveries_are_forgotten_after_twice_the_window(
        database: Any, conf: Any) -> None:
    conf("timestamp_window", 5, "auth")
    svc = objects.Service(context.get_admin_context(), host="h1",
                          binary="novalet-compute")
    svc.create()
    _beats(_delivered("c" * 64), svc.id)
    old = (datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
           - datetime.timedelta(seconds=11))
    database.query("UPDATE rpc_deliveries SET seen_at = :t", t=old)
    _beats(_delivered("d" * 64), svc.id)
    assert [r[0] for r in database.query("SELECT delivery_key FROM rpc_deliveries")] == ["d" * 64]


def test_the_key_names_the_verified_caller_and_its_nonce() -> None:
    signed = {auth.signing.FIELD: {"n": "nonce-1"}}
    admin = auth.principal.admin()
    host = auth.principal.host("h1")
    key = auth.delivery_key(admin, signed)
    assert key is not None and len(key) == 64
    assert key == auth.delivery_key(admin, {auth.signing.FIELD: {"n": "nonce-1"}})
    assert key != auth.delivery_key(host, signed)
    assert key != auth.delivery_key(admin, {auth.signing.FIELD: {"n": "nonce-2"}})
    assert auth.delivery_key(None, signed) is None
    assert auth.delivery_key(admin, {}) is None
