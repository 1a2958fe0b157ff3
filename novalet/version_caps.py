"""Version caps for rolling upgrades: what to send to the services of one
binary while releases are mixed.

``[upgrade_levels] conductor`` / ``compute`` take:

* ``auto`` (default): the oldest live service of that binary decides; its
  ``Service.version`` maps, through ``SERVICE_VERSION_HISTORY``, to the RPC
  API version and the object versions it understands. Cached for
  ``CACHE_SECONDS`` and re-read on ``invalidate()`` (SIGHUP).
* a release name (``"1"``, ``"2"``): that release's versions;
* an RPC API version (``"1.0"``): that cap, with the objects of the newest
  release speaking at most that version.

No cap (``None``) means "send the newest".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_log import log as logging
from oslo_utils import versionutils

from novalet import exception
from novalet.objects import service as service_obj

LOG = logging.getLogger(__name__)

CACHE_SECONDS = 60.0


def cap_manifest(manifest: dict[str, str],
                 caps: dict[str, str] | None) -> dict[str, str]:
    """``manifest`` lowered to ``caps``; objects the peer does not know
    are left out."""
    if caps is None:
        return dict(manifest)
    capped = {}
    for name, version in manifest.items():
        if name not in caps:
            continue
        capped[name] = min(version, caps[name],
                           key=versionutils.convert_version_to_tuple)
    return capped


class VersionCaps:
    """The caps for talking to ``binary``, resolved from ``setting()``.

    ``minimum_version(ctxt)`` returns the lowest live service version of
    the binary (it is asked only for ``auto``); ``rpc_key`` names the RPC
    API in the history (``conductor_rpc`` or ``compute_rpc``).
    """

    def __init__(self, binary: str, setting: Callable[[], str | None],
                 rpc_key: str, minimum_version: Callable[[Any], int],
                 on_change: Callable[[str | None], None] | None = None,
                 refresh_interval: Callable[[], float] = lambda: CACHE_SECONDS,
                 ) -> None:
        self.binary = binary
        self._setting = setting
        self._rpc_key = rpc_key
        self._minimum_version = minimum_version
        self._on_change = on_change
        self._refresh_interval = refresh_interval
        self._lock = threading.Lock()
        self._expires = 0.0
        self._rpc_cap: str | None = None
        self._objects: dict[str, str] | None = None
        self._described: str | None = None

    def invalidate(self) -> None:
        """Re-resolve at the next use (SIGHUP, tests)."""
        with self._lock:
            self._expires = 0.0

    def rpc_cap(self, ctxt: Any) -> str | None:
        self._refresh(ctxt)
        return self._rpc_cap

    def object_versions(self, ctxt: Any) -> dict[str, str] | None:
        self._refresh(ctxt)
        return self._objects

    def _refresh(self, ctxt: Any) -> None:
        if time.monotonic() < self._expires:
            return
        with self._lock:
            if time.monotonic() < self._expires:
                return
            rpc_cap, objects, described, ttl = self._resolve(ctxt)
            self._expires = time.monotonic() + ttl
            changed = (rpc_cap, objects) != (self._rpc_cap, self._objects)
            self._rpc_cap, self._objects = rpc_cap, objects
            if changed or described != self._described:
                LOG.info("Version cap for %s: RPC %s, objects %s (%s)",
                         self.binary, rpc_cap or "newest",
                         "newest" if objects is None else "of release %s"
                         % self._release_of(objects), described)
            self._described = described
        if changed and self._on_change is not None:
            self._on_change(rpc_cap)

    @staticmethod
    def _release_of(objects: dict[str, str]) -> str:
        for entry in service_obj.SERVICE_VERSION_HISTORY.values():
            if entry["objects"] == objects:
                return str(entry["release"])
        return "?"

    def _entry_caps(self, version: int) -> tuple[str | None, dict[str, str] | None]:
        if version >= service_obj.SERVICE_VERSION:
            return None, None
        entry = service_obj.SERVICE_VERSION_HISTORY[version]
        return entry[self._rpc_key], dict(entry["objects"])

    def _resolve(self, ctxt: Any) -> tuple[str | None, dict[str, str] | None, str, float]:
        setting = self._setting() or "auto"
        history = service_obj.SERVICE_VERSION_HISTORY
        if setting == "auto":
            try:
                minimum = self._minimum_version(ctxt)
            except exception.RPCUnavailable as e:
                # Unknown: speak the oldest supported release, ask again soon.
                oldest = service_obj.OLDEST_SUPPORTED_SERVICE_VERSION
                rpc_cap, objects = self._entry_caps(oldest)
                return rpc_cap, objects, "auto: peers unreachable (%s)" % e, 5.0
            if not minimum:
                return None, None, "auto: no %s registered" % self.binary, 5.0
            minimum = max(minimum, service_obj.OLDEST_SUPPORTED_SERVICE_VERSION)
            rpc_cap, objects = self._entry_caps(minimum)
            return (rpc_cap, objects, "auto: oldest %s has service version %d"
                    % (self.binary, minimum), float(self._refresh_interval()))
        if setting in service_obj.RELEASES:
            rpc_cap, objects = self._entry_caps(service_obj.RELEASES[setting])
            return rpc_cap, objects, "pinned to release %s" % setting, 3600.0
        candidates = [v for v, e in history.items()
                      if versionutils.is_compatible(e[self._rpc_key], setting)
                      or e[self._rpc_key] == setting]
        if not candidates:
            raise exception.ConfigurationError(
                reason="[upgrade_levels] %s=%r is not 'auto', a release (%s) "
                       "or a known version" % (
                           self.binary.replace("novalet-", ""), setting,
                           ", ".join(service_obj.RELEASES)))
        _, objects = self._entry_caps(max(candidates))
        return setting, objects, "pinned to RPC %s" % setting, 3600.0
