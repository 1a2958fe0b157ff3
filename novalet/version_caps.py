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


def cap_manifest(manifest: dict[str, str], caps: dict[str, str] | None,
                 scope: set[str] | None = None) -> dict[str, str]:
    """``manifest`` lowered to ``caps``; objects the peer does not know
    are left out. With ``scope``, only the objects named there are the
    caps' business: the others are kept as they are."""
    if caps is None:
        return dict(manifest)
    capped = {}
    for name, version in manifest.items():
        if scope is not None and name not in scope:
            capped[name] = version
            continue
        if name not in caps:
            continue
        capped[name] = min(version, caps[name],
                           key=versionutils.convert_version_to_tuple)
    return capped


def services_at(services: Any, version: int) -> list[str]:
    """The hosts of ``services`` (Service objects) counted at ``version`` by
    ``auto``, each with its last heartbeat: what holds the caps down."""
    return ["%s (last heartbeat %s)" % (
                s.host, s.last_seen_up.isoformat() if s.last_seen_up else "never")
            for s in services if s.version == version and not s.forced_down]


class _ResolvedCaps:
    """Caps resolved from the peers, kept for a while (the ttl ``_resolve``
    returns) and re-resolved on ``invalidate()``.

    No lock is held while the peers are asked: one caller refreshes, the
    others keep the previous caps meanwhile. Before the first answer there
    are no previous caps: callers wait for it up to ``wait_bound()``
    seconds, then speak the oldest release (``_oldest()``).
    """

    def __init__(self, binary: str,
                 on_change: Callable[[str | None], None] | None = None,
                 wait_bound: Callable[[], float] = lambda: CACHE_SECONDS,
                 ) -> None:
        self.binary = binary
        self._on_change = on_change
        self._wait_bound = wait_bound
        self._lock = threading.Lock()
        self._resolved = threading.Event()
        self._refreshing = False
        self._expires = 0.0
        self._rpc_cap: str | None = None
        self._objects: dict[str, str] | None = None
        self._described: str | None = None

    def invalidate(self) -> None:
        """Re-resolve at the next use (SIGHUP, tests)."""
        with self._lock:
            self._expires = 0.0

    def object_versions(self, ctxt: Any) -> dict[str, str] | None:
        self._refresh(ctxt)
        return self._objects

    def _refresh(self, ctxt: Any) -> None:
        if time.monotonic() < self._expires:
            return
        with self._lock:
            if time.monotonic() < self._expires:
                return
            refresh = not self._refreshing
            self._refreshing = True
        if not refresh:
            # Another caller is asking the peers: keep the caps we have.
            if not self._resolved.is_set() and not self._resolved.wait(
                    self._wait_bound()):
                self._fall_back_to_oldest()
            return
        try:
            rpc_cap, objects, described, ttl = self._resolve(ctxt)
        finally:
            with self._lock:
                self._refreshing = False
        self._set(rpc_cap, objects, described, ttl)

    def _fall_back_to_oldest(self) -> None:
        rpc_cap, objects = self._oldest()
        LOG.warning("Version caps for %s are still being resolved after %.0f s; "
                    "speaking objects %s meanwhile", self._label(), self._wait_bound(),
                    self._objects_text(objects))
        with self._lock:
            if not self._resolved.is_set():
                self._rpc_cap, self._objects = rpc_cap, objects

    def _set(self, rpc_cap: str | None, objects: dict[str, str] | None,
             described: str, ttl: float) -> None:
        with self._lock:
            self._expires = time.monotonic() + ttl
            changed = (rpc_cap, objects) != (self._rpc_cap, self._objects)
            log = changed or described != self._described
            self._rpc_cap, self._objects = rpc_cap, objects
            self._described = described
            self._resolved.set()
        if log:
            LOG.info("Version cap for %s: %s (%s)", self._label(),
                     self._caps_text(rpc_cap, objects), described)
        if changed and self._on_change is not None:
            self._on_change(rpc_cap)

    def _label(self) -> str:
        return self.binary

    def _caps_text(self, rpc_cap: str | None, objects: dict[str, str] | None) -> str:
        return "objects %s" % self._objects_text(objects)

    def _objects_text(self, objects: dict[str, str] | None) -> str:
        """``newest`` or ``of release NAME``."""
        raise NotImplementedError

    def _oldest(self) -> tuple[str | None, dict[str, str] | None]:
        raise NotImplementedError

    def _resolve(self, ctxt: Any) -> tuple[str | None, dict[str, str] | None, str, float]:
        raise NotImplementedError


