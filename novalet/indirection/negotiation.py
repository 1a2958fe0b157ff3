"""Version negotiation between a caller and its conductor.

``Negotiator`` stands between an indirection API and the conductor it calls
(over RPC, or in this process): what goes out is lowered to the caps
(``VersionCaps``: the oldest conductor, or ``[upgrade_levels] conductor``),
and what comes back is read at this process's versions.

* An object read at an older version (its instance ``VERSION`` below its
  class's) is brought to its class's version before it is sent, nested
  objects too; its pending changes stay. In memory it is already in the
  newest form (a class reads older primitives into its own fields), so
  nothing but the label changes: the caps then decide the form it goes in.
* Changes the capped form cannot carry stay pending, and go out with the
  first call once the caps allow.
* Updates that come back at the older version the object was sent at are
  read by the same path as an old primitive (``_obj_from_primitive`` at that
  version), whatever the field type: nested objects, lists, dicts, JSON text
  that became an object. Objects in results and in updates are brought to
  this process's versions.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

from oslo_config import cfg
from oslo_versionedobjects import base as ovo_base

from novalet import app, exception, version_caps
from novalet.objects import base as objects_base
from novalet.objects import codec
from novalet.objects import service as service_obj

CONDUCTOR = "novalet-conductor"

ObjectAction = Callable[..., tuple[dict[str, Any], Any]]
ClassAction = Callable[..., Any]


def make_current(value: Any) -> Any:
    """Bring every novalet object in ``value`` (an object, or lists, tuples
    and dicts holding objects) to its class's version, in place."""
    if isinstance(value, objects_base.NovaletObject):
        value.obj_make_current()
    elif isinstance(value, (list, tuple)):
        for item in value:
            make_current(item)
    elif isinstance(value, dict):
        for item in value.values():
            make_current(item)
    return value


def conductor_caps(conf: cfg.ConfigOpts, class_action: Any,
                   on_change: Any = None) -> version_caps.VersionCaps:
    """The caps for the conductors, asked through ``class_action`` (an
    ``object_class_action_versions``) in the oldest supported release's
    form: any conductor this release works with understands it."""
    oldest = service_obj.SERVICE_VERSION_HISTORY[
        service_obj.OLDEST_SUPPORTED_SERVICE_VERSION]["objects"]

    def minimum_version(context: Any) -> int:
        return int(class_action(context, "Service", "get_minimum_version",
                                {"Service": oldest["Service"]}, [CONDUCTOR],
                                {}) or 0)

    def holders(context: Any, version: int) -> list[str]:
        services = class_action(
            context, "ServiceList", "get_by_binary",
            {"ServiceList": oldest["ServiceList"], "Service": oldest["Service"]},
            [CONDUCTOR], {})
        return version_caps.services_at(services, version)

    return version_caps.VersionCaps(
        CONDUCTOR, lambda: conf.upgrade_levels.conductor, "conductor_rpc",
        minimum_version, on_change=on_change,
        refresh_interval=lambda: conf.upgrade_levels.refresh_interval,
        holders=holders, wait_bound=lambda: conf.rpc_response_timeout + 5)


def conductor_app_caps(conf: cfg.ConfigOpts, class_action: Any,
                       ) -> Callable[[str], version_caps.AppVersionCaps | None]:
    """A factory of each app's caps for the conductors (None for an app
    that is not loaded here or declares no releases), asked through
    ``class_action`` like ``conductor_caps``."""
    oldest = service_obj.SERVICE_VERSION_HISTORY[
        service_obj.OLDEST_SUPPORTED_SERVICE_VERSION]["objects"]

    def app_releases(context: Any) -> list[dict[str, str]]:
        return class_action(context, "Service", "get_app_releases",  # type: ignore[no-any-return]
                            {"Service": oldest["Service"]}, [CONDUCTOR], {}) or []

    def make(namespace: str) -> version_caps.AppVersionCaps | None:
        declared = app.loaded().get(namespace)
        if declared is None or not declared.releases:
            return None
        return version_caps.AppVersionCaps(
            CONDUCTOR, declared, lambda: conf.upgrade_levels.apps.get(namespace),
            app_releases,
            refresh_interval=lambda: conf.upgrade_levels.refresh_interval,
            wait_bound=lambda: conf.rpc_response_timeout + 5)

    return make


