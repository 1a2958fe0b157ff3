"""Objects of the test app appa: a Widget (the same class name as the
other test app's) with a nested Gear, and a WidgetList."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from novalet import db
from novalet.objects import base, fields

NAMESPACE = "appa"

#: appa's own table (tests/apps/appa_migrations creates it).
WIDGETS = sa.Table("appa_widgets", sa.MetaData(),
                   sa.Column("id", sa.Integer, primary_key=True),
                   sa.Column("name", sa.String(255)),
                   sa.Column("size", sa.Integer))


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
    def store(self) -> int:
        """A row in appa_widgets (``novalet.db.writer`` as a context
        manager); returns its id."""
        with db.writer.using(self._context) as session:
            result = session.execute(sa.insert(WIDGETS).values(
                name=self.name, size=self.size))
            return int(result.inserted_primary_key[0])

    @classmethod
    @base.remotable
    @db.reader
    def stored_sizes(cls, context: Any) -> list[int]:
        """The sizes stored (``novalet.db.reader`` as a decorator)."""
        return [row.size for row in context.session.execute(
            sa.select(WIDGETS.c.size).order_by(WIDGETS.c.id))]

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
