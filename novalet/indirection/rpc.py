"""``rpc``: remotable methods run in the conductor over oslo.messaging.

During a rolling upgrade the conductors may be older than this code: what
is sent is lowered to what the oldest conductor reads (``VersionCaps``,
``[upgrade_levels] conductor``), so an old conductor never receives an
object version, a manifest entry or an RPC form it does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from novalet import rpc, version_caps
from novalet.conductor import rpcapi
from novalet.indirection import base
from novalet.objects import codec
from novalet.objects import service as service_obj

CONDUCTOR = "novalet-conductor"


class RPCIndirectionAPI(base.IndirectionAPI):
    """Sends every remotable call to the conductor (``ConductorAPI``)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        rpc.init(conf)
        self.conductor = rpcapi.ConductorAPI(conf)
        self.caps = version_caps.VersionCaps(
            CONDUCTOR, lambda: conf.upgrade_levels.conductor, "conductor_rpc",
            self._conductor_minimum_version,
            on_change=self.conductor.set_version_cap,
            refresh_interval=lambda: conf.upgrade_levels.refresh_interval)

    def _conductor_minimum_version(self, context: Any) -> int:
        # Asked in the oldest supported release's form: any conductor
        # this release works with understands it.
        oldest = service_obj.SERVICE_VERSION_HISTORY[
            service_obj.OLDEST_SUPPORTED_SERVICE_VERSION]
        return int(self.conductor.object_class_action_versions(
            context, "Service", "get_minimum_version",
            {"Service": oldest["objects"]["Service"]}, [CONDUCTOR], {}) or 0)

    def _capped(self, context: Any, objname: str,
                manifest: Mapping[str, str] | None = None,
                ) -> tuple[Mapping[str, str], bool]:
        """The manifest to send (``objname``'s version tree by default),
        lowered to the caps, and whether there are caps. Uncapped, it is
        the manifest itself: read-only."""
        caps = self.caps.object_versions(context)
        if manifest is None:
            manifest = codec.version_tree(objname)
        if caps is None:
            return manifest, False
        return version_caps.cap_manifest(dict(manifest), caps), True

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        manifest, capped = self._capped(context, objinst.obj_name())
        sent = objinst
        dropped: set[str] = set()
        if capped:
            sent = objinst.obj_to_primitive(
                target_version=manifest[objinst.obj_name()],
                version_manifest=manifest)
            kept = set(sent.get("%s.changes" % objinst.OBJ_SERIAL_NAMESPACE, []))
            dropped = set(objinst.obj_what_changed()) - kept
        updates, result = self.conductor.object_action(
            context, sent, objmethod, args, kwargs, object_versions=manifest)
        if dropped:
            # Changes the older conductor could not receive stay pending:
            # they go out with the first save once the caps rise.
            updates = dict(updates)
            updates["obj_what_changed"] = sorted(
                set(updates.get("obj_what_changed", [])) | dropped)
        return updates, result

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any) -> Any:
        manifest, _ = self._capped(context, objname, object_versions)
        return self.conductor.object_class_action_versions(
            context, objname, objmethod, manifest, args, kwargs)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        manifest = version_caps.cap_manifest(
            object_versions, self.caps.object_versions(context))
        return self.conductor.object_backport_versions(context, objinst,
                                                       manifest)

    def invalidate_caps(self) -> None:
        """Re-read the conductors' versions at the next call (SIGHUP)."""
        self.caps.invalidate()
