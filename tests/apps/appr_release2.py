"""Release 2 of the test app appr: Sprocket 1.1 adds a colour."""

from __future__ import annotations

from typing import Any

from oslo_utils import versionutils

from novalet import app
from novalet.objects import base, fields

NAMESPACE = "appr"


@base.NovaletObjectRegistry.register
class Sprocket(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    # Version 1.0: initial version (release 1)
    # Version 1.1: added colour (release 2)
    VERSION = "1.1"
    fields = {"size": fields.IntegerField(),
              "colour": fields.StringField(nullable=True)}

    def obj_make_compatible(self, primitive: dict[str, Any],
                            target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        if versionutils.convert_version_to_tuple(target_version) < (1, 1):
            primitive.pop("colour", None)

    @base.remotable
    def seen(self) -> list[str]:
        """What the conductor received: ``VERSION`` and the fields set."""
        return [self.VERSION] + sorted(f for f in self.fields
                                       if self.obj_attr_is_set(f))

    @classmethod
    @base.remotable
    def seen_class(cls, context: Any, sprocket: Sprocket) -> list[str]:
        """The same for a Sprocket passed to a class method."""
        return sprocket.seen()


APP = app.App(name=NAMESPACE, object_modules=[__name__],
              releases={"1": {"Sprocket": "1.0"}, "2": {"Sprocket": "1.1"}})
