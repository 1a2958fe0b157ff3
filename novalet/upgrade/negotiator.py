"""Version negotiation between a caller and its conductors.

``Negotiator`` stands between an indirection API and the conductor client it
is given (over RPC, or in this process): what goes out is lowered to the
caps of the objects' app (``VersionCaps``: the oldest conductor, or
``[upgrade_levels] conductor`` / ``apps``), and what comes back is read at
this process's versions.

* An object read at an older version (its instance ``VERSION`` below its
  class's) is brought to its class's version before it is sent, nested
  objects too; its pending changes stay. In memory it is already in the
  newest form (a class reads older primitives into its own fields), so
  nothing but the label changes: the caps then decide the form it goes in.
* Changes the capped form cannot carry stay pending, and go out with the
  first call once the caps allow.
* Updates that come back at the older version the object was sent at are
  read by the same path as an old primitive, whatever the field type:
  nested objects, lists, dicts, JSON text that became an object. Objects in
  results and in updates are brought to this process's versions.

The negotiator knows neither the objects nor the transport: the indirection
plugin that wires it in (``for_conductors``) gives it the conductor client
and the objects' version operations (``ObjectVersions``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from oslo_config import cfg

from novalet import app, exception
from novalet.upgrade import caps as caps_module
from novalet.upgrade import releases

CONDUCTOR = "novalet-conductor"


class ConductorClient(Protocol):
    """The calls a negotiator sends (``ConductorAPI``'s signatures)."""

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any,
                      object_versions: Mapping[str, str] | None = None) -> Any:
        """``(updates, result)`` of ``objinst.objmethod(*args, **kwargs)``."""

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any,
                                     objnamespace: str = app.CORE) -> Any:
        """The result of class method ``objname.objmethod``."""


class ObjectVersions(Protocol):
    """What a negotiator needs of the objects (``novalet.objects.versions``)."""

    def version_tree(self, objname: str, namespace: str) -> Mapping[str, str]:
        """``objname``'s version manifest (read-only)."""

    def is_object(self, value: Any) -> bool:
        """Whether ``value`` is a novalet object."""

    def make_current(self, value: Any) -> Any:
        """Every object in ``value`` at its class's version, in place."""

    def updates_at_current(self, objinst: Any, sent_version: str,
                           updates: dict[str, Any]) -> dict[str, Any]:
        """``updates`` sent back at ``sent_version``, at ``objinst``'s."""


def for_conductors(conf: cfg.ConfigOpts, client: ConductorClient,
                   objects: ObjectVersions,
                   on_change: Callable[[str | None], None] | None = None,
                   ) -> Negotiator:
    """The negotiator of a caller of the conductors through ``client``:
    the core's caps (``[upgrade_levels] conductor``; ``on_change`` gets each
    new RPC cap) and each loaded app's (``[upgrade_levels] apps``), asked
    through ``client`` in the oldest supported release's form, which any
    conductor this release works with understands."""
    oldest = releases.core_releases()[0].objects

    def class_action(context: Any, objname: str, method: str,
                     manifest: Mapping[str, str]) -> Any:
        return client.object_class_action_versions(
            context, objname, method, dict(manifest), [CONDUCTOR], {})

    def minimum_version(context: Any) -> int:
        return int(class_action(context, "Service", "get_minimum_version",
                                {"Service": oldest["Service"]}) or 0)

    def holders(context: Any, version: int) -> list[str]:
        services = class_action(
            context, "ServiceList", "get_by_binary",
            {"ServiceList": oldest["ServiceList"], "Service": oldest["Service"]})
        return caps_module.services_at(services, version)

    def app_releases(context: Any) -> list[dict[str, str]]:
        return class_action(context, "Service", "get_app_releases",  # type: ignore[no-any-return]
                            {"Service": oldest["Service"]}) or []

    def refresh_interval() -> float:
        return float(conf.upgrade_levels.refresh_interval)

    def wait_bound() -> float:
        return float(conf.rpc_response_timeout + 5)

    core = caps_module.core_caps(
        CONDUCTOR, "conductor_rpc", lambda: conf.upgrade_levels.conductor,
        minimum_version, holders=holders, on_change=on_change,
        refresh_interval=refresh_interval, wait_bound=wait_bound)

    def app_caps(namespace: str) -> caps_module.VersionCaps | None:
        declared = app.loaded().get(namespace)
        if declared is None or not declared.releases:
            return None
        return caps_module.app_caps(
            CONDUCTOR, declared, lambda: conf.upgrade_levels.apps.get(namespace),
            app_releases, refresh_interval=refresh_interval, wait_bound=wait_bound)

    return Negotiator(client, objects, core, app_caps)


