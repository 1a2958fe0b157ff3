"""Client of the compute RPC API (topic ``[compute] topic``, server=host).

API version history (the one place it is written down):

* 1.0 - Release 1: ``build_instance``, ``terminate_instance``.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import exception, rpc

#: The newest compute RPC API version this client can send.
RPC_API_VERSION = "1.0"

#: Release name -> the compute RPC API version it speaks.
RELEASE_VERSIONS = {"1": "1.0"}


def resolve_version_cap(setting: str | None) -> str | None:
    """Turn ``[upgrade_levels] compute`` into a version cap (None: no cap)."""
    if setting is None or setting == "auto":
        return None
    if setting in RELEASE_VERSIONS:
        return RELEASE_VERSIONS[setting]
    parts = setting.split(".")
    if len(parts) == 2 and all(p.isdigit() for p in parts):
        return setting
    raise exception.ConfigurationError(
        reason="[upgrade_levels] compute=%r is not 'auto', a release name "
               "(%s) or a version" % (setting, ", ".join(RELEASE_VERSIONS)))


class ComputeAPI:
    """Calls a compute agent; every call has a timeout."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        rpc.init(conf)
        self.client = rpc.Client(
            conf.compute.topic, RPC_API_VERSION,
            version_cap=resolve_version_cap(conf.upgrade_levels.compute),
            timeout=conf.rpc_response_timeout)

    def build_instance(self, ctxt: Any, instance: Any, host: str,
                       node: str | None = None) -> Any:
        """Claim, spawn and activate ``instance`` on ``host`` (``node``:
        any node of the host if None). Raises ``ComputeResourcesUnavailable``
        when it does not fit."""
        return self.client.call(ctxt, "build_instance", version="1.0",
                                server=host, instance=instance, node=node)

    def terminate_instance(self, ctxt: Any, instance: Any) -> None:
        """Destroy ``instance`` on its host and give back its resources."""
        self.client.call(ctxt, "terminate_instance", version="1.0",
                         server=instance.host, instance=instance)
