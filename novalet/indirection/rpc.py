"""``rpc``: remotable methods run in the conductor over oslo.messaging."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import rpc
from novalet.conductor import rpcapi
from novalet.indirection import base


class RPCIndirectionAPI(base.IndirectionAPI):
    """Sends every remotable call to the conductor (``ConductorAPI``)."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        rpc.init(conf)
        self.conductor = rpcapi.ConductorAPI(conf)

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        return self.conductor.object_action(context, objinst, objmethod,  # type: ignore[no-any-return]
                                            args, kwargs)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any) -> Any:
        return self.conductor.object_class_action_versions(
            context, objname, objmethod, object_versions, args, kwargs)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        return self.conductor.object_backport_versions(context, objinst,
                                                       object_versions)
