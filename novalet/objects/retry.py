"""What a lost reply means for a remotable ``create()``.

A caller whose ``create()`` timed out cannot tell whether the row was
written. ``caller_assigns_uuid`` makes the call safe to send again: the
object's uuid is chosen by the caller, before the call leaves, so a resent
``create()`` carries the same uuid, and the database layer answers a create
whose uuid already names the same row with that row instead of a second one
(``novalet.db.rows.idempotent_create``).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_utils import uuidutils

F = TypeVar("F", bound=Callable[..., Any])


def caller_assigns_uuid(fn: F) -> F:
    """Give the object a uuid (if it has none) where ``create()`` is called.

    Goes outside ``@remotable`` and keeps its ``remotable`` mark (as
    ``skip_if_unchanged`` does), so it runs on the caller, not the conductor.
    """

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.obj_attr_is_set("id") and not self.obj_attr_is_set("uuid"):
            self.uuid = uuidutils.generate_uuid()
        return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]
