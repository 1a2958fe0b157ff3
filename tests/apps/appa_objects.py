"""Objects of the test app appa: a Widget (the same class name as the
other test app's) with a nested Gear, and a WidgetList."""

from __future__ import annotations

from typing import Any

from novalet.objects import base, fields

NAMESPACE = "appa"


@base.NovaletObjectRegistry.register
class Gear(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    VERSION = "1.0"
    fields = {"teeth": fields.IntegerField()}


@base.NovaletObjectRegistry.register
class Widget(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    VERSION = "1.0"
    fields = {"name": fields.StringField(), "size": fields.IntegerField(),
              "gear": fields.ObjectField("Gear", nullable=True)}

    @classmethod
    @base.remotable
    def make(cls, context: Any, name: str, size: int) -> Widget:
        return cls(context, name="%s:%s" % (NAMESPACE, name), size=size,
                   gear=Gear(teeth=size * 2))

    @base.remotable
    def grow(self, by: int) -> str:
        self.size += by
        self.gear.teeth += 1
        return NAMESPACE


@base.NovaletObjectRegistry.register
class WidgetList(base.ovo_base.ObjectListBase, base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    VERSION = "1.0"
    fields = {"objects": fields.ListOfObjectsField("Widget")}

    @classmethod
    @base.remotable
    def of(cls, context: Any, sizes: list[int]) -> WidgetList:
        return cls(context, objects=[
            Widget(context, name="w%d" % s, size=s, gear=None) for s in sizes])
