"""Version caps for rolling upgrades: what to send to the services of one
binary while releases are mixed, for one app's objects (the core's also
for its RPC API).

One class, ``VersionCaps``, keyed by ``(binary, namespace)``, over the
namespace's release map (``release_map(app)``, oldest first). Its setting
(``[upgrade_levels] conductor`` / ``compute`` for the core, an app's entry
of ``[upgrade_levels] apps``) is:

* ``auto`` (default): the oldest release the live peers run decides, as
  ``peers`` reads it: for the core, the lowest ``Service.version`` of the
  binary (``ServiceVersions``); for an app, the oldest release of the app
  its services record (``AppReleases``). Kept for the refresh interval and
  re-read on ``invalidate()`` (SIGHUP); while the peers do not answer,
  the oldest release, asked again after 5 s.
* a release name: that release's versions;
* for the core, an RPC API version (``"1.0"``): that cap, with the objects
  of the newest release speaking at most that version.

No cap (``None``) means "send the newest".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from oslo_log import log as logging
from oslo_utils import versionutils

from novalet import app as app_module
from novalet import exception
from novalet.upgrade import releases as releases_module
from novalet.upgrade.releases import Release

LOG = logging.getLogger(__name__)

CACHE_SECONDS = 60.0

#: What ``auto`` found: the index of the oldest release the peers run in the
#: release map (None: no caps), a description for the log, and how long it
#: holds (None: the refresh interval).
Found = tuple[int | None, str, float | None]


def release_map(app: Any) -> tuple[Release, ...]:
    """``app``'s releases in the one shape, oldest first: the core's from
    its release map (with service and RPC API versions), another app's from
    its ``App.releases``."""
    if app.name == app_module.CORE:
        return releases_module.core_releases()
    return releases_module.app_releases(app.releases)


def cap_manifest(manifest: Mapping[str, str], caps: Mapping[str, str] | None,
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


class Peers(Protocol):
    """How ``auto`` reads the release the peers run."""

    def oldest(self, ctxt: Any, caps: VersionCaps) -> Found:
        """The oldest release among the live peers of ``caps.binary``;
        raises ``RPCUnavailable`` when they cannot be asked."""


class ServiceVersions:
    """The core's ``auto``: the lowest ``Service.version`` among the live
    services of the binary (``minimum_version(ctxt)``; 0: none).
    ``holders(ctxt, version)``, when given, names the services at that
    version (asked only when they hold the caps below this release, for
    the log line)."""

    def __init__(self, minimum_version: Callable[[Any], int],
                 holders: Callable[[Any, int], list[str]] | None = None) -> None:
        self.minimum_version = minimum_version
        self.holders = holders

    def oldest(self, ctxt: Any, caps: VersionCaps) -> Found:
        minimum = self.minimum_version(ctxt)
        if not minimum:
            return None, "auto: no %s registered" % caps.binary, 5.0
        index = 0
        for i, release in enumerate(caps.releases):
            if release.service_version is not None and (
                    release.service_version <= minimum):
                index = i
        minimum = max(minimum, releases_module.OLDEST_SUPPORTED_SERVICE_VERSION)
        held = (self._held_by(ctxt, minimum)
                if minimum < releases_module.SERVICE_VERSION else "")
        return index, "auto: oldest %s has service version %d%s" % (
            caps.binary, minimum, held), None

    def _held_by(self, ctxt: Any, version: int) -> str:
        """``" (held by HOST, ...)"``: the services at ``version``."""
        if self.holders is None:
            return ""
        try:
            names = self.holders(ctxt, version)
        except exception.NovaletException as e:
            return " (its services could not be listed: %s)" % e
        return " (held by %s)" % ", ".join(names) if names else ""


class AppReleases:
    """An app's ``auto``: ``app_releases(ctxt)`` returns the ``{app:
    release}`` each live service of the binary records
    (``Service.get_app_releases``); the oldest release of the app among them
    decides. A service that does not run the app cannot serve it whatever
    is sent, and one that runs a release this code does not know runs a
    newer one: neither lowers the caps. Services older than release 3
    record no apps (nor serve any): no caps."""

    def __init__(self, app_releases: Callable[[Any], list[dict[str, str]]]) -> None:
        self.app_releases = app_releases

    def oldest(self, ctxt: Any, caps: VersionCaps) -> Found:
        try:
            recorded = self.app_releases(ctxt)
        except exception.DispatchRefused as e:
            return (None, "auto: the %s does not report app releases (%s)"
                    % (caps.binary, e), None)
        names = [release.name for release in caps.releases]
        running = [r[caps.namespace] for r in recorded
                   if isinstance(r, dict) and caps.namespace in r]
        known = [names.index(r) for r in running if r in names]
        if not known:
            return (None, "auto: no %s runs a release of %s this code knows"
                    % (caps.binary, caps.namespace) if running else
                    "auto: no %s runs %s" % (caps.binary, caps.namespace), None)
        oldest = min(known)
        return oldest, "auto: oldest %s runs %s release %s" % (
            caps.binary, caps.namespace, names[oldest]), None


class VersionCaps:
    """The caps for sending the objects of ``namespace`` (and with
    ``rpc_api``, the core's RPC API of that key in its release map) to the
    services of ``binary``, from ``releases`` (the namespace's release map)
    and ``setting()``; ``peers`` reads what ``auto`` follows.

    No lock is held while the peers are asked: one caller refreshes, the
    others keep the previous caps meanwhile. Before the first answer there
    are no previous caps: callers wait for it up to ``wait_bound()``
    seconds, then speak the oldest release.
    """

    def __init__(self, binary: str, namespace: str, releases: Sequence[Release],
                 setting: Callable[[], str | None], peers: Peers, *,
                 rpc_api: str | None = None,
                 on_change: Callable[[str | None], None] | None = None,
                 refresh_interval: Callable[[], float] = lambda: CACHE_SECONDS,
                 wait_bound: Callable[[], float] = lambda: CACHE_SECONDS,
                 ) -> None:
        self.binary = binary
        self.namespace = namespace
        self.releases = tuple(releases)
        self.rpc_api = rpc_api
        self.peers = peers
        self._setting = setting
        self._on_change = on_change
        self._refresh_interval = refresh_interval
        self._wait_bound = wait_bound
        # The core's caps govern every object of a core manifest; an app's
        # only its own (core objects nested in the app's have their own).
        self._scope = None if namespace == app_module.CORE else {
            name for release in self.releases for name in release.objects}
        self._lock = threading.Lock()
        self._resolved = threading.Event()
        self._refreshing = False
        self._expires = 0.0
        self._rpc_cap: str | None = None
        self._objects: dict[str, str] | None = None
        self._described: str | None = None
        self._oldest: int | None = None

    def invalidate(self) -> None:
        """Re-resolve at the next use (SIGHUP, tests)."""
        with self._lock:
            self._expires = 0.0

    def rpc_cap(self, ctxt: Any) -> str | None:
        """The RPC API version cap (None: the newest)."""
        self._refresh(ctxt)
        return self._rpc_cap

    def object_versions(self, ctxt: Any) -> dict[str, str] | None:
        """``{object: version}`` to send at most (None: the newest)."""
        self._refresh(ctxt)
        return self._objects

    def oldest_service_version(self) -> int | None:
        """The service version of the oldest release the peers run, as
        last resolved (no refresh): ``auto``'s finding or the pinned
        release. None while it is not known: not resolved yet, no peer
        registered, the peers unreachable, a pin to an RPC API version
        (which several releases speak), or an app's caps."""
        with self._lock:
            index = self._oldest
        if index is None:
            return None
        return self.releases[index].service_version

    def peers_seal_replies(self) -> bool:
        """Whether every peer is known to seal its replies to signed calls
        (its release at ``SEALED_REPLIES`` or later): the RPC client's
        ``expect_sealed_replies``."""
        version = self.oldest_service_version()
        return version is not None and version >= releases_module.SEALED_REPLIES

    def scope(self) -> set[str] | None:
        """The object names the caps govern (None: every object of the
        manifest): for an app, every object of its releases."""
        return self._scope

    def release_of(self, objects: Mapping[str, str]) -> str:
        """The name of the release whose objects are ``objects`` ("?")."""
        for release in self.releases:
            if dict(release.objects) == objects:
                return release.name
        return "?"

    def _caps_of(self, index: int) -> tuple[str | None, dict[str, str] | None]:
        """The caps of the release at ``index`` (none for this code's)."""
        if index >= len(self.releases) - 1:
            return None, None
        release = self.releases[index]
        return (release.rpc[self.rpc_api] if self.rpc_api else None,
                dict(release.objects))

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
            rpc_cap, objects, described, ttl, oldest = self._resolve(ctxt)
        finally:
            with self._lock:
                self._refreshing = False
        self._set(rpc_cap, objects, described, ttl, oldest)

    def _fall_back_to_oldest(self) -> None:
        rpc_cap, objects = self._caps_of(0)
        LOG.warning("Version caps for %s are still being resolved after %.0f s; "
                    "speaking objects %s meanwhile", self._label(), self._wait_bound(),
                    self._objects_text(objects))
        with self._lock:
            if not self._resolved.is_set():
                self._rpc_cap, self._objects = rpc_cap, objects

    def _set(self, rpc_cap: str | None, objects: dict[str, str] | None,
             described: str, ttl: float, oldest: int | None) -> None:
        with self._lock:
            self._oldest = oldest
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
        if self.namespace == app_module.CORE:
            return self.binary
        return "app %s at %s" % (self.namespace, self.binary)

    def _caps_text(self, rpc_cap: str | None, objects: dict[str, str] | None) -> str:
        text = "objects %s" % self._objects_text(objects)
        return "RPC %s, %s" % (rpc_cap or "newest", text) if self.rpc_api else text

    def _objects_text(self, objects: dict[str, str] | None) -> str:
        """``newest`` or ``of release NAME``."""
        return "newest" if objects is None else "of release %s" % (
            self.release_of(objects))

    def _resolve(self, ctxt: Any) -> tuple[str | None, dict[str, str] | None,
                                           str, float, int | None]:
        """The caps, their description, how long they hold, and the index
        of the oldest release the peers run (None: not known)."""
        setting = self._setting() or "auto"
        names = [release.name for release in self.releases]
        if setting == "auto":
            try:
                index, described, ttl = self.peers.oldest(ctxt, self)
            except exception.RPCUnavailable as e:
                # Unknown: speak the oldest supported release, ask again soon.
                rpc_cap, objects = self._caps_of(0)
                return (rpc_cap, objects, "auto: peers unreachable (%s)" % e,
                        5.0, None)
            if ttl is None:
                ttl = float(self._refresh_interval())
            if index is None:
                return None, None, described, ttl, None
            rpc_cap, objects = self._caps_of(index)
            return rpc_cap, objects, described, ttl, index
        if setting in names:
            index = names.index(setting)
            rpc_cap, objects = self._caps_of(index)
            return (rpc_cap, objects, "pinned to release %s" % setting, 3600.0,
                    index)
        if self.rpc_api:
            return (*self._pinned_rpc(setting), None)
        raise exception.ConfigurationError(
            reason="[upgrade_levels] apps = %s:%s: the app declares "
                   "releases %s" % (self.namespace, setting,
                                    ", ".join(names) or "none"))

    def _pinned_rpc(self, setting: str) -> tuple[str | None, dict[str, str] | None,
                                                 str, float]:
        """A pin to an RPC API version: the objects of the newest release
        that speaks it."""
        assert self.rpc_api is not None
        try:
            candidates = [i for i, release in enumerate(self.releases)
                          if versionutils.is_compatible(release.rpc[self.rpc_api],
                                                        setting)
                          or release.rpc[self.rpc_api] == setting]
        except ValueError:  # not a version at all
            candidates = []
        if not candidates:
            raise exception.ConfigurationError(
                reason="[upgrade_levels] %s=%r is not 'auto', a release (%s) "
                       "or a known version" % (
                           self.binary.replace("novalet-", ""), setting,
                           ", ".join(releases_module.RELEASES)))
        _, objects = self._caps_of(max(candidates))
        return setting, objects, "pinned to RPC %s" % setting, 3600.0


def core_caps(binary: str, rpc_api: str, setting: Callable[[], str | None],
              minimum_version: Callable[[Any], int], *,
              holders: Callable[[Any, int], list[str]] | None = None,
              **kwargs: Any) -> VersionCaps:
    """The caps of the core's objects and its RPC API ``rpc_api`` (a key of
    the release map: ``conductor_rpc``, ``compute_rpc``) for ``binary``,
    ``auto`` following the lowest service version (``ServiceVersions``);
    ``kwargs`` as ``VersionCaps`` takes them."""
    return VersionCaps(binary, app_module.CORE, releases_module.core_releases(),
                       setting, ServiceVersions(minimum_version, holders),
                       rpc_api=rpc_api, **kwargs)


def app_caps(binary: str, app: Any, setting: Callable[[], str | None],
             app_releases: Callable[[Any], list[dict[str, str]]],
             **kwargs: Any) -> VersionCaps:
    """The caps of ``app``'s objects for ``binary``, ``auto`` following
    the releases of the app its services record (``AppReleases``)."""
    return VersionCaps(binary, app.name, release_map(app), setting,
                       AppReleases(app_releases), **kwargs)
