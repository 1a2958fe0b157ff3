"""Field types and fields of novalet objects.

Two layers, as in oslo.versionedobjects: a *type* coerces and (de)serializes a
value; a *field* wraps a type with ``nullable`` and ``default``. Everything in
``oslo_versionedobjects.fields`` is re-exported, so objects import only this.
"""

from __future__ import annotations

import uuid as uuid_lib
from typing import Any

from oslo_versionedobjects.fields import *  # noqa: F401,F403
from oslo_versionedobjects.fields import AutoTypedField, BaseEnumField, Enum, FieldType, String

from novalet.db import models as db_models


class StrictUUID(FieldType):
    """A UUID string; anything that does not parse as a UUID is refused.

    (oslo.versionedobjects' own UUIDField only warns on a bad value.)
    """

    @staticmethod
    def coerce(obj: Any, attr: str, value: Any) -> str:
        try:
            return str(uuid_lib.UUID(str(value)))
        except (TypeError, ValueError, AttributeError):
            raise ValueError("%r is not a UUID" % (value,))


class StrictUUIDField(AutoTypedField):
    AUTO_TYPE = StrictUUID()


class VMState(Enum):
    BUILDING = "building"
    ACTIVE = "active"
    STOPPED = "stopped"
    ERROR = "error"
    DELETED = "deleted"
    ALL = (BUILDING, ACTIVE, STOPPED, ERROR, DELETED)

    def __init__(self) -> None:
        super().__init__(valid_values=VMState.ALL)


class VMStateField(BaseEnumField):
    AUTO_TYPE = VMState()


class MigrationType(Enum):
    MIGRATION = "migration"
    RESIZE = "resize"
    LIVE_MIGRATION = "live-migration"
    EVACUATION = "evacuation"
    ALL = (MIGRATION, RESIZE, LIVE_MIGRATION, EVACUATION)

    def __init__(self) -> None:
        super().__init__(valid_values=MigrationType.ALL)


class MigrationTypeField(BaseEnumField):
    AUTO_TYPE = MigrationType()


class MigrationStatus(Enum):
    PRE_MIGRATING = "pre-migrating"
    MIGRATING = "migrating"
    POST_MIGRATING = "post-migrating"
    FINISHED = "finished"
    #: A migration in one of these states no longer holds resources. The
    #: database's tuple: its host scope reads the same one.
    DONE_STATES = db_models.MIGRATION_DONE_STATES
    #: COMPLETED: the last state of a live migration (Migration 1.1).
    CONFIRMED, REVERTED, ERROR, FAILED, CANCELLED, DONE, COMPLETED = DONE_STATES
    ALL = (PRE_MIGRATING, MIGRATING, POST_MIGRATING, FINISHED) + DONE_STATES

    def __init__(self) -> None:
        super().__init__(valid_values=MigrationStatus.ALL)


class MigrationStatusField(BaseEnumField):
    AUTO_TYPE = MigrationStatus()


class Hostname(String):
    """A non-empty host or node name without surrounding whitespace."""

    @staticmethod
    def coerce(obj: Any, attr: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            raise ValueError("a non-empty name is required, not %r" % (value,))
        if value != value.strip():
            raise ValueError("%r has surrounding whitespace" % (value,))
        return value


class HostnameField(AutoTypedField):
    AUTO_TYPE = Hostname()


class StrictBoolean(FieldType):
    """A boolean; refuses values that are not ``True``/``False``/0/1.

    (oslo.versionedobjects' Boolean turns any value into ``bool(value)``, so
    the string ``"no"`` would become ``True``.)
    """

    @staticmethod
    def coerce(obj: Any, attr: str, value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ValueError("a boolean is required, not %r" % (value,))


class BooleanField(AutoTypedField):  # type: ignore[no-redef]
    AUTO_TYPE = StrictBoolean()
