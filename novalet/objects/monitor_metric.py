"""MonitorMetric: one typed measurement of a compute node."""

from __future__ import annotations

from typing import Any

from oslo_serialization import jsonutils

from novalet.objects import base, fields, stored_json


@base.NovaletObjectRegistry.register
class MonitorMetric(base.NovaletObject):
    """``name`` = ``value`` as reported by ``source``."""

    # Version 1.0: initial version (release 2)
    VERSION = "1.0"

    fields = {
        "name": fields.StringField(),
        "value": fields.FloatField(),
        "source": fields.StringField(),
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    name: str
    value: float
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "source": self.source}


@base.NovaletObjectRegistry.register
class MonitorMetricList(base.ObjectListBase):
    # Version 1.0: initial version (release 2)
    VERSION = "1.0"

    fields = {"objects": fields.ListOfObjectsField("MonitorMetric")}

    @classmethod
    def from_dicts(cls, values: list[dict[str, Any]]) -> MonitorMetricList:
        metrics = cls(objects=[MonitorMetric(name=str(v["name"]),
                                             value=float(v["value"]),
                                             source=str(v.get("source", "")))
                               for v in values])
        # A new list is a value, not a set of pending edits: only the field
        # holding it is marked changed.
        metrics.obj_reset_changes(recursive=True)
        return metrics

    def to_json(self) -> str:
        """The release-1 form: a JSON list in a string."""
        return jsonutils.dumps([m.to_dict() for m in self.objects])

    @classmethod
    def from_json(cls, text: str | None) -> MonitorMetricList:
        """Read the stored (or release-1) form; empty text is no metrics.
        Raises ``InvalidJSONValue`` for anything but a JSON list of metrics
        (as ``PciDevicePoolList.from_json`` does; a stored value is read
        through ``novalet.objects.stored_json``)."""
        return stored_json.list_object(cls, text, "metric")  # type: ignore[no-any-return]
