"""PciDevicePool: a pool of identical PCI devices on a compute node."""

from __future__ import annotations

from typing import Any

from oslo_serialization import jsonutils

from novalet.objects import base, fields, stored_json


@base.NovaletObjectRegistry.register
class PciDevicePool(base.NovaletObject):
    """``count`` devices of ``vendor_id``:``product_id`` sharing ``tags``."""

    # Version 1.0: initial version (release 2)
    VERSION = "1.0"

    fields = {
        "vendor_id": fields.StringField(),
        "product_id": fields.StringField(),
        "count": fields.NonNegativeIntegerField(),
        "tags": fields.DictOfStringsField(default={}),
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    vendor_id: str
    product_id: str
    count: int
    tags: dict[str, str]

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> PciDevicePool:
        return cls(vendor_id=str(value["vendor_id"]),
                   product_id=str(value["product_id"]),
                   count=int(value["count"]),
                   tags={str(k): str(v) for k, v in value.get("tags", {}).items()})

    def to_dict(self) -> dict[str, Any]:
        return {"vendor_id": self.vendor_id, "product_id": self.product_id,
                "count": self.count, "tags": dict(self.tags)}


@base.NovaletObjectRegistry.register
class PciDevicePoolList(base.ObjectListBase):
    # Version 1.0: initial version (release 2)
    VERSION = "1.0"

    fields = {"objects": fields.ListOfObjectsField("PciDevicePool")}

    @classmethod
    def from_dicts(cls, values: list[dict[str, Any]]) -> PciDevicePoolList:
        pools = cls(objects=[PciDevicePool.from_dict(v) for v in values])
        # A new list is a value, not a set of pending edits: only the field
        # holding it is marked changed.
        pools.obj_reset_changes(recursive=True)
        return pools

    def to_json(self) -> str:
        return jsonutils.dumps([pool.to_dict() for pool in self.objects])

    @classmethod
    def from_json(cls, text: str | None) -> PciDevicePoolList:
        """Read the stored form; empty text is no pools. Raises
        ``InvalidJSONValue`` for anything but a JSON list of pools (as
        ``MonitorMetricList.from_json`` does)."""
        return stored_json.list_object(cls, text, "pool")  # type: ignore[no-any-return]