class VersionCaps(_ResolvedCaps):
    """The caps for talking to ``binary`` (novalet's own RPC API and
    objects), resolved from ``setting()``.

    ``minimum_version(ctxt)`` returns the lowest live service version of
    the binary (it is asked only for ``auto``); ``holders(ctxt, version)``,
    when given, names the services at that version (asked only when they
    hold the caps below this release, for the log line); ``rpc_key`` names
    the RPC API in the history (``conductor_rpc`` or ``compute_rpc``).
    """

    def __init__(self, binary: str, setting: Callable[[], str | None],
                 rpc_key: str, minimum_version: Callable[[Any], int],
                 on_change: Callable[[str | None], None] | None = None,
                 refresh_interval: Callable[[], float] = lambda: CACHE_SECONDS,
                 holders: Callable[[Any, int], list[str]] | None = None,
                 wait_bound: Callable[[], float] = lambda: CACHE_SECONDS,
                 ) -> None:
        super().__init__(binary, on_change=on_change, wait_bound=wait_bound)
        self._setting = setting
        self._rpc_key = rpc_key
        self._minimum_version = minimum_version
        self._holders = holders
        self._refresh_interval = refresh_interval

    def rpc_cap(self, ctxt: Any) -> str | None:
        self._refresh(ctxt)
        return self._rpc_cap

    def _caps_text(self, rpc_cap: str | None, objects: dict[str, str] | None) -> str:
        return "RPC %s, objects %s" % (rpc_cap or "newest",
                                       self._objects_text(objects))

    def _objects_text(self, objects: dict[str, str] | None) -> str:
        return "newest" if objects is None else "of release %s" % (
            self._release_of(objects))

    def _oldest(self) -> tuple[str | None, dict[str, str] | None]:
        return self._entry_caps(service_obj.OLDEST_SUPPORTED_SERVICE_VERSION)

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

    def _held_by(self, ctxt: Any, version: int) -> str:
        """``" by HOST, ..."``: the services at ``version`` (for the log)."""
        if self._holders is None:
            return ""
        try:
            names = self._holders(ctxt, version)
        except exception.NovaletException as e:
            return " (its services could not be listed: %s)" % e
        return " (held by %s)" % ", ".join(names) if names else ""

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
            held = (self._held_by(ctxt, minimum)
                    if minimum < service_obj.SERVICE_VERSION else "")
            return (rpc_cap, objects, "auto: oldest %s has service version %d%s"
                    % (self.binary, minimum, held), float(self._refresh_interval()))
        if setting in service_obj.RELEASES:
            rpc_cap, objects = self._entry_caps(service_obj.RELEASES[setting])
            return rpc_cap, objects, "pinned to release %s" % setting, 3600.0
        try:
            candidates = [v for v, e in history.items()
                          if versionutils.is_compatible(e[self._rpc_key], setting)
                          or e[self._rpc_key] == setting]
        except ValueError:  # not a version at all
            candidates = []
        if not candidates:
            raise exception.ConfigurationError(
                reason="[upgrade_levels] %s=%r is not 'auto', a release (%s) "
                       "or a known version" % (
                           self.binary.replace("novalet-", ""), setting,
                           ", ".join(service_obj.RELEASES)))
        _, objects = self._entry_caps(max(candidates))
        return setting, objects, "pinned to RPC %s" % setting, 3600.0


class AppVersionCaps(_ResolvedCaps):
    """The caps for one app's objects sent to ``binary``, from the app's own
    history (``App.releases``, oldest first) and ``setting()``: ``auto``
    (None or "auto") or one of its release names.

    ``app_releases(ctxt)`` returns the ``{app: release}`` each live service
    of the binary records (``Service.get_app_releases``). ``auto`` takes the
    oldest release of the app among them; a service that does not run the
    app cannot serve it whatever is sent, and one that runs a release this
    code does not know runs a newer one: neither lowers the caps.
    """

    def __init__(self, binary: str, app: Any, setting: Callable[[], str | None],
                 app_releases: Callable[[Any], list[dict[str, str]]],
                 refresh_interval: Callable[[], float] = lambda: CACHE_SECONDS,
                 wait_bound: Callable[[], float] = lambda: CACHE_SECONDS,
                 ) -> None:
        super().__init__(binary, wait_bound=wait_bound)
        self.app = app
        self._setting = setting
        self._app_releases = app_releases
        self._refresh_interval = refresh_interval
        self._scope = {name for objects in app.releases.values() for name in objects}

    def scope(self) -> set[str]:
        """The object names the caps govern: every object of the app's
        releases (others, e.g. core objects nested in the app's, are left
        to their own caps)."""
        return self._scope

    def _label(self) -> str:
        return "app %s at %s" % (self.app.name, self.binary)

    def _objects_text(self, objects: dict[str, str] | None) -> str:
        if objects is None:
            return "newest"
        for release, declared in self.app.releases.items():
            if dict(declared) == objects:
                return "of release %s" % release
        return "?"

    def _caps_of(self, index: int) -> dict[str, str] | None:
        names = list(self.app.releases)
        if index >= len(names) - 1:
            return None
        return dict(self.app.releases[names[index]])

    def _oldest(self) -> tuple[str | None, dict[str, str] | None]:
        return None, self._caps_of(0)

    def _resolve(self, ctxt: Any) -> tuple[str | None, dict[str, str] | None, str, float]:
        setting = self._setting() or "auto"
        if setting != "auto":
            index = self.app.release_index(setting)
            if index is None:
                raise exception.ConfigurationError(
                    reason="[upgrade_levels] apps = %s:%s: the app declares "
                           "releases %s" % (self.app.name, setting,
                                            ", ".join(self.app.releases) or "none"))
            return None, self._caps_of(index), "pinned to release %s" % setting, 3600.0
        ttl = float(self._refresh_interval())
        try:
            recorded = self._app_releases(ctxt)
        except exception.RPCUnavailable as e:
            return (None, self._caps_of(0),
                    "auto: peers unreachable (%s)" % e, 5.0)
        except exception.DispatchRefused as e:
            # Conductors older than release 3 record no apps (nor serve any).
            return (None, None, "auto: the %s does not report app releases (%s)"
                    % (self.binary, e), ttl)
        releases = [r[self.app.name] for r in recorded
                    if isinstance(r, dict) and self.app.name in r]
        known = [i for i in map(self.app.release_index, releases) if i is not None]
        if not known:
            return (None, None, "auto: no %s runs a release of %s this code knows"
                    % (self.binary, self.app.name) if releases else
                    "auto: no %s runs %s" % (self.binary, self.app.name), ttl)
        oldest = min(known)
        return (None, self._caps_of(oldest), "auto: oldest %s runs %s release %s"
                % (self.binary, self.app.name, list(self.app.releases)[oldest]), ttl)
