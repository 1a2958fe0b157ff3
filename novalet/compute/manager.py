"""The compute agent's manager: periodic resource audits and the compute
RPC endpoints. It never touches the database: everything goes through
objects and the conductor."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import periodic_task
from oslo_utils import timeutils

from novalet import exception, objects, rpc
from novalet import manager as base_manager
from novalet.compute import resource_tracker
from novalet.objects import fields
from novalet.virt import driver as virt_driver

LOG = logging.getLogger(__name__)

RPC_API_VERSION = "1.1"

_EXPECTED_AUDIT_ERRORS = (exception.RPCUnavailable, exception.VirtDriverError,
                          exception.InvalidResourceView,
                          exception.DatabaseUnavailable)


class ComputeManager(base_manager.Manager):
    """One compute host: a tracker per node the driver reports."""

    target = rpc.endpoint_target(RPC_API_VERSION)

    def __init__(self, conf: cfg.ConfigOpts, host: str,
                 driver: virt_driver.ComputeDriver | None = None) -> None:
        super().__init__(conf, host)
        self.driver = driver or virt_driver.load_driver(
            conf.compute.virt_driver, conf)
        self.trackers: dict[str, resource_tracker.ResourceTracker] = {}
        # The audit's spacing comes from the configuration, not from the
        # decorator evaluated at import (oslo.service keeps it per class).
        self._periodic_spacing: dict[str, float] = dict(
            self._periodic_spacing,
            update_available_resource=conf.update_resources_interval)

    def _tracker(self, nodename: str) -> resource_tracker.ResourceTracker:
        if nodename not in self.trackers:
            service_id = getattr(self.service_ref, "id", None)
            self.trackers[nodename] = resource_tracker.ResourceTracker(
                self.conf, self.host, self.driver, nodename, service_id)
        return self.trackers[nodename]

    def _follow_service_record(self, context: Any) -> None:
        """Node records vanished: the service record may have gone with
        them (``service delete --force``). Nodes created from now on link to
        the live record of this host, or to none (``service_id`` NULL, never
        a deleted id) until this service registers again."""
        binary = getattr(self.service_ref, "binary", None) or "novalet-compute"
        try:
            service_id: int | None = objects.Service.get_by_host_and_binary(
                context, self.host, binary).id
        except exception.ServiceNotFound:
            service_id = None
        except _EXPECTED_AUDIT_ERRORS as e:
            LOG.error("Cannot read the service record of %s: %s", self.host, e)
            return
        for tracker in list(self.trackers.values()):
            tracker.service_id = service_id

    def service_record_replaced(self, context: Any, service_ref: Any) -> None:
        """This service registered again under a new record (the old one was
        deleted while it ran, e.g. ``service delete --force``): every node
        record follows the new ``service_id`` (recreated at the next audit
        if the delete took it)."""
        LOG.info("Service record of %s is now %s; linking its compute nodes "
                 "to it", self.host, service_ref.id)
        for tracker in list(self.trackers.values()):
            tracker.relink(context, service_ref.id)

    # -- lifecycle -------------------------------------------------------

    def init_host(self) -> None:
        self.driver.init_host(self.host)

    def pre_start_hook(self) -> None:
        """The first audit, before the RPC server listens."""
        from novalet import context as novalet_context

        self.update_available_resource(novalet_context.get_admin_context())

    def cleanup_host(self) -> None:
        self.driver.cleanup()

    # -- the periodic audit ------------------------------------------------

    @periodic_task.periodic_task(spacing=60, run_immediately=False)
    def update_available_resource(self, context: Any) -> None:
        """Audit every node the driver reports; delete the records of nodes
        it no longer reports. One node's failure does not stop the others."""
        try:
            nodenames = self.driver.get_available_nodes()
        except exception.VirtDriverError as e:
            LOG.error("Cannot list nodes of %s: %s", self.host, e)
            return
        for nodename in nodenames:
            try:
                self._tracker(nodename).update_available_resource(context)
            except exception.ComputeHostNotFound:
                # Deleted under us (e.g. service delete --force): the next
                # audit creates it again, linked to the current record.
                LOG.warning("The record of node %s was deleted while it runs; "
                            "it is created again at the next audit", nodename)
            except _EXPECTED_AUDIT_ERRORS as e:
                LOG.error("Resource audit of %s failed: %s", nodename,
                          getattr(e, "message", e))
            except Exception:
                LOG.exception("Resource audit of %s failed", nodename)
        self._forget_vanished_nodes(context, set(nodenames))

    def _forget_vanished_nodes(self, context: Any, nodenames: set[str]) -> None:
        try:
            records = objects.ComputeNodeList.get_by_host(context, self.host)
        except _EXPECTED_AUDIT_ERRORS as e:
            LOG.error("Cannot list compute nodes of %s: %s", self.host, e)
            return
        live = {record.id for record in records}
        dropped = [tracker.forget_deleted_record(live)
                   for tracker in list(self.trackers.values())]
        if any(dropped):
            self._follow_service_record(context)
        for record in records:
            if record.hypervisor_hostname in nodenames:
                continue
            LOG.info("Node %s is gone from %s; deleting its record",
                     record.hypervisor_hostname, self.host)
            self.trackers.pop(record.hypervisor_hostname, None)
            try:
                record.destroy()
            except exception.ComputeHostNotFound:
                pass

    # -- RPC endpoints ---------------------------------------------------

    @rpc.expose
    def build_instance(self, context: Any, instance: Any,
                       node: str | None = None) -> Any:
        """Claim resources for ``instance`` on ``node``, spawn it, mark it
        active. Raises ``ComputeResourcesUnavailable`` (the instance goes to
        ``error``) and the driver's errors (the claim is aborted)."""
        nodename = node or self._pick_node()
        tracker = self._tracker(nodename)
        instance.node = nodename
        try:
            with tracker.instance_claim(context, instance):
                self.driver.spawn(instance)
        except Exception:
            try:
                instance.vm_state = fields.VMState.ERROR
                instance.task_state = None
                instance.save()
            except Exception:
                LOG.exception("Cannot mark %s as error", instance.uuid)
            raise
        instance.vm_state = fields.VMState.ACTIVE
        instance.task_state = None
        instance.launched_at = timeutils.utcnow()
        instance.save()
        return instance

    @rpc.expose
    def terminate_instance(self, context: Any, instance: Any,
                           clean_shutdown: bool = False) -> None:
        """Destroy the guest (asking it to shut down first with
        ``clean_shutdown``, RPC 1.1), delete the instance, give back its
        resources."""
        self.driver.destroy(instance, clean_shutdown=clean_shutdown)
        nodename = instance.node
        instance.vm_state = fields.VMState.DELETED
        instance.terminated_at = timeutils.utcnow()
        instance.save()
        instance.destroy()
        if nodename in self.trackers:
            self.trackers[nodename].drop_instance(context, instance)

    def _pick_node(self) -> str:
        nodes = self.driver.get_available_nodes()
        if not nodes:
            raise exception.ComputeResourcesUnavailable(
                node=self.host, reason="the driver reports no node")
        ready = [n for n in nodes if n in self.trackers
                 and self.trackers[n].compute_node is not None]
        if not ready:
            return nodes[0]

        def free(n: str) -> int:
            cn = self.trackers[n].compute_node
            return int(cn.memory_mb - cn.memory_mb_used)

        return max(ready, key=free)
