"""The leases app on what novalet's base gives an app: its own errors
cross as themselves, its list is an ObjectListBase, and its remotable
methods leave nothing pending; on every path (local, in-process, RPC)."""

from __future__ import annotations

import pytest

from novalet import context, testing
from novalet.objects import base


def _lease(ctxt, ip):
    from leases import objects

    return objects.Lease(ctxt, ip=ip, mac="52:54:00:12:34:56", hostname="web1",
                         client_id="c-1", expires_at=1000,
                         subnet=objects.Subnet(cidr="10.0.0.0/24", gateway="10.0.0.1"))


def test_the_apps_errors_arrive_as_themselves(novalet_path, novalet_registry):
    from leases import exception, objects

    ctxt = context.get_admin_context()
    _lease(ctxt, "10.0.0.5").create()
    with pytest.raises(exception.IPAlreadyLeased) as taken:
        _lease(ctxt, "10.0.0.5").create()
    # Through a conductor, oslo.messaging's subclass of the class itself.
    assert type(taken.value).__name__ == "IPAlreadyLeased" + (
        "" if novalet_path == "local" else "_Remote")
    assert (taken.value.message, taken.value.kwargs) == (
        "10.0.0.5 is leased already", {"ip": "10.0.0.5"})
    with pytest.raises(exception.LeaseNotFound) as missing:
        objects.Lease.get_by_ip(ctxt, "10.0.0.9")
    assert missing.value.kwargs == {"ip": "10.0.0.9"}


def test_its_list_and_nothing_left_pending(novalet_path, novalet_registry):
    from leases import objects

    ctxt = context.get_admin_context()
    lease = _lease(ctxt, "10.0.0.7")
    lease.create()
    testing.check_no_pending_changes(lease)
    lease.renew(2000, 60)
    testing.check_no_pending_changes(lease)
    _lease(ctxt, "10.0.0.6").create()
    listed = objects.LeaseList.get_by_subnet(ctxt, "10.0.0.0/24")
    assert isinstance(listed, base.ObjectListBase) and type(listed) is objects.LeaseList
    assert [type(x) for x in listed] == [objects.Lease, objects.Lease]
    assert [(str(x.ip), x.expires_at) for x in listed] == [
        ("10.0.0.6", 1000), ("10.0.0.7", 2060)]
    testing.check_no_pending_changes(listed)
    found = objects.Lease.get_by_ip(ctxt, "10.0.0.7")
    assert (found.id, str(found.subnet.cidr)) == (lease.id, "10.0.0.0/24")
    testing.check_no_pending_changes(found)
