"""Client of the conductor RPC API (topic ``[conductor] topic``).

API version history (the one place it is written down):

* 1.0 - Release 1: ``object_action``, ``object_class_action_versions``,
  ``object_backport_versions``.
* 1.1 - Release 2: ``object_action`` takes ``object_versions``, the caller's
  version manifest, so nested objects in the updates come back at versions
  the caller reads.
* 1.2 - Release 3: ``object_class_action_versions`` takes ``objnamespace``,
  the app whose class ``objname`` names (without it: the core's, so 1.0 and
  1.1 callers are served as before). Core class calls keep the 1.0 form.

The cap comes from ``[upgrade_levels] conductor`` (see
``novalet.upgrade.caps``; the release map, ``novalet.upgrade.releases``,
names each release's version); every call picks the lowest version it needs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from oslo_config import cfg

from novalet import exception, rpc
from novalet.app import CORE
from novalet.objects import base as objects_base

#: The core app's namespace (its class calls keep the 1.0 form).

#: The newest conductor RPC API version this client can send.
RPC_API_VERSION = "1.2"


class ConductorAPI:
    """Calls the conductor's object endpoints; every call has a timeout
    (``rpc_response_timeout``) and raises ``RPCTimeout`` past it."""

    def __init__(self, conf: cfg.ConfigOpts,
                 version_cap: str | None = None) -> None:
        self.client = rpc.Client(conf.conductor.topic, RPC_API_VERSION,
                                 version_cap=version_cap,
                                 timeout=conf.rpc_response_timeout,
                                 entities=objects_base.NovaletObjectSerializer())

    def set_version_cap(self, version_cap: str | None) -> None:
        self.client.set_version_cap(version_cap)

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any,
                      object_versions: Mapping[str, str] | None = None) -> Any:
        if object_versions is not None and self.client.can_send_version("1.1"):
            return self.client.call(context, "object_action", version="1.1",
                                    objinst=objinst, objmethod=objmethod,
                                    args=args, kwargs=kwargs,
                                    object_versions=object_versions)
        return self.client.call(context, "object_action", version="1.0",
                                objinst=objinst, objmethod=objmethod,
                                args=args, kwargs=kwargs)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any,
                                     objnamespace: str = CORE) -> Any:
        if objnamespace != CORE:
            if not self.client.can_send_version("1.2"):
                # Only release 3 conductors serve other apps' class methods.
                raise exception.UnsupportedRPCVersion(
                    topic=self.client.topic, version="1.2",
                    method="object_class_action_versions (%s.%s)"
                    % (objnamespace, objname))
            return self.client.call(context, "object_class_action_versions",
                                    version="1.2", objname=objname,
                                    objmethod=objmethod,
                                    object_versions=object_versions,
                                    args=args, kwargs=kwargs,
                                    objnamespace=objnamespace)
        return self.client.call(context, "object_class_action_versions",
                                version="1.0", objname=objname,
                                objmethod=objmethod,
                                object_versions=object_versions,
                                args=args, kwargs=kwargs)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: Any) -> Any:
        return self.client.call(context, "object_backport_versions",
                                version="1.0", objinst=objinst,
                                object_versions=object_versions)
