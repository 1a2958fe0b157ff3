"""``rpc``: remotable methods run in the conductor over oslo.messaging.

During a rolling upgrade the conductors may be older than this code: what
is sent is lowered to what the oldest conductor reads (``VersionCaps``,
``[upgrade_levels] conductor``), so an old conductor never receives an
object version, a manifest entry or an RPC form it does not know; what comes
back is read at this process's versions (``upgrade.Negotiator``, given the
conductor client).
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import rpc, upgrade
from novalet.conductor import rpcapi
from novalet.indirection import base


class RPCIndirectionAPI(base.ConductorIndirectionAPI):
    """Sends every remotable call to the conductor (``ConductorAPI``)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        rpc.init(conf)
        self.conductor = rpcapi.ConductorAPI(conf)
        super().__init__(conf, self.conductor,
                         on_change=self.conductor.set_version_cap)
        self.conductor.client.expect_sealed_replies(self.caps.peers_seal_replies)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        manifest = upgrade.cap_manifest(
            object_versions, self.caps.object_versions(context))
        return self.conductor.object_backport_versions(context, objinst,
                                                       manifest)
