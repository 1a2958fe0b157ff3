"""Objects of the test app appl, declared as the base offers it: one
``App.register`` names the namespace for every class, a list on
``ObjectListBase``, objects built from rows with the row helper. Its Widget
has the name an oslo.versionedobjects library (``ovo_library``) holds in
that library's own registry."""

from __future__ import annotations

import types
from typing import Any

from novalet import app
from novalet.objects import base, fields

APP = app.App(name="appl", object_modules=[__name__])


@APP.register
class Gear(base.NovaletObject):
    VERSION = "1.0"
    fields = {"teeth": fields.IntegerField()}


@APP.register
class Widget(base.NovaletObject):
    VERSION = "1.0"
    fields = {"id": fields.IntegerField(), "name": fields.StringField(),
              "size": fields.IntegerField(),
              "gear": fields.ObjectField("Gear", nullable=True)}
    obj_db_columns = {"size": "widget_size"}
    obj_extra_fields = ["gear"]

    def obj_db_to_field(self, name: str, value: Any) -> Any:
        return value.strip() if name == "name" else value

    @staticmethod
    def _from_db_object(context: Any, obj: Any, db_row: Any) -> Any:
        obj.gear = Gear(teeth=db_row.widget_size * 2)
        return base.NovaletObject._from_db_object(context, obj, db_row)

    @base.remotable
    def grow_and_forget(self, by: int) -> None:
        """Changes its size and leaves the change pending (what
        ``check_no_pending_changes`` catches)."""
        self.size += by

    @base.remotable
    def grow(self, by: int) -> None:
        self.size += by
        self.obj_reset_changes()


@APP.register
class WidgetList(base.ObjectListBase):
    VERSION = "1.0"
    fields = {"objects": fields.ListOfObjectsField("Widget")}

    @classmethod
    @base.remotable
    def from_rows(cls, context: Any, rows: list[dict[str, Any]]) -> WidgetList:
        """The rows (as a database would give them) as a list."""
        return cls.obj_from_db(context, [types.SimpleNamespace(**r) for r in rows])
