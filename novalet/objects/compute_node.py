"""ComputeNode: one hypervisor node's resources, kept true by its tracker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from oslo_serialization import jsonutils
from oslo_utils import versionutils

from novalet import objects
from novalet.db import compute_nodes as db_nodes
from novalet.db import models
from novalet.objects import base, fields, retry, stored_json

if TYPE_CHECKING:
    from novalet.objects.monitor_metric import MonitorMetricList


@base.NovaletObjectRegistry.register
class ComputeNode(base.NovaletPersistentObject, base.NovaletObject):
    """Resources of one node (``hypervisor_hostname``) of a compute ``host``.

    ``free_ram_mb`` and ``free_disk_gb`` may go negative when allocation
    ratios over-commit the node; totals and usage may not.
    """

    # Version 1.0: initial version (release 1)
    # Version 1.1: added pci_device_pools; metrics became a MonitorMetricList
    #              (1.0 carries them as a JSON string) (release 2)
    VERSION = "1.1"
    #: Its table (the conductor checks fields against its columns).
    obj_db_table = models.ComputeNode

    fields = {
        "id": fields.IntegerField(read_only=True),
        "uuid": fields.StrictUUIDField(),
        "service_id": fields.IntegerField(nullable=True, default=None),  # type: ignore[arg-type]
        "host": fields.HostnameField(),
        "hypervisor_hostname": fields.HostnameField(),
        "vcpus": fields.NonNegativeIntegerField(),
        "memory_mb": fields.NonNegativeIntegerField(),
        "local_gb": fields.NonNegativeIntegerField(),
        "vcpus_used": fields.NonNegativeIntegerField(default=0),
        "memory_mb_used": fields.NonNegativeIntegerField(default=0),
        "local_gb_used": fields.NonNegativeIntegerField(default=0),
        "free_ram_mb": fields.IntegerField(nullable=True, default=None),  # type: ignore[arg-type]
        "free_disk_gb": fields.IntegerField(nullable=True, default=None),  # type: ignore[arg-type]
        "disk_available_least": fields.IntegerField(nullable=True,
                                                    default=None),  # type: ignore[arg-type]
        "current_workload": fields.NonNegativeIntegerField(nullable=True,
                                                           default=None),  # type: ignore[arg-type]
        "running_vms": fields.NonNegativeIntegerField(nullable=True,
                                                      default=None),  # type: ignore[arg-type]
        "hypervisor_type": fields.StringField(),
        "hypervisor_version": fields.NonNegativeIntegerField(),
        "cpu_info": fields.StringField(),
        "host_ip": fields.IPAddressField(nullable=True, default=None),
        "stats": fields.DictOfStringsField(default={}),
        "metrics": fields.ObjectField("MonitorMetricList", nullable=True,
                                      default=None),
        "pci_device_pools": fields.ObjectField("PciDevicePoolList",
                                               nullable=True, default=None),
        "cpu_allocation_ratio": fields.NonNegativeFloatField(nullable=True,
                                                             default=None),  # type: ignore[arg-type]
        "ram_allocation_ratio": fields.NonNegativeFloatField(nullable=True,
                                                             default=None),  # type: ignore[arg-type]
        "disk_allocation_ratio": fields.NonNegativeFloatField(nullable=True,
                                                              default=None),  # type: ignore[arg-type]
        **base.NovaletPersistentObject.fields,
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    id: int
    metrics: MonitorMetricList | None

    obj_db_columns = {"pci_device_pools": "pci_stats"}

    #: Fields stored as JSON text: how each column reads (a value that does
    #: not parse reads as empty, logged, marked changed: ``stored_json``).
    obj_json_fields: dict[str, stored_json.Parser] = {
        "stats": stored_json.parse_dict_of_strings,
        "metrics": lambda text: objects.MonitorMetricList.from_json(text),
        "pci_device_pools": lambda text: objects.PciDevicePoolList.from_json(text),
    }

    @classmethod
    def obj_corrupt_columns(cls, row: Any) -> list[str]:
        """The JSON columns of the database ``row`` that do not parse."""
        return stored_json.corrupt_columns(row, {
            cls.obj_db_columns.get(name, name): parse
            for name, parse in cls.obj_json_fields.items()})

    @staticmethod
    def _from_db_object(context: Any, obj: Any, db_row: Any) -> Any:
        # A corrupt JSON column reads as empty and stays marked changed, so
        # the next save() writes a valid value over it.
        obj._obj_corrupt_fields = set()
        try:
            base.NovaletObject._from_db_object(context, obj, db_row)
            for name in obj._obj_corrupt_fields:
                obj._changed_fields.add(name)
        finally:
            del obj._obj_corrupt_fields
        return obj

    # Used only when a backport has no version manifest to go by.
    obj_relationships = {"metrics": [("1.1", "1.0")],
                         "pci_device_pools": [("1.1", "1.0")]}

    def obj_db_to_field(self, name: str, value: Any) -> Any:
        parse = self.obj_json_fields.get(name)
        if parse is not None:
            empty = parse(None)
            return stored_json.read(
                self, "compute_nodes", name, self.obj_db_columns.get(name, name),
                value, parse, lambda: empty,
                row_label=" (%s/%s)" % tuple(
                    getattr(self, attr) if self.obj_attr_is_set(attr) else "?"
                    for attr in ("host", "hypervisor_hostname")))
        if name == "host_ip" and value is not None:
            return str(value)
        return value

    def obj_field_to_db(self, name: str, value: Any) -> Any:
        if name == "stats":
            return jsonutils.dumps(value)
        if name == "host_ip" and value is not None:
            return str(value)
        if name in ("metrics", "pci_device_pools"):
            return None if value is None else value.to_json()
        return value

    def obj_make_compatible(self, primitive: dict[str, Any],
                            target_version: str) -> None:
        metrics = self.metrics if self.obj_attr_is_set("metrics") else None
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop("pci_device_pools", None)
            if "metrics" in primitive or metrics is not None:
                primitive["metrics"] = (None if metrics is None
                                        else metrics.to_json())

    @classmethod
    def _obj_from_primitive(cls, context: Any, objver: str,
                            primitive: dict[str, Any]) -> Any:
        data = primitive.get("novalet_object.data")
        if (objver == "1.0" and isinstance(data, dict)
                and isinstance(data.get("metrics"), str)):
            # 1.0 carried metrics as JSON text: read them as objects.
            primitive = dict(primitive)
            primitive["novalet_object.data"] = dict(
                data, metrics=objects.MonitorMetricList.from_json(
                    data["metrics"]).obj_to_primitive())
        return super()._obj_from_primitive(context, objver, primitive)

    @classmethod
    @base.remotable
    def get_by_id(cls, context: Any, node_id: int) -> ComputeNode:
        """The live node with this id; raises ``ComputeHostNotFound``."""
        return cls.obj_from_db(context, db_nodes.compute_node_get(context, node_id))

    @classmethod
    @base.remotable
    def get_by_host_and_nodename(cls, context: Any, host: str,
                                 nodename: str) -> ComputeNode:
        """The live node ``nodename`` of ``host``; raises
        ``ComputeHostNotFound``."""
        row = db_nodes.compute_node_get_by_host_and_nodename(context, host,
                                                           nodename)
        return cls.obj_from_db(context, row)

    @retry.caller_assigns_uuid
    @base.remotable
    def create(self) -> None:
        """Insert this node; raises ``ComputeHostExists`` on a live duplicate."""
        self.obj_db_create(db_nodes.compute_node_create)

    @base.skip_if_unchanged
    @base.remotable
    def save(self) -> None:
        """Write the changed fields only (one UPDATE); raises
        ``ComputeHostNotFound``."""
        self.obj_db_update(db_nodes.compute_node_update)

    @base.remotable
    def destroy(self) -> None:
        """Soft-delete this node; raises ``ComputeHostNotFound``."""
        self.obj_db_destroy(db_nodes.compute_node_destroy)


@base.NovaletObjectRegistry.register
class ComputeNodeList(base.ObjectListBase):
    # Version 1.0: initial version (release 1)
    # Version 1.1: ComputeNode 1.1 (release 2)
    VERSION = "1.1"
    child_versions = {"1.0": "1.0", "1.1": "1.1"}

    fields = {"objects": fields.ListOfObjectsField("ComputeNode")}

    @classmethod
    @base.remotable
    def get_all(cls, context: Any) -> ComputeNodeList:
        """Every live compute node."""
        rows = db_nodes.compute_node_get_all(context, replica=True)
        return cls.obj_from_db(context, rows)

    @classmethod
    @base.remotable
    def get_by_host(cls, context: Any, host: str) -> ComputeNodeList:
        """The live nodes of ``host`` (empty if none)."""
        rows = db_nodes.compute_node_get_all(context, host=host)
        return cls.obj_from_db(context, rows)
