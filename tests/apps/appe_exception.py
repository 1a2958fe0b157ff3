"""The errors of the test app appe: declared in ``App(exceptions=...)``,
so its ``NovaletException`` subclasses cross RPC as themselves."""

from __future__ import annotations

from novalet import exception


class AppeError(exception.NovaletException):
    """Base of appe's errors."""
    msg_fmt = "appe failed: %(reason)s"


class GadgetJammed(AppeError):
    """A gadget cannot turn."""
    msg_fmt = "Gadget %(name)s is jammed at %(turns)d turns"
    code = 409


class NotNovalet(ValueError):
    """An error of the declared module that is no NovaletException: it
    arrives as RemoteError, as any undeclared error does."""