class Negotiator:
    """Caps what is sent to the conductor; reads what comes back.

    ``caps`` govern novalet's own objects and the RPC API; ``app_caps``
    (a factory by namespace) each app's objects, by that app's releases.
    """

    def __init__(self, caps: version_caps.VersionCaps,
                 app_caps: Callable[[str], version_caps.AppVersionCaps | None]
                 | None = None) -> None:
        self.caps = caps
        self._app_caps_factory = app_caps
        self._app_caps: dict[str, version_caps.AppVersionCaps | None] = {}
        self._lock = threading.Lock()

    def app_caps(self, namespace: str) -> version_caps.AppVersionCaps | None:
        """The caps of the app ``namespace`` (made once), or None."""
        try:
            return self._app_caps[namespace]
        except KeyError:
            pass
        with self._lock:
            if namespace not in self._app_caps:
                self._app_caps[namespace] = (
                    self._app_caps_factory(namespace)
                    if self._app_caps_factory is not None else None)
            return self._app_caps[namespace]

    def invalidate(self) -> None:
        """Re-read every cap at the next call (SIGHUP)."""
        self.caps.invalidate()
        with self._lock:
            for caps in self._app_caps.values():
                if caps is not None:
                    caps.invalidate()

    def manifest(self, context: Any, objname: str,
                 manifest: Mapping[str, str] | None = None,
                 namespace: str = codec.CORE,
                 ) -> tuple[Mapping[str, str], bool]:
        """The manifest to send (``objname``'s version tree by default),
        lowered to the caps of ``namespace`` (novalet's, or the app's own),
        and whether there are caps. Uncapped, it is the manifest itself:
        read-only."""
        if manifest is None:
            manifest = codec.version_tree(objname, namespace)
        scope: set[str] | None = None
        if namespace == codec.CORE:
            caps = self.caps.object_versions(context)
        else:
            app_caps = self.app_caps(namespace)
            if app_caps is None:
                return manifest, False
            caps = app_caps.object_versions(context)
            scope = app_caps.scope()
        if caps is None:
            return manifest, False
        capped = version_caps.cap_manifest(dict(manifest), caps, scope)
        if objname not in capped:
            raise exception.UnsupportedObjectVersion(
                objname=objname, version=manifest.get(objname, "?"),
                supported="none: the conductors (capped to %s) do not know it"
                % (self.caps.binary if namespace == codec.CORE else
                   "%s of %s" % (self.caps.binary, namespace)))
        return capped, True

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any, call: ObjectAction,
                      ) -> tuple[dict[str, Any], Any]:
        """``call(context, objinst, objmethod, args, kwargs, manifest)`` with
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
        updates, result = call(context, sent, objmethod, args, kwargs, manifest)
        if not capped:
            return updates, result
        if sent_version != objinst.VERSION:
            updates = updates_at_current(objinst, sent_version, updates)
        else:
            make_current(updates)
        if dropped:
            # Changes the older conductor could not receive stay pending:
            # they go out with the first call once the caps rise.
            updates = dict(updates)
            updates["obj_what_changed"] = sorted(
                set(updates.get("obj_what_changed", [])) | dropped)
        return updates, make_current(result)

    def object_class_action(self, context: Any, objname: str, objmethod: str,
                            object_versions: Mapping[str, str], args: Any,
                            kwargs: Any, call: ClassAction,
                            namespace: str = codec.CORE) -> Any:
        """``call(context, objname, objmethod, manifest, args, kwargs)`` at
        the caps (``objnamespace=`` added for an app's class); the result
        at this process's versions."""
        manifest, capped = self.manifest(context, objname, object_versions,
                                         namespace)
        if capped:
            args = self._cap_arguments(context, args)
            kwargs = self._cap_arguments(context, kwargs)
        if namespace != codec.CORE:
            result = call(context, objname, objmethod, manifest, args, kwargs,
                          objnamespace=namespace)
        else:
            result = call(context, objname, objmethod, manifest, args, kwargs)
        return make_current(result) if capped else result

    def _cap_arguments(self, context: Any, value: Any) -> Any:
        """Objects among the arguments as primitives at the caps."""
        if isinstance(value, objects_base.NovaletObject):
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


def updates_at_current(objinst: Any, sent_version: str,
                       updates: dict[str, Any]) -> dict[str, Any]:
    """``updates`` a conductor sent for ``objinst`` at ``sent_version``
    (field primitives, nested objects already deserialized), as the
    remotable wrapper applies them at ``objinst``'s version: primitives of
    this version for plain fields, current objects for object fields."""
    cls = type(objinst)
    info = codec.info(cls)
    data = {}
    for name, value in updates.items():
        if name not in info.fields:
            continue
        data[name] = _as_received(value)
    primitive = {info.key_name: objinst.obj_name(),
                 info.key_namespace: info.namespace,
                 info.key_version: sent_version,
                 info.key_data: data}
    loaded = codec.class_for(objinst.obj_name(), sent_version,
                             info.namespace)._obj_from_primitive(
        objinst._context, sent_version, primitive)
    loaded.obj_make_current()
    current: dict[str, Any] = {
        key: value for key, value in updates.items() if key not in info.fields}
    for name in data:
        if not loaded.obj_attr_is_set(name):
            continue
        value = getattr(loaded, name)
        current[name] = (value if isinstance(value, ovo_base.VersionedObject)
                         else info.fields[name].to_primitive(loaded, name, value))
    return current


def _as_received(value: Any) -> Any:
    """A value of an update back in its wire form: objects the serializer
    already rebuilt become their primitives again (at the version they
    came at), so the whole update is read in one pass."""
    if isinstance(value, ovo_base.VersionedObject):
        return value.obj_to_primitive()
    if isinstance(value, list):
        return [_as_received(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_received(v) for k, v in value.items()}
    return value
