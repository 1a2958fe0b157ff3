"""``rpc``: remotable methods run in the conductor over oslo.messaging.

During a rolling upgrade the conductors may be older than this code: what
is sent is lowered to what the oldest conductor reads (``VersionCaps``,
``[upgrade_levels] conductor``), so an old conductor never receives an
object version, a manifest entry or an RPC form it does not know; what comes
back is read at this process's versions (``negotiation.Negotiator``).
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import rpc, version_caps
from novalet.conductor import rpcapi
from novalet.indirection import base, negotiation


class RPCIndirectionAPI(base.IndirectionAPI):
    """Sends every remotable call to the conductor (``ConductorAPI``)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        rpc.init(conf)
        self.conductor = rpcapi.ConductorAPI(conf)
        self.caps = negotiation.conductor_caps(
            conf, self.conductor.object_class_action_versions,
            on_change=self.conductor.set_version_cap)
        self.negotiator = negotiation.Negotiator(
            self.caps, negotiation.conductor_app_caps(
                conf, self.conductor.object_class_action_versions))

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        return self.negotiator.object_action(
            context, objinst, objmethod, args, kwargs, self._object_action)

    def _object_action(self, context: Any, objinst: Any, objmethod: str,
                       args: Any, kwargs: Any, manifest: Any) -> Any:
        return self.conductor.object_action(context, objinst, objmethod, args,
                                            kwargs, object_versions=manifest)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any,
                                     objnamespace: str = "novalet") -> Any:
        return self.negotiator.object_class_action(
            context, objname, objmethod, object_versions, args, kwargs,
            namespace=objnamespace, call=
            self.conductor.object_class_action_versions)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        manifest = version_caps.cap_manifest(
            object_versions, self.caps.object_versions(context))
        return self.conductor.object_backport_versions(context, objinst,
                                                       manifest)

    def invalidate_caps(self) -> None:
        """Re-read the conductors' versions at the next call (SIGHUP)."""
        self.negotiator.invalidate()
