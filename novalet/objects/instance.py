"""Instance: a guest placed on a node of a compute host."""

from __future__ import annotations

from typing import Any

from novalet.db import instances as db_instances
from novalet.db import models
from novalet.objects import base, fields, retry


@base.NovaletObjectRegistry.register
class Instance(base.NovaletPersistentObject, base.NovaletObject):
    """A guest and the resources it takes on ``host``/``node``."""

    # Version 1.0: initial version
    VERSION = "1.0"
    #: Its table (the conductor checks fields against its columns).
    obj_db_table = models.Instance

    fields = {
        "id": fields.IntegerField(read_only=True),
        "uuid": fields.StrictUUIDField(),
        "host": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "node": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "vcpus": fields.NonNegativeIntegerField(),
        "memory_mb": fields.NonNegativeIntegerField(),
        "root_gb": fields.NonNegativeIntegerField(default=0),
        "ephemeral_gb": fields.NonNegativeIntegerField(default=0),
        "vm_state": fields.VMStateField(default=fields.VMState.BUILDING),
        "task_state": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "launched_at": fields.DateTimeField(nullable=True, default=None),
        "terminated_at": fields.DateTimeField(nullable=True, default=None),
        **base.NovaletPersistentObject.fields,
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    id: int
    root_gb: int
    ephemeral_gb: int

    @property
    def disk_gb(self) -> int:
        return int(self.root_gb) + int(self.ephemeral_gb)

    @classmethod
    @base.remotable
    def get_by_uuid(cls, context: Any, uuid: str) -> Instance:
        """The live instance ``uuid``; raises ``InstanceNotFound``."""
        return cls.obj_from_db(context, db_instances.instance_get_by_uuid(context, uuid))

    @retry.caller_assigns_uuid
    @base.remotable
    def create(self) -> None:
        """Insert this instance; raises ``InstanceExists``."""
        self.obj_db_create(db_instances.instance_create)

    @base.skip_if_unchanged
    @base.remotable
    def save(self) -> None:
        """Write the changed fields only; raises ``InstanceNotFound``."""
        self.obj_db_update(db_instances.instance_update)

    @base.remotable
    def destroy(self) -> None:
        """Soft-delete this instance; raises ``InstanceNotFound``."""
        self.obj_db_destroy(db_instances.instance_destroy)


@base.NovaletObjectRegistry.register
class InstanceList(base.ObjectListBase):
    # Version 1.0: initial version
    VERSION = "1.0"

    fields = {"objects": fields.ListOfObjectsField("Instance")}

    @classmethod
    @base.remotable
    def get_by_host_and_node(cls, context: Any, host: str,
                             node: str) -> InstanceList:
        """The live instances on ``node`` of ``host``."""
        rows = db_instances.instance_get_all(context, host=host, node=node)
        return cls.obj_from_db(context, rows)

    @classmethod
    @base.remotable
    def get_by_host(cls, context: Any, host: str) -> InstanceList:
        """The live instances on every node of ``host``."""
        rows = db_instances.instance_get_all(context, host=host)
        return cls.obj_from_db(context, rows)

    @classmethod
    @base.remotable
    def get_all(cls, context: Any) -> InstanceList:
        """Every live instance."""
        rows = db_instances.instance_get_all(context, replica=True)
        return cls.obj_from_db(context, rows)
