"""Fingerprints of every object: a field or remotable signature change
without a version bump fails here. When you bump a version on purpose, put
the new fingerprint in ``object_data`` (and teach ``obj_make_compatible``
the way back)."""

from __future__ import annotations

from oslo_versionedobjects import fixture

from novalet.objects import base

object_data = {
    "ComputeNode": "1.0-192fc9c87d11b97c819bbeedb7be7ba2",
    "ComputeNodeList": "1.0-5fad9f718d8cd8bedb62639c25f95ee9",
    "Instance": "1.0-c80b56fd479536d398ae848f995c0091",
    "InstanceList": "1.0-d7dc2c281eb21f5567f8da74a051ad54",
    "Migration": "1.0-0e527ad824bc8cd9c57a12bd5472949b",
    "MigrationList": "1.0-6da9dbb9272ba96f8adc3fa2931f69be",
    "Service": "1.0-a9356edfd1e510fc97d0b09240dd87fa",
    "ServiceList": "1.0-9cf2c90f58e75c014934c338eddb2953",
}


def test_versions_match_fingerprints():
    checker = fixture.ObjectVersionChecker(
        base.NovaletObjectRegistry.obj_classes())
    expected, actual = checker.test_hashes(object_data)
    assert expected == actual, (
        "Fields or remotable methods changed without a version bump: "
        "bump VERSION, add the changelog comment and obj_make_compatible, "
        "then update object_data")


def test_every_registered_object_is_listed():
    assert set(base.NovaletObjectRegistry.obj_classes()) == set(object_data)
