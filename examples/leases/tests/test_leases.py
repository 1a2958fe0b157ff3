"""The leases app's tests: novalet.testing's fixtures only."""

from __future__ import annotations

import pytest

from novalet import context, exception, testing

#: Pinned fingerprints: a change to an object's fields or remotable methods
#: fails here until its version is bumped (and this entry updated).
OBJECT_DATA = {
    "Lease": "1.2-045513ace895139eb09ae9cf285c8d3d",
    "LeaseList": "1.2-7b4161a8bc255a280e2264ee4198f27c",
    "Subnet": "1.0-7ca1f5f182ed963a0f22a958b2eebf2c",
}


def _lease(ctxt, ip="10.0.0.5", client_id="c-1", host=None):
    from leases import objects

    return objects.Lease(ctxt, ip=ip, mac="52:54:00:12:34:56", hostname="web1",
                         client_id=client_id, expires_at=1000, host=host,
                         subnet=objects.Subnet(cidr="10.0.0.0/24", gateway="10.0.0.1"))


def test_hand_out_find_renew_and_list(novalet_path, novalet_registry):
    from leases import objects

    ctxt = context.get_admin_context()
    lease = _lease(ctxt)
    lease.create()
    assert lease.id and not lease.obj_what_changed()
    _lease(ctxt, ip="10.0.0.4", client_id=None).create()
    with pytest.raises(exception.Conflict, match="10.0.0.5 is leased already"):
        _lease(ctxt).create()
    assert lease.renew(2000, 600) == 2600 and lease.expires_at == 2600
    found = objects.Lease.get_by_ip(ctxt, "10.0.0.5")
    assert type(found) is objects.Lease and type(found.subnet) is objects.Subnet
    assert (found.expires_at, found.client_id, str(found.subnet.gateway)) == (
        2600, "c-1", "10.0.0.1")
    listed = objects.LeaseList.get_by_subnet(ctxt, "10.0.0.0/24")
    assert [str(x.ip) for x in listed] == ["10.0.0.4", "10.0.0.5"]
    with pytest.raises(exception.NotFound):
        objects.Lease.get_by_ip(ctxt, "10.0.0.9")


def test_an_agent_without_database_goes_through_the_conductor(novalet_path,
                                                              novalet_no_db):
    ctxt = context.get_admin_context()
    lease = _lease(ctxt, ip="10.0.0.7")
    if novalet_path == "local":
        with pytest.raises(exception.DBNotAllowed):
            lease.create()
        return
    lease.create()
    assert lease.renew(10, 5) == 15


def test_object_fingerprints(novalet_registry):
    testing.check_object_data("leases", OBJECT_DATA)


def test_the_newest_release_names_the_objects_as_they_are(novalet_registry):
    testing.check_releases("leases")


def test_release_1_peers_get_lease_1_0(novalet_registry):
    from leases import objects

    lease = _lease(context.get_admin_context())
    old = lease.obj_to_primitive(target_version="1.0")
    assert old["novalet_object.version"] == "1.0"
    assert old["novalet_object.namespace"] == "leases"
    assert "client_id" not in old["novalet_object.data"]
    assert old["novalet_object.data"]["subnet"]["novalet_object.version"] == "1.0"
    listed = objects.LeaseList(objects=[lease]).obj_to_primitive(target_version="1.0")
    item = listed["novalet_object.data"]["objects"][0]
    assert item["novalet_object.version"] == "1.0"
    assert "client_id" not in item["novalet_object.data"]


def test_release_2_peers_get_no_host(novalet_registry):
    lease = _lease(context.get_admin_context(), host="host-a")
    assert "host" not in lease.obj_to_primitive(
        target_version="1.1")["novalet_object.data"]


def test_host_b_cannot_touch_host_a_leases(novalet_path, novalet_registry,
                                          novalet_sign_as):
    """The leases table is host-scoped: an agent signed as host-b (through
    the conductor, ``rpc``; on the ``local`` path, a context carrying that
    principal) creates, renews and releases its own leases only."""
    from leases import objects

    from novalet.auth import principal

    if novalet_path == "inprocess":
        pytest.skip("an in-process conductor sees no signature: a local caller")
    admin = context.get_admin_context()
    theirs = _lease(admin, ip="10.0.0.10", host="host-a")
    theirs.create()
    ctxt = context.get_admin_context()
    if novalet_path == "rpc":
        novalet_sign_as("host-b")  # says admin: believed for nothing
    else:
        ctxt.set_principal(principal.host("host-b"))

    def rows():
        return [(x.ip, x.host, x.expires_at)
                for x in objects.LeaseList.get_by_subnet(admin, "10.0.0.0/24")]

    before = rows()
    mine = theirs.obj_clone()
    mine._context = ctxt
    for action in [_lease(ctxt, ip="10.0.0.11", host="host-a").create,
                   _lease(ctxt, ip="10.0.0.12", host=None).create,
                   lambda: mine.renew(5000, 600),
                   mine.destroy]:
        with pytest.raises(exception.Forbidden, match="host host-b may not"):
            action()
    assert rows() == before
    own = _lease(ctxt, ip="10.0.0.13", host="host-b")
    own.create()
    assert own.renew(3000, 60) == 3060
    own.destroy()
    assert rows() == before
