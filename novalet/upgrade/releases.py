"""The core's releases: what each release of novalet speaks.

One literal entry per release, oldest first. Each names the release's
service version (what its services write into ``Service.version``), the
newest conductor and compute RPC API versions it serves and sends, and
the version of every object it has. ``[upgrade_levels] conductor`` and
``compute`` resolve to one of these entries (``novalet.upgrade.caps``), and
the core app's ``App.releases`` are their ``objects``.

Adding a release: copy the newest entry, name it, raise what changed (an
object's ``VERSION``, an RPC API's version: the comment above each says
what the release brought), bump ``SERVICE_VERSION``.
``tests/unit/upgrade/test_releases.py`` checks that the service versions
have no gaps, that nothing goes down from one release to the next, and that
the newest entry names this code's RPC API and object versions. Dropping a
release: raise ``OLDEST_SUPPORTED_SERVICE_VERSION`` (and remove the shims
that name it), then its entry.

This module imports nothing of novalet: the objects read their service
version here.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Mapping
from typing import Any

#: Release name -> service version, RPC API versions, object versions.
RELEASE_MAPPING: dict[str, dict[str, Any]] = {
    # Release 1 (1.0.0): the first.
    "1": {
        "service_version": 1,
        "conductor_rpc": "1.0",
        "compute_rpc": "1.0",
        "objects": {
            "ComputeNode": "1.0",
            "ComputeNodeList": "1.0",
            "Instance": "1.0",
            "InstanceList": "1.0",
            "Migration": "1.0",
            "MigrationList": "1.0",
            "Service": "1.0",
            "ServiceList": "1.0",
        },
    },
    # Release 2 (2.0.0): ComputeNode 1.1 (pci_device_pools, typed metrics),
    # Service 1.1 (started_at), conductor RPC 1.1 (object_action takes the
    # caller's manifest), compute RPC 1.1 (clean_shutdown).
    "2": {
        "service_version": 2,
        "conductor_rpc": "1.1",
        "compute_rpc": "1.1",
        "objects": {
            "ComputeNode": "1.1",
            "ComputeNodeList": "1.1",
            "Instance": "1.0",
            "InstanceList": "1.0",
            "Migration": "1.0",
            "MigrationList": "1.0",
            "MonitorMetric": "1.0",
            "MonitorMetricList": "1.0",
            "PciDevicePool": "1.0",
            "PciDevicePoolList": "1.0",
            "Service": "1.1",
            "ServiceList": "1.1",
        },
    },
    # Release 3: Migration 1.1 (status "completed"), Service 1.2
    # (app_releases, get_app_releases()), conductor RPC 1.2 (apps' class
    # methods).
    "3": {
        "service_version": 3,
        "conductor_rpc": "1.2",
        "compute_rpc": "1.1",
        "objects": {
            "ComputeNode": "1.1",
            "ComputeNodeList": "1.1",
            "Instance": "1.0",
            "InstanceList": "1.0",
            "Migration": "1.1",
            "MigrationList": "1.1",
            "MonitorMetric": "1.0",
            "MonitorMetricList": "1.0",
            "PciDevicePool": "1.0",
            "PciDevicePoolList": "1.0",
            "Service": "1.2",
            "ServiceList": "1.2",
        },
    },
    # Release 4: a signed call's reply is authenticated (sealed). No object
    # or RPC API version changed: the service version is how a caller
    # knows that its peers seal their replies, so that with [auth]
    # require_reply_auth false it still refuses an unsealed reply once the
    # caps say the roll from release 3 is over (SEALED_REPLIES).
    "4": {
        "service_version": 4,
        "conductor_rpc": "1.2",
        "compute_rpc": "1.1",
        "objects": {
            "ComputeNode": "1.1",
            "ComputeNodeList": "1.1",
            "Instance": "1.0",
            "InstanceList": "1.0",
            "Migration": "1.1",
            "MigrationList": "1.1",
            "MonitorMetric": "1.0",
            "MonitorMetricList": "1.0",
            "PciDevicePool": "1.0",
            "PciDevicePoolList": "1.0",
            "Service": "1.2",
            "ServiceList": "1.2",
        },
    },
}

#: The version of this code as a service: the newest entry's.
SERVICE_VERSION = 4

#: The first service version whose services seal the replies to signed
#: calls (``novalet.auth.signing``): an unsealed reply from a peer at this
#: version or later is forged.
SEALED_REPLIES = 4

#: Service versions that changed what a service does without changing an
#: object or RPC API version: what a peer learns from each. Every other
#: release raises a version.
BEHAVIOUR_CHANGES: Mapping[int, str] = types.MappingProxyType({
    SEALED_REPLIES: "seals its replies to signed calls",
})

#: The lowest ``Service.version`` this release works with: a live service
#: below it must be upgraded first (``novalet-status upgrade check`` fails,
#: services refuse to start).
OLDEST_SUPPORTED_SERVICE_VERSION = 1

#: The RPC APIs an entry names, by the key it names them with.
RPC_APIS = ("conductor_rpc", "compute_rpc")


@dataclasses.dataclass(frozen=True)
class Release:
    """One release of one app, the shape every app's history takes here:
    its name and its objects' versions; for the core also its service
    version and RPC API versions (``{"conductor_rpc": "1.2", ...}``)."""

    name: str
    objects: Mapping[str, str]
    service_version: int | None = None
    rpc: Mapping[str, str] = dataclasses.field(default_factory=dict)


#: Service version -> its entry, with its release name under ``release``
#: (derived from ``RELEASE_MAPPING``; read-only).
SERVICE_VERSION_HISTORY: Mapping[int, Mapping[str, Any]] = types.MappingProxyType({
    entry["service_version"]: types.MappingProxyType(dict(entry, release=name))
    for name, entry in RELEASE_MAPPING.items()})

#: Release name -> its service version.
RELEASES: Mapping[str, int] = types.MappingProxyType({
    name: entry["service_version"] for name, entry in RELEASE_MAPPING.items()})


def core_releases() -> tuple[Release, ...]:
    """The core's supported releases, oldest first (the first is the release
    of ``OLDEST_SUPPORTED_SERVICE_VERSION``, the last this code's)."""
    return tuple(
        Release(name, types.MappingProxyType(dict(entry["objects"])),
                entry["service_version"],
                types.MappingProxyType({api: entry[api] for api in RPC_APIS}))
        for name, entry in RELEASE_MAPPING.items()
        if entry["service_version"] >= OLDEST_SUPPORTED_SERVICE_VERSION)


def object_versions_by_release() -> dict[str, Mapping[str, str]]:
    """``{release: {object: version}}``, oldest first: the core app's
    ``App.releases``."""
    return {name: types.MappingProxyType(dict(entry["objects"]))
            for name, entry in RELEASE_MAPPING.items()}


def app_releases(releases: Mapping[str, Mapping[str, str]]) -> tuple[Release, ...]:
    """An app's ``App.releases`` in the shape of the core's."""
    return tuple(Release(name, types.MappingProxyType(dict(objects)))
                 for name, objects in releases.items())


def release_of_service_version(version: int) -> str | None:
    """The name of the release whose services write ``version``; None for
    a version no release has."""
    entry = SERVICE_VERSION_HISTORY.get(version)
    return None if entry is None else str(entry["release"])
