"""The leases app's tests: novalet.testing's fixtures only."""

from __future__ import annotations

import pytest

from novalet import context, exception, testing

#: Pinned fingerprints: a change to an object's fields or remotable methods
#: fails here until its version is bumped (and this entry updated).
OBJECT_DATA = {
    "Lease": "1.1-1fe85f4650cbbd12c348014534dd0138",
    "LeaseList": "1.1-040783ba3c736da6fb2bee5589f21ab5",
    "Subnet": "1.0-7ca1f5f182ed963a0f22a958b2eebf2c",
}


def _lease(ctxt, ip="10.0.0.5", client_id="c-1"):
    from leases import objects

    return objects.Lease(ctxt, ip=ip, mac="52:54:00:12:34:56", hostname="web1",
                         client_id=client_id, expires_at=1000,
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
