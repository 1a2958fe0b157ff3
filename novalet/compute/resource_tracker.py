"""The resource tracker: keeps one node's ``ComputeNode`` record true.

One tracker per node, built only on objects (no database access). Its lock
is per node and is only ever held across calls that have a timeout
(``rpc_response_timeout``); a call that fails releases it. The driver is
asked outside the lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from oslo_concurrency import lockutils
from oslo_config import cfg
from oslo_log import log as logging

from novalet import exception, objects
from novalet.compute.claims import Claim, Usage, check_fits
from novalet.objects import fields
from novalet.virt import driver as virt_driver

LOG = logging.getLogger(__name__)

#: Columns copied from the driver's resource view as they are.
_VIEW_FIELDS = ("vcpus", "memory_mb", "local_gb", "hypervisor_type",
                "hypervisor_version", "cpu_info", "disk_available_least")


def _set(obj: Any, name: str, value: Any) -> None:
    """Set a field only if it differs, so an unchanged node sends nothing."""
    if not obj.obj_attr_is_set(name) or getattr(obj, name) != value:
        setattr(obj, name, value)


def _set_list(obj: Any, name: str, value: Any) -> None:
    """``_set`` for object lists, compared by content."""
    current = getattr(obj, name) if obj.obj_attr_is_set(name) else None
    if current is None or current.to_json() != value.to_json():
        setattr(obj, name, value)


def _total(usages: Any) -> Usage:
    total = Usage()
    for usage in usages:
        total = total + usage
    return total


class ResourceTracker:
    """Audits and claims the resources of ``nodename`` on ``host``."""

    def __init__(self, conf: cfg.ConfigOpts, host: str,
                 driver: virt_driver.ComputeDriver, nodename: str,
                 service_id: int | None = None) -> None:
        self.conf = conf
        self.host = host
        self.driver = driver
        self.nodename = nodename
        self.service_id = service_id
        self.compute_node: Any = None
        self.tracked: dict[str, Usage] = {}
        self.migration_usage = Usage()
        self.orphan_usage = Usage()
        self.orphans: list[str] = []
        self._lock_name = "novalet-resources-%s-%s" % (host, nodename)
        self._stale = False

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with lockutils.lock(self._lock_name):
            yield

    def relink(self, ctxt: Any, service_id: int) -> None:
        """Point the node record at the service record ``service_id`` (the
        service registered again); a record deleted with the old service is
        recreated, linked, at the next audit. Raises nothing: what could not
        be written now, the next audit writes."""
        with self._locked():
            self.service_id = service_id
            node = self.compute_node
            if node is None or self._stale:
                return
            _set(node, "service_id", service_id)
            try:
                node.save()
            except exception.ComputeHostNotFound:
                self.compute_node = None
            except (exception.RPCUnavailable, exception.DatabaseUnavailable) as e:
                self._stale = True
                LOG.warning("Node %s keeps its old service id until the next "
                            "audit: %s", self.nodename, e.message)

    def forget_deleted_record(self, live_ids: set[int]) -> bool:
        """Drop the cached record if its id is not among ``live_ids`` (it was
        deleted under us, e.g. by ``service delete --force``, and nothing was
        saved since): the next audit creates it again. Returns whether it
        dropped it."""
        with self._locked():
            node = self.compute_node
            if node is None or node.id in live_ids:
                return False
            LOG.warning("The record of node %s was deleted while it runs; it "
                        "is created again at the next audit", self.nodename)
            self.compute_node = None
            return True

    def used(self) -> Usage:
        return _total(self.tracked.values()) + self.migration_usage + \
            self.orphan_usage

    # -- the audit -------------------------------------------------------

    def update_available_resource(self, ctxt: Any) -> None:
        """Read the node from the driver and make its record agree.

        Raises ``InvalidResourceView`` (naming missing keys), the driver's
        ``HypervisorUnavailable``, or ``RPCTimeout`` when the conductor does
        not answer; the lock is released in every case.
        """
        view = self.driver.get_available_resource(self.nodename)
        virt_driver.check_resource_view(self.nodename, view)
        guests = self.driver.list_guests(self.nodename)
        pci_pools = objects.PciDevicePoolList.from_dicts(
            self.driver.get_pci_device_pools(self.nodename))
        metrics = objects.MonitorMetricList.from_dicts(
            self.driver.get_metrics(self.nodename))
        with self._locked(), self._refresh_on_failure():
            self._audit(ctxt, view, guests, pci_pools, metrics)

    @contextlib.contextmanager
    def _refresh_on_failure(self) -> Iterator[None]:
        """After a failed call, re-read the record at the next audit.

        A call that timed out may still be carried out later with the view
        it had then; the cached record can no longer be trusted to say
        what the database holds.
        """
        try:
            yield
        except exception.ComputeHostNotFound:
            self.compute_node = None  # deleted behind our back: recreate
            raise
        except exception.RPCUnavailable:
            self._stale = True
            raise

    def _audit(self, ctxt: Any, view: dict[str, Any], guests: list[Any],
               pci_pools: Any, metrics: Any) -> None:
        node = self._ensure_compute_node(ctxt, view)
        instances = objects.InstanceList.get_by_host_and_node(
            ctxt, self.host, self.nodename)
        migrations = objects.MigrationList.get_in_progress_by_host_and_node(
            ctxt, self.host, self.nodename)
        live = [i for i in instances if i.vm_state != fields.VMState.DELETED]
        self.tracked = {i.uuid: Usage.of_instance(i) for i in live}
        self.migration_usage = _total(self._migration_usage(m)
                                      for m in migrations
                                      if m.instance_uuid not in self.tracked)
        known = set(self.tracked) | {m.instance_uuid for m in migrations}
        orphans = [g for g in guests if g["uuid"] not in known]
        self.orphans = [g["uuid"] for g in orphans]
        self.orphan_usage = _total(
            Usage(g["vcpus"], g["memory_mb"], g["disk_gb"]) for g in orphans)
        if orphans:
            LOG.warning("Node %s runs %d guest(s) the database does not know: "
                        "%s", self.nodename, len(orphans),
                        ", ".join(self.orphans))
        for name in _VIEW_FIELDS:
            _set(node, name, view[name])
        stats = {"num_instances": str(len(live)),
                 "num_orphans": str(len(orphans))}
        for state in fields.VMState.ALL:
            count = sum(1 for i in live if i.vm_state == state)
            if count:
                stats["num_vm_%s" % state] = str(count)
        _set(node, "stats", stats)
        _set_list(node, "pci_device_pools", pci_pools)
        _set_list(node, "metrics", metrics)
        _set(node, "current_workload",
             sum(1 for i in live if i.task_state is not None))
        self._apply_usage(node)
        LOG.info("Final resource view: host=%s node=%s vcpus=%d/%d "
                 "memory=%d/%dMB disk=%d/%dGB instances=%d orphans=%d "
                 "migrations=%d", self.host, self.nodename, node.vcpus_used,
                 node.vcpus, node.memory_mb_used, node.memory_mb,
                 node.local_gb_used, node.local_gb, len(live), len(orphans),
                 len(migrations))
        node.save()

    def _migration_usage(self, migration: Any) -> Usage:
        if (migration.dest_compute == self.host
                and migration.dest_node == self.nodename):
            return Usage(migration.new_vcpus, migration.new_memory_mb,
                         migration.new_disk_gb)
        return Usage(migration.old_vcpus, migration.old_memory_mb,
                     migration.old_disk_gb)

    def _ensure_compute_node(self, ctxt: Any, view: dict[str, Any]) -> Any:
        if self.compute_node is not None and not self._stale:
            return self.compute_node
        try:
            node = objects.ComputeNode.get_by_host_and_nodename(
                ctxt, self.host, self.nodename)
        except exception.ComputeHostNotFound:
            node = objects.ComputeNode(
                ctxt, host=self.host, hypervisor_hostname=self.nodename,
                service_id=self.service_id,
                **{name: view[name] for name in _VIEW_FIELDS})
            self._set_ratios(node)
            try:
                node.create()
                LOG.info("Created compute node record %s for %s/%s",
                         node.uuid, self.host, self.nodename)
            except exception.ComputeHostExists:
                node = objects.ComputeNode.get_by_host_and_nodename(
                    ctxt, self.host, self.nodename)
        self._set_ratios(node)
        if self.service_id is not None:
            _set(node, "service_id", self.service_id)
        self.compute_node = node
        self._stale = False
        return node

    def _set_ratios(self, node: Any) -> None:
        compute = self.conf.compute
        _set(node, "cpu_allocation_ratio", compute.cpu_allocation_ratio)
        _set(node, "ram_allocation_ratio", compute.ram_allocation_ratio)
        _set(node, "disk_allocation_ratio", compute.disk_allocation_ratio)

    def _apply_usage(self, node: Any) -> None:
        used = self.used()
        _set(node, "vcpus_used", max(used.vcpus, 0))
        _set(node, "memory_mb_used", max(used.memory_mb, 0))
        _set(node, "local_gb_used", max(used.disk_gb, 0))
        _set(node, "free_ram_mb", node.memory_mb - node.memory_mb_used)
        _set(node, "free_disk_gb", node.local_gb - node.local_gb_used)
        _set(node, "running_vms", len(self.tracked) + len(self.orphans))

    # -- claims ----------------------------------------------------------

    def instance_claim(self, ctxt: Any, instance: Any) -> Claim:
        """Reserve ``instance``'s resources on this node and place it here.

        Raises ``ComputeResourcesUnavailable`` when it does not fit within
        the allocation ratios (nothing is changed then).
        """
        usage = Usage.of_instance(instance)
        with self._locked(), self._refresh_on_failure():
            node = self.compute_node
            if node is None:
                raise exception.ComputeResourcesUnavailable(
                    node=self.nodename, reason="node not audited yet")
            self._set_ratios(node)
            check_fits(node, self.used(), usage)
            instance.host = self.host
            instance.node = self.nodename
            instance.save()
            self.tracked[instance.uuid] = usage
            self._apply_usage(node)
            node.save()
        LOG.info("Claimed vcpus=%d memory=%dMB disk=%dGB for %s on %s",
                 usage.vcpus, usage.memory_mb, usage.disk_gb, instance.uuid,
                 self.nodename)
        return Claim(instance.uuid, usage,
                     lambda uuid: self._abort(ctxt, instance))

    def _abort(self, ctxt: Any, instance: Any) -> None:
        with self._locked(), self._refresh_on_failure():
            self._drop(instance.uuid)
            instance.host = None
            instance.node = None
            instance.save()
        LOG.info("Aborted the claim of %s on %s", instance.uuid, self.nodename)

    def drop_instance(self, ctxt: Any, instance: Any) -> None:
        """Give back what ``instance`` held here (it was deleted or moved)."""
        with self._locked(), self._refresh_on_failure():
            self._drop(instance.uuid)

    def _drop(self, uuid: str) -> None:
        self.tracked.pop(uuid, None)
        if self.compute_node is not None:
            self._apply_usage(self.compute_node)
            self.compute_node.save()