class Negotiator:
    """Caps what is sent to the conductor through ``client``; reads what
    comes back.

    ``caps`` govern novalet's own objects and the RPC API; ``app_caps``
    (a factory by namespace) each app's objects, by that app's releases.
    """

    def __init__(self, client: ConductorClient, objects: ObjectVersions,
                 caps: caps_module.VersionCaps,
                 app_caps: Callable[[str], caps_module.VersionCaps | None]
                 | None = None) -> None:
        self.client = client
        self.objects = objects
        self.caps = caps
        self._app_caps_factory = app_caps
        self._caps: dict[str, caps_module.VersionCaps | None] = {app.CORE: caps}
        self._lock = threading.Lock()

    def caps_for(self, namespace: str) -> caps_module.VersionCaps | None:
        """The caps of ``namespace`` (an app's made once), or None."""
        try:
            return self._caps[namespace]
        except KeyError:
            pass
        with self._lock:
            if namespace not in self._caps:
                self._caps[namespace] = (
                    self._app_caps_factory(namespace)
                    if self._app_caps_factory is not None else None)
            return self._caps[namespace]

    def invalidate(self) -> None:
        """Re-read every cap at the next call (SIGHUP)."""
        with self._lock:
            for caps in self._caps.values():
                if caps is not None:
                    caps.invalidate()

    def manifest(self, context: Any, objname: str,
                 manifest: Mapping[str, str] | None = None,
                 namespace: str = app.CORE,
                 ) -> tuple[Mapping[str, str], bool]:
        """The manifest to send (``objname``'s version tree by default),
        lowered to the caps of ``namespace`` (novalet's, or the app's own),
        and whether there are caps. Uncapped, it is the manifest itself:
        read-only."""
        if manifest is None:
            manifest = self.objects.version_tree(objname, namespace)
        caps = self.caps_for(namespace)
        if caps is None:
            return manifest, False
        versions = caps.object_versions(context)
        if versions is None:
            return manifest, False
        capped = caps_module.cap_manifest(manifest, versions, caps.scope())
        if objname not in capped:
            raise exception.UnsupportedObjectVersion(
                objname=objname, version=manifest.get(objname, "?"),
                supported="none: the conductors (capped to %s) do not know it"
                % (self.caps.binary if namespace == app.CORE else
                   "%s of %s" % (self.caps.binary, namespace)))
        return capped, True

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        """``objinst.objmethod(*args, **kwargs)`` on the conductor with
        ``objinst`` (and objects in the arguments) at the caps; returns
        ``(updates, result)`` at this process's versions."""
        objinst.obj_make_current()
        objname = objinst.obj_name()
        manifest, capped = self.manifest(context, objname,
                                         namespace=objinst.OBJ_PROJECT_NAMESPACE)
        sent: Any = objinst
        dropped: set[str] = set()
        sent_version = objinst.VERSION
        if capped:
            sent_version = manifest[objname]
            sent = objinst.obj_to_primitive(target_version=sent_version,
                                            version_manifest=manifest)
            kept = set(sent.get("%s.changes" % objinst.OBJ_SERIAL_NAMESPACE, []))
            dropped = set(objinst.obj_what_changed()) - kept
            args = self._cap_arguments(context, args)
            kwargs = self._cap_arguments(context, kwargs)
        updates, result = self.client.object_action(
            context, sent, objmethod, args, kwargs, object_versions=manifest)
        if not capped:
            return updates, result
        if sent_version != objinst.VERSION:
            updates = self.objects.updates_at_current(objinst, sent_version,
                                                      updates)
        else:
            self.objects.make_current(updates)
        if dropped:
            # Changes the older conductor could not receive stay pending:
            # they go out with the first call once the caps rise.
            updates = dict(updates)
            updates["obj_what_changed"] = sorted(
                set(updates.get("obj_what_changed", [])) | dropped)
        return updates, self.objects.make_current(result)

    def object_class_action(self, context: Any, objname: str, objmethod: str,
                            object_versions: Mapping[str, str], args: Any,
                            kwargs: Any, namespace: str = app.CORE) -> Any:
        """Class method ``objname.objmethod`` of the app ``namespace`` on the
        conductor at the caps; the result at this process's versions."""
        manifest, capped = self.manifest(context, objname, object_versions,
                                         namespace)
        if capped:
            args = self._cap_arguments(context, args)
            kwargs = self._cap_arguments(context, kwargs)
        if namespace != app.CORE:
            result = self.client.object_class_action_versions(
                context, objname, objmethod, manifest, args, kwargs,
                objnamespace=namespace)
        else:
            result = self.client.object_class_action_versions(
                context, objname, objmethod, manifest, args, kwargs)
        return self.objects.make_current(result) if capped else result

    def _cap_arguments(self, context: Any, value: Any) -> Any:
        """Objects among the arguments as primitives at the caps."""
        if self.objects.is_object(value):
            value.obj_make_current()
            manifest, capped = self.manifest(
                context, value.obj_name(), namespace=value.OBJ_PROJECT_NAMESPACE)
            if not capped:
                return value
            return value.obj_to_primitive(target_version=manifest[value.obj_name()],
                                          version_manifest=dict(manifest))
        if isinstance(value, (list, tuple)):
            return type(value)(self._cap_arguments(context, v) for v in value)
        if isinstance(value, dict):
            return {k: self._cap_arguments(context, v) for k, v in value.items()}
        return value
