"""A heartbeat the broker delivers twice counts once: the verified request's
delivery key (its principal and signed nonce) is remembered on the rows the
heartbeat's own UPDATE writes, and that UPDATE skips the rows holding it."""

from __future__ import annotations

import hashlib
import threading
from typing import Any

import pytest

from novalet import auth, context, exception, objects
from novalet.db import deliveries
from novalet.db import services as db_services


def _count(service_id: int) -> int:
    with objects.base.run_locally():
        return objects.Service.get_by_id(context.get_admin_context(),
                                         service_id).report_count


def _beats(ctxt: Any, service_id: int) -> int:
    db_services.service_heartbeat(ctxt, [service_id])
    return _count(service_id)


def _delivered(key: str | None, host: str | None = None) -> Any:
    ctxt = context.get_admin_context()
    if host is not None:
        ctxt.set_principal(auth.principal.host(host))
    ctxt.delivery_key = key
    return ctxt


def _key(n: int) -> str:
    """A delivery key as ``auth.delivery_key`` makes them (a SHA-256 digest)."""
    return hashlib.sha256(b"request %d" % n).hexdigest()


def _service(host: str = "h1", binary: str = "novalet-compute") -> Any:
    svc = objects.Service(context.get_admin_context(), host=host, binary=binary)
    svc.create()
    return svc


def test_a_request_delivered_twice_counts_once(database: Any) -> None:
    svc = _service()
    assert _beats(_delivered("a" * 64), svc.id) == 1
    assert _beats(_delivered("a" * 64), svc.id) == 1  # the same, again
    assert _beats(_delivered("b" * 64), svc.id) == 2
    # Delivered again after a later one was applied: still once.
    assert _beats(_delivered("a" * 64), svc.id) == 2
    # Unsigned and local requests have no key: each one counts.
    assert _beats(_delivered(None), svc.id) == 3
    assert _beats(_delivered(None), svc.id) == 4
    assert _beats(_delivered("b" * 64), svc.id) == 4
    # Not another table's row: nothing but the heartbeat's UPDATE.
    [(count,)] = database.query("SELECT count(*) FROM rpc_deliveries")
    assert count == 0


def test_a_host_callers_request_delivered_twice_counts_once(database: Any) -> None:
    mine, other = _service("h1"), _service("h2")
    beat = _delivered(_key(1), host="h1")
    assert _beats(beat, mine.id) == 1
    assert _beats(beat, mine.id) == 1
    # The scope still holds for a request delivered again.
    with pytest.raises(exception.Forbidden):
        db_services.service_heartbeat(beat, [mine.id, other.id])
    with pytest.raises(exception.Forbidden):
        db_services.service_heartbeat(_delivered(_key(2), host="h1"),
                                      [mine.id, other.id])
    assert (_count(mine.id), _count(other.id)) == (1, 0)


def test_a_request_for_many_services_delivered_twice(database: Any) -> None:
    services = [_service(binary="b%d" % i) for i in range(3)]
    ids = [s.id for s in services]
    assert db_services.service_heartbeat(_delivered(_key(7)), ids) == []
    services[1].destroy()
    # Again: nothing beaten, and the service deleted meanwhile is reported.
    assert db_services.service_heartbeat(_delivered(_key(7)), ids) == [ids[1]]
    assert [_count(i) for i in (ids[0], ids[2])] == [1, 1]


def test_a_row_remembers_the_last_deliveries_only(database: Any) -> None:
    svc = _service()
    remembered = deliveries.REMEMBERED
    for n in range(remembered + 1):
        assert _beats(_delivered(_key(n)), svc.id) == n + 1
    # The newest REMEMBERED are recognised; the oldest was forgotten.
    for n in range(1, remembered + 1):
        assert _beats(_delivered(_key(n)), svc.id) == remembered + 1
    assert _beats(_delivered(_key(0)), svc.id) == remembered + 2
    [(stored,)] = database.query(
        "SELECT recent_deliveries FROM services WHERE id = :i", i=svc.id)
    assert len(stored) == remembered * deliveries.ENTRY_CHARS
    assert stored.startswith(deliveries.entry(_delivered(_key(0))))


def test_two_deliveries_at_once_count_once(database: Any) -> None:
    if database.backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time")
    svc = _service()
    results: list[Any] = []
    start = threading.Barrier(8)

    def deliver() -> None:
        start.wait()
        try:
            results.append(db_services.service_heartbeat(_delivered(_key(3)), [svc.id]))
        except Exception as e:  # noqa: BLE001  (reported below)
            results.append(e)

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [[]] * 8
    assert _count(svc.id) == 1


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
