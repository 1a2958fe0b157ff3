"""Client of the conductor RPC API (topic ``[conductor] topic``).

API version history (the one place it is written down):

* 1.0 - Release 1: ``object_action``, ``object_class_action_versions``,
  ``object_backport_versions``.

``[upgrade_levels] conductor`` caps what this client sends: ``auto`` (no cap
until the service versions say otherwise), a release name from
``RELEASE_VERSIONS``, or an explicit version.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import exception, rpc

#: The newest conductor RPC API version this client can send.
RPC_API_VERSION = "1.0"

#: Release name -> the conductor RPC API version it speaks.
RELEASE_VERSIONS = {"1": "1.0"}


def resolve_version_cap(setting: str | None) -> str | None:
    """Turn an ``[upgrade_levels]`` value into a version cap (None: no cap)."""
    if setting is None or setting == "auto":
        return None
    if setting in RELEASE_VERSIONS:
        return RELEASE_VERSIONS[setting]
    parts = setting.split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return setting
    raise exception.ConfigurationError(
        reason="[upgrade_levels] conductor=%r is not 'auto', a release name "
               "(%s) or a version" % (setting, ", ".join(RELEASE_VERSIONS)))


class ConductorAPI:
    """Calls the conductor's object endpoints; every call has a timeout
    (``rpc_response_timeout``) and raises ``RPCTimeout`` past it."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.client = rpc.Client(
            conf.conductor.topic, RPC_API_VERSION,
            version_cap=resolve_version_cap(conf.upgrade_levels.conductor),
            timeout=conf.rpc_response_timeout)

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> Any:
        return self.client.call(context, "object_action", version="1.0",
                                objinst=objinst, objmethod=objmethod,
                                args=args, kwargs=kwargs)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any) -> Any:
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
