"""Client of the compute RPC API (topic ``[compute] topic``, server=host).

API version history (the one place it is written down):

* 1.0 - Release 1: ``build_instance``, ``terminate_instance``.
* 1.1 - Release 2: ``terminate_instance`` takes ``clean_shutdown``.

The cap comes from ``[upgrade_levels] compute`` (see
``novalet.upgrade.caps``): ``auto`` follows the oldest running compute.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet import objects, rpc, upgrade
from novalet.objects import base as objects_base

#: The newest compute RPC API version this client can send.
RPC_API_VERSION = "1.1"

COMPUTE = "novalet-compute"


class ComputeAPI:
    """Calls a compute agent; every call has a timeout."""

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        rpc.init(conf)
        self.conf = conf
        self.client = rpc.Client(conf.compute.topic, RPC_API_VERSION,
                                 timeout=conf.rpc_response_timeout,
                                 entities=objects_base.NovaletObjectSerializer())
        self.caps = upgrade.core_caps(
            COMPUTE, "compute_rpc", lambda: conf.upgrade_levels.compute,
            lambda ctxt: objects.Service.get_minimum_version(ctxt, COMPUTE),
            holders=lambda ctxt, version: upgrade.services_at(
                objects.ServiceList.get_by_binary(ctxt, COMPUTE), version),
            on_change=self.client.set_version_cap,
            refresh_interval=lambda: conf.upgrade_levels.refresh_interval,
            wait_bound=lambda: conf.rpc_response_timeout + 5)
        self.client.expect_sealed_replies(self.caps.peers_seal_replies)

    def _send(self, ctxt: Any, obj: Any) -> Any:
        """``obj`` at the versions the oldest compute reads."""
        self.caps.rpc_cap(ctxt)  # refreshes the client's cap too
        caps = self.caps.object_versions(ctxt)
        if caps is None or obj.obj_name() not in caps:
            return obj
        manifest = upgrade.cap_manifest(
            objects.base.ovo_base.obj_tree_get_versions(obj.obj_name()), caps)
        return obj.obj_to_primitive(target_version=manifest[obj.obj_name()],
                                    version_manifest=manifest)

    def build_instance(self, ctxt: Any, instance: Any, host: str,
                       node: str | None = None) -> Any:
        """Claim, spawn and activate ``instance`` on ``host`` (``node``:
        any node of the host if None). Raises ``ComputeResourcesUnavailable``
        when it does not fit."""
        return self.client.call(ctxt, "build_instance", version="1.0",
                                server=host, instance=self._send(ctxt, instance),
                                node=node)

    def terminate_instance(self, ctxt: Any, instance: Any,
                           clean_shutdown: bool = False) -> None:
        """Destroy ``instance`` on its host and give back its resources;
        ``clean_shutdown`` (release 2 computes) asks the guest to stop first
        and waits ``[libvirt] shutdown_timeout`` longer for the answer."""
        sent = self._send(ctxt, instance)
        if self.client.can_send_version("1.1"):
            timeout = None
            if clean_shutdown:
                timeout = (self.conf.rpc_response_timeout
                           + self.conf.libvirt.shutdown_timeout)
            self.client.call(ctxt, "terminate_instance", version="1.1",
                             server=instance.host, instance=sent,
                             clean_shutdown=clean_shutdown, timeout=timeout)
        else:
            self.client.call(ctxt, "terminate_instance", version="1.0",
                             server=instance.host, instance=sent)
