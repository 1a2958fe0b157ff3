"""The compute agent's manager: periodic resource audits and the compute
RPC endpoints. It never touches the database: everything goes through
objects and the conductor."""

from __future__ import annotations

import threading
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging
from oslo_service import periodic_task
from oslo_utils import timeutils

from novalet import exception, objects, rpc
from novalet import manager as base_manager
from novalet.auth import principal as principal_mod
from novalet.auth import signing
from novalet.compute import resource_tracker
from novalet.objects import fields
from novalet.virt import driver as virt_driver

LOG = logging.getLogger(__name__)

RPC_API_VERSION = "1.1"

_EXPECTED_AUDIT_ERRORS = (exception.RPCUnavailable, exception.VirtDriverError,
                          exception.InvalidResourceView,
                          exception.ConfigurationError,
                          exception.DatabaseUnavailable)


class ComputeManager(base_manager.Manager):
    """One compute host: a tracker per node the driver reports."""

    target = rpc.endpoint_target(RPC_API_VERSION)

    def __init__(self, conf: cfg.ConfigOpts, host: str,
                 driver: virt_driver.ComputeDriver | None = None) -> None:
        """Raises ``ConfigurationError`` for an allocation ratio that is not
        above 0, or a virt driver that cannot be loaded."""
        super().__init__(conf, host)
        resource_tracker.allocation_ratios(conf)
        self.driver = driver or virt_driver.load_driver(
            conf.compute.virt_driver, conf)
        #: nodename -> its tracker; created and retired under _trackers_lock
        #: (RPC threads and the periodic thread both reach it).
        self.trackers: dict[str, resource_tracker.ResourceTracker] = {}
        self._trackers_lock = threading.Lock()
        # The audit's spacing comes from the configuration, not from the
        # decorator evaluated at import (oslo.service keeps it per class).
        self._periodic_spacing: dict[str, float] = dict(
            self._periodic_spacing,
            update_available_resource=conf.update_resources_interval)

    def _tracker(self, nodename: str) -> resource_tracker.ResourceTracker:
        """The tracker of ``nodename``, made on first use."""
        with self._trackers_lock:
            tracker = self.trackers.get(nodename)
            if tracker is None:
                service_id = getattr(self.service_ref, "id", None)
                tracker = resource_tracker.ResourceTracker(
                    self.conf, self.host, self.driver, nodename, service_id)
                self.trackers[nodename] = tracker
            return tracker

    def _claim_tracker(self, nodename: str) -> resource_tracker.ResourceTracker:
        """The tracker of a node the driver reports and the audit saw;
        raises ``ComputeResourcesUnavailable`` for any other node."""
        with self._trackers_lock:
            tracker = self.trackers.get(nodename)
        if tracker is None:
            raise exception.ComputeResourcesUnavailable(
                node=nodename, reason="not a node of %s (or not audited yet)"
                % self.host)
        return tracker

    def _retire_tracker(self, nodename: str) -> None:
        with self._trackers_lock:
            tracker = self.trackers.pop(nodename, None)
        if tracker is not None:
            tracker.retire()  # after a claim in progress on it

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
        it no longer reports (a renamed single-node host keeps its record).
        One node's failure does not stop the others."""
        try:
            nodenames = self.driver.get_available_nodes()
        except exception.VirtDriverError as e:
            LOG.error("Cannot list nodes of %s: %s", self.host, e)
            return
        try:
            records = objects.ComputeNodeList.get_by_host(context, self.host)
        except _EXPECTED_AUDIT_ERRORS as e:
            LOG.error("Cannot list compute nodes of %s: %s", self.host, e)
            records = None
        if records is not None:
            nodenames = self._keep_renamed_node(nodenames, records)
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
        if records is not None:
            self._forget_vanished_nodes(context, set(nodenames))

    def _keep_renamed_node(self, nodenames: list[str],
                           records: Any) -> list[str]:
        """When the one node of a single-node driver comes back under a new
        name while its host has one record under another, the driver keeps
        the recorded name (its record, instances and history stay); returns
        the node names to audit."""
        recorded = [r.hypervisor_hostname for r in records]
        new = [n for n in nodenames if n not in recorded]
        old = [r for r in records if r.hypervisor_hostname not in nodenames]
        if len(nodenames) != 1 or len(new) != 1 or len(old) != 1:
            return nodenames
        if not self.driver.keep_node_name(new[0], old[0].hypervisor_hostname):
            return nodenames
        LOG.warning("Node %s of %s now calls itself %s: keeping its record "
                    "%s and its instances under the name %s",
                    old[0].hypervisor_hostname, self.host, new[0],
                    old[0].uuid, old[0].hypervisor_hostname)
        return [old[0].hypervisor_hostname]

    def _forget_vanished_nodes(self, context: Any, nodenames: set[str]) -> None:
        # Listed after the audits: a record deleted under a running compute
        # shows up here (its tracker forgets it; the next audit recreates it).
        try:
            records = objects.ComputeNodeList.get_by_host(context, self.host)
        except _EXPECTED_AUDIT_ERRORS as e:
            LOG.error("Cannot list compute nodes of %s: %s", self.host, e)
            return
        live = {record.id for record in records}
        with self._trackers_lock:
            trackers = list(self.trackers.values())
        if any([tracker.forget_deleted_record(live) for tracker in trackers]):
            self._follow_service_record(context)
        for record in records:
            if record.hypervisor_hostname in nodenames:
                continue
            LOG.info("Node %s is gone from %s; deleting its record",
                     record.hypervisor_hostname, self.host)
            self._retire_tracker(record.hypervisor_hostname)
            try:
                record.destroy()
            except exception.ComputeHostNotFound:
                pass
            except _EXPECTED_AUDIT_ERRORS as e:
                LOG.error("Cannot delete the record of node %s: %s",
                          record.hypervisor_hostname, getattr(e, "message", e))

    # -- RPC endpoints ---------------------------------------------------

    _refusals = signing.RefusalLog(interval=10.0)

    def _refuse(self, context: Any, action: str, reason: str) -> Exception:
        who = principal_mod.describe(context)
        self._refusals.warn("%s|%s" % (who, action), "Refused: %s may not %s "
                            "on %s: %s", who, action, self.host, reason)
        return exception.Forbidden(principal=who, action=action, reason=reason)

    def _require_admin(self, context: Any, action: str) -> None:
        """Only an admin (or, on a deployment not enforcing signatures yet,
        an unsigned or local caller) may ask a compute to act; raises
        ``Forbidden``."""
        principal = getattr(context, "principal", None)
        if principal is not None and principal.kind == principal_mod.HOST:
            raise self._refuse(context, action, "only an admin may")

    @rpc.expose
    def build_instance(self, context: Any, instance: Any,
                       node: str | None = None) -> Any:
        """Claim resources for ``instance`` on ``node``, spawn it, mark it
        active. Raises ``Forbidden`` for a caller that is not an admin,
        ``ComputeResourcesUnavailable`` (the instance goes to ``error``) and
        the driver's errors (the claim is aborted)."""
        self._require_admin(context, "build an instance")
        try:
            tracker = self._claim_tracker(node or self._pick_node())
            with tracker.instance_claim(context, instance):
                self.driver.spawn(instance)
        except Exception:
            try:
                # A failed build holds nothing: the claim was undone or
                # aborted; the instance is placed nowhere.
                instance.vm_state = fields.VMState.ERROR
                instance.task_state = None
                instance.host = None
                instance.node = None
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
        resources.

        Only for an admin, and only an instance whose record (read again,
        not the object sent) is on this host, with a guest this compute
        made (or none): else ``Forbidden`` and nothing is touched."""
        self._require_admin(context, "terminate an instance")
        uuid = getattr(instance, "uuid", None)
        instance = objects.Instance.get_by_uuid(context, uuid)
        if instance.host != self.host:
            raise self._refuse(context, "terminate an instance",
                               "instance %s is on %s, not on %s"
                               % (uuid, instance.host, self.host))
        if not self.driver.owns_guest(instance.uuid):
            raise self._refuse(context, "terminate an instance",
                               "the guest of %s was not made by novalet on %s"
                               % (uuid, self.host))
        self.driver.destroy(instance, clean_shutdown=clean_shutdown)
        nodename = instance.node
        instance.vm_state = fields.VMState.DELETED
        instance.terminated_at = timeutils.utcnow()
        instance.save()
        instance.destroy()
        with self._trackers_lock:
            tracker = self.trackers.get(nodename)
        if tracker is not None:
            tracker.drop_instance(context, instance)

    def _pick_node(self) -> str:
        nodes = self.driver.get_available_nodes()
        if not nodes:
            raise exception.ComputeResourcesUnavailable(
                node=self.host, reason="the driver reports no node")
        with self._trackers_lock:
            trackers = dict(self.trackers)
        ready = [n for n in nodes if n in trackers
                 and trackers[n].compute_node is not None]
        if not ready:
            return nodes[0]

        def free(n: str) -> int:
            cn = trackers[n].compute_node
            return int(cn.memory_mb - cn.memory_mb_used)

        return max(ready, key=free)
