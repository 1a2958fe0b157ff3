"""Rolling upgrades: every app's releases, the version caps, the negotiator.

* ``releases``: the core's release map, one literal entry per release
  (service version, conductor and compute RPC API versions, object
  versions), ``SERVICE_VERSION`` and ``OLDEST_SUPPORTED_SERVICE_VERSION``
  (read it there, at the time of use: it is the policy tests change);
  ``Release``, the one shape of every app's history (``release_map(app)``).
* ``caps``: ``VersionCaps``, what to send to the services of one binary for
  one namespace (the core's objects and RPC API, or an app's objects).
* ``negotiator``: ``Negotiator``, which lowers what a caller sends to its
  conductors to the caps and reads what comes back; the indirection plugins
  give it their conductor client (``for_conductors``).

This package sits below the objects, the indirection plugins, the conductor
and the RPC layer: it imports none of them (they import it).
"""

from __future__ import annotations

from novalet.upgrade.caps import (
    AppReleases,
    ServiceVersions,
    VersionCaps,
    app_caps,
    cap_manifest,
    core_caps,
    release_map,
    services_at,
)
from novalet.upgrade.negotiator import (
    ConductorClient,
    Negotiator,
    ObjectVersions,
    for_conductors,
)
from novalet.upgrade.releases import (
    RELEASE_MAPPING,
    RELEASES,
    SERVICE_VERSION,
    SERVICE_VERSION_HISTORY,
    Release,
    core_releases,
)

__all__ = [
    "RELEASES", "RELEASE_MAPPING",
    "SERVICE_VERSION", "SERVICE_VERSION_HISTORY", "AppReleases", "ConductorClient",
    "Negotiator", "ObjectVersions",
    "Release", "ServiceVersions", "VersionCaps", "app_caps", "cap_manifest",
    "core_caps", "core_releases",
    "for_conductors", "release_map", "services_at",
]
