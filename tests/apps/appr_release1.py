"""Release 1 of the test app appr (its conductor side in the process
test): a Sprocket with a size."""

from __future__ import annotations

from typing import Any

from novalet import app
from novalet.objects import base, fields

NAMESPACE = "appr"


@base.NovaletObjectRegistry.register
class Sprocket(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    # Version 1.0: initial version (release 1)
    VERSION = "1.0"
    fields = {"size": fields.IntegerField()}

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
              releases={"1": {"Sprocket": "1.0"}})
