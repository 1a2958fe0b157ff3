"""Fingerprints of every object: a field or remotable signature change
without a version bump fails here. When you bump a version on purpose, put
the new fingerprint in ``object_data`` (and teach ``obj_make_compatible``
the way back)."""

from __future__ import annotations

from oslo_versionedobjects import fixture

from novalet.objects import codec

object_data = {
    "ComputeNode": "1.1-997b789b3e67cc9385875369dc426a76",
    "ComputeNodeList": "1.1-320d91e8e2f4fe54b8a7e32ab0964610",
    "Instance": "1.0-c80b56fd479536d398ae848f995c0091",
    "InstanceList": "1.0-d7dc2c281eb21f5567f8da74a051ad54",
    "Migration": "1.1-bd7f2e77ad03d54bc6fb9bae994251a9",
    "MigrationList": "1.1-4af80c209e87e6ce3e634d2788102b51",
    "MonitorMetric": "1.0-1b102f1fbed483c7d454d56ad0577d88",
    "MonitorMetricList": "1.0-15ecf022a68ddbb8c2a6739cfc9f8f5e",
    "PciDevicePool": "1.0-a0ff2b6540ed752444d3e6bfa359d657",
    "PciDevicePoolList": "1.0-15ecf022a68ddbb8c2a6739cfc9f8f5e",
    # The hash holds the default of Service.version, SERVICE_VERSION: it
    # changes with every release, the wire form does not (release 4 raised
    # SERVICE_VERSION to 4 with Service still at 1.2; release 3's hash was
    # 1.2-8d406f33f80a1aa4e7dec13787ea08c0). The newest release of
    # novalet.upgrade.releases names these versions
    # (tests/unit/upgrade/test_releases.py).
    "Service": "1.2-2de05ce5b13910fa834a0e13d2639a66",  # + app_releases
    "ServiceList": "1.2-9483e0afaf77c78640f5ce2bed2cb6f6",
}

#: Release 1's fingerprints, for the record (its objects are all 1.0):
#: ComputeNode 1.0-192fc9c87d11b97c819bbeedb7be7ba2,
#: ComputeNodeList 1.0-5fad9f718d8cd8bedb62639c25f95ee9,
#: Service 1.0-a9356edfd1e510fc97d0b09240dd87fa,
#: ServiceList 1.0-9cf2c90f58e75c014934c338eddb2953.
#: Release 2's: Migration 1.0-0e527ad824bc8cd9c57a12bd5472949b,
#: MigrationList 1.0-6da9dbb9272ba96f8adc3fa2931f69be,
#: Service 1.1-99e81ef635b981f705b29f8138fa5f30,
#: ServiceList 1.1-6b110419955a86593bb797d491a240b3.


def test_versions_match_fingerprints():
    checker = fixture.ObjectVersionChecker(codec.classes("novalet"))
    expected, actual = checker.test_hashes(object_data)
    assert expected == actual, (
        "Fields or remotable methods changed without a version bump: "
        "bump VERSION, add the changelog comment and obj_make_compatible, "
        "then update object_data")


def test_every_registered_object_is_listed():
    assert set(codec.classes("novalet")) == set(object_data)

