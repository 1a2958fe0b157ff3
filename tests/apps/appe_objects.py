"""Objects of the test app appe: a Gadget whose remotable methods raise
appe's own errors (``tests.apps.appe_exception``)."""

from __future__ import annotations

from typing import Any

from novalet import exception
from novalet.objects import base, fields
from tests.apps import appe_exception

NAMESPACE = "appe"


class UndeclaredError(exception.NovaletException):
    """A NovaletException of a module appe does not declare."""
    msg_fmt = "undeclared: %(reason)s"


@base.NovaletObjectRegistry.register
class Gadget(base.NovaletObject):
    OBJ_PROJECT_NAMESPACE = NAMESPACE
    VERSION = "1.0"
    fields = {"name": fields.StringField()}

    @base.remotable
    def turn(self, turns: int) -> int:
        """Raises ``GadgetJammed`` past 3 turns."""
        if turns > 3:
            raise appe_exception.GadgetJammed(name=self.name, turns=turns)
        return turns

    @classmethod
    @base.remotable
    def fail(cls, context: Any, kind: str) -> None:
        """Raises the error ``kind`` names, from a class method."""
        if kind == "jammed":
            raise appe_exception.GadgetJammed(name="c", turns=9)
        if kind == "not-novalet":
            raise appe_exception.NotNovalet("a plain ValueError subclass")
        if kind == "undeclared":
            raise UndeclaredError(reason="elsewhere")
        raise ValueError("no such kind %s" % kind)
