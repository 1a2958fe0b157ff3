"""The resource tracker: keeps one node's ``ComputeNode`` record true.

One tracker per node, built only on objects (no database access). Its lock
is per node and is only ever held across calls that have a timeout
(``rpc_response_timeout``); a call that fails releases it. The driver is
asked outside the lock.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

from oslo_concurrency import lockutils
from oslo_config import cfg
from oslo_log import log as logging

from novalet import exception, objects
from novalet.compute import migration_usage
from novalet.compute.claims import Claim, Usage, check_fits
from novalet.metrics import compute as metrics
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


_RATIOS = ("cpu_allocation_ratio", "ram_allocation_ratio",
           "disk_allocation_ratio")


def allocation_ratios(conf: cfg.ConfigOpts) -> dict[str, float]:
    """``[compute] *_allocation_ratio``; raises ``ConfigurationError`` for a
    ratio that is not above 0 (nothing could ever be claimed)."""
    ratios = {name: float(getattr(conf.compute, name)) for name in _RATIOS}
    for name, value in ratios.items():
        if not value > 0:
            raise exception.ConfigurationError(
                reason="[compute] %s must be greater than 0, not %s"
                % (name, value))
    return ratios


def reserved_usage(conf: cfg.ConfigOpts) -> Usage:
    """What ``reserved_host_cpus`` / ``_memory_mb`` / ``_disk_mb`` keep for
    the host (the disk in whole GiB, rounded up)."""
    return Usage(conf.reserved_host_cpus, conf.reserved_host_memory_mb,
                 math.ceil(conf.reserved_host_disk_mb / 1024))


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
        #: instance uuid -> what its newest migration holds here.
        self.migrations: dict[str, Usage] = {}
        self.orphan_usage = Usage()
        self.orphans: list[str] = []
        self._lock_name = "novalet-resources-%s-%s" % (host, nodename)
        self._stale = False
        self._retired = False

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
        """What the guests take: instances, migrations, orphans (memory)."""
        return _total(self.tracked.values()) + \
            _total(self.migrations.values()) + self.orphan_usage

    def retire(self) -> None:
        """The driver no longer reports this node: refuse claims from now
        on. Waits for a claim or audit in progress to finish."""
        with self._locked():
            self._retired = True

    # -- the audit -------------------------------------------------------

    @metrics.audit
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
        self.migrations = self._count_migrations(
            ctxt, migrations, {i.uuid: i for i in instances})
        known = set(self.tracked) | set(self.migrations)
        orphans = [g for g in guests if g["uuid"] not in known]
        self.orphans = [g["uuid"] for g in orphans]
        # As Nova: a guest nobody placed is charged its memory only.
        self.orphan_usage = _total(Usage(memory_mb=g["memory_mb"])
                                   for g in orphans)
        if orphans:
            LOG.warning("Node %s runs %d guest(s) the database does not know: "
                        "%s", self.nodename, len(orphans),
                        ", ".join(self.orphans))
        for name in _VIEW_FIELDS:
            _set(node, name, view[name])
        self._set_ratios(node)
        my_ip = self.conf.my_ip
        if not node.obj_attr_is_set("host_ip") or str(node.host_ip) != my_ip:
            node.host_ip = my_ip  # the field holds a netaddr address
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
                 len(self.migrations))
        node.save()

    def _count_migrations(self, ctxt: Any, migrations: Any,
                          instances: dict[str, Any]) -> dict[str, Usage]:
        """instance uuid -> what its newest migration holds on this node
        (see ``migration_usage``); instances not on this node are looked up,
        and the migrations of deleted or unknown ones skipped."""
        counted: dict[str, Usage] = {}
        for uuid, migration in migration_usage.newest_per_instance(
                migrations).items():
            instance = instances.get(uuid)
            if instance is None:
                try:
                    instance = objects.Instance.get_by_uuid(ctxt, uuid)
                except exception.InstanceNotFound:
                    LOG.debug("Migration %s of unknown or deleted instance "
                              "%s holds nothing", migration.uuid, uuid)
                    continue
            if instance.vm_state == fields.VMState.DELETED:
                continue
            usage = migration_usage.usage_on_node(
                migration, instance, self.host, self.nodename,
                uuid in self.tracked)
            if usage is not None:
                counted[uuid] = usage
        return counted

    def _ensure_compute_node(self, ctxt: Any, view: dict[str, Any]) -> Any:
        if self.compute_node is not None and not self._stale:
            return self.compute_node
        try:
            node = objects.ComputeNode.get_by_host_and_nodename(
                ctxt, self.host, self.nodename)
        except exception.ComputeHostNotFound:
            node = objects.ComputeNode(
                ctxt, host=self.host, hypervisor_hostname=self.nodename,
                service_id=self.service_id, host_ip=self.conf.my_ip,
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
        for name, value in allocation_ratios(self.conf).items():
            _set(node, name, value)

    def _apply_usage(self, node: Any) -> None:
        used = self.used() + reserved_usage(self.conf)
        _set(node, "vcpus_used", max(used.vcpus, 0))
        _set(node, "memory_mb_used", max(used.memory_mb, 0))
        _set(node, "local_gb_used", max(used.disk_gb, 0))
        _set(node, "free_ram_mb", node.memory_mb - node.memory_mb_used)
        _set(node, "free_disk_gb", node.local_gb - node.local_gb_used)
        _set(node, "running_vms", len(self.tracked) + len(self.orphans))

    # -- claims ----------------------------------------------------------

    @metrics.claim
    def instance_claim(self, ctxt: Any, instance: Any) -> Claim:
        """Reserve ``instance``'s resources on this node and place it here.

        All or nothing: raises ``ComputeResourcesUnavailable`` when it does
        not fit within the allocation ratios, the node was never audited or
        is no longer reported (nothing is written then); when writing the
        instance or the node fails, what was written is undone and the error
        raised.
        """
        usage = Usage.of_instance(instance)
        with self._locked(), self._refresh_on_failure():
            node = self.compute_node
            if self._retired:
                raise exception.ComputeResourcesUnavailable(
                    node=self.nodename,
                    reason="the driver no longer reports this node")
            if node is None:
                raise exception.ComputeResourcesUnavailable(
                    node=self.nodename, reason="node not audited yet")
            self._set_ratios(node)
            check_fits(node, self.used(), usage, reserved_usage(self.conf))
            placed_at = (instance.host, instance.node)
            instance.host = self.host
            instance.node = self.nodename
            try:
                instance.save()
                self.tracked[instance.uuid] = usage
                self._apply_usage(node)
                node.save()
            except Exception:
                self._undo_claim(instance, placed_at)
                raise
        LOG.info("Claimed vcpus=%d memory=%dMB disk=%dGB for %s on %s",
                 usage.vcpus, usage.memory_mb, usage.disk_gb, instance.uuid,
                 self.nodename)
        return Claim(instance.uuid, usage,
                     lambda uuid: self._abort(ctxt, instance))

    def _undo_claim(self, instance: Any, placed_at: tuple[Any, Any]) -> None:
        """Take back a claim whose writes failed half way (lock held): the
        node's figures in memory, the instance's host/node in the database
        (its first save may have landed even if it failed to answer)."""
        self.tracked.pop(instance.uuid, None)
        if self.compute_node is not None:
            self._apply_usage(self.compute_node)
        instance.host, instance.node = placed_at
        try:
            instance.save()
        except Exception as e:
            LOG.error("Cannot take %s back off %s after a failed claim: %s",
                      instance.uuid, self.nodename, getattr(e, "message", e))
        LOG.warning("The claim of %s on %s failed; undone", instance.uuid,
                    self.nodename)

    def _abort(self, ctxt: Any, instance: Any) -> None:
        with self._locked(), self._refresh_on_failure():
            self.tracked.pop(instance.uuid, None)
            instance.host = None
            instance.node = None
            try:
                instance.save()
            finally:
                self._drop(instance.uuid)
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
