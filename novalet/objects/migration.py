"""Migration: an instance moving between nodes, holding resources on both."""

from __future__ import annotations

from typing import Any

from oslo_utils import versionutils

from novalet.db import migration_records as db_migrations
from novalet.db import models
from novalet.objects import base, fields, retry


@base.NovaletObjectRegistry.register
class Migration(base.NovaletPersistentObject, base.NovaletObject):
    """A move of ``instance_uuid``; the source keeps the ``old_*`` sizes and
    the destination claims the ``new_*`` sizes until the move is done."""

    # Version 1.0: initial version (release 1)
    # Version 1.1: status "completed", a live migration's last state; 1.0
    #              reads it as "done" (release 3)
    VERSION = "1.1"
    #: Its table (the conductor checks fields against its columns).
    obj_db_table = models.Migration

    fields = {
        "id": fields.IntegerField(read_only=True),
        "uuid": fields.StrictUUIDField(),
        "instance_uuid": fields.StrictUUIDField(),
        "source_compute": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "dest_compute": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "source_node": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "dest_node": fields.StringField(nullable=True, default=None),  # type: ignore[arg-type]
        "status": fields.MigrationStatusField(
            default=fields.MigrationStatus.PRE_MIGRATING),
        "migration_type": fields.MigrationTypeField(
            default=fields.MigrationType.MIGRATION),
        "old_vcpus": fields.NonNegativeIntegerField(default=0),
        "old_memory_mb": fields.NonNegativeIntegerField(default=0),
        "old_disk_gb": fields.NonNegativeIntegerField(default=0),
        "new_vcpus": fields.NonNegativeIntegerField(default=0),
        "new_memory_mb": fields.NonNegativeIntegerField(default=0),
        "new_disk_gb": fields.NonNegativeIntegerField(default=0),
        **base.NovaletPersistentObject.fields,
    }

    # Field attributes read here, for mypy (oslo.versionedobjects sets them).
    id: int

    def obj_make_compatible(self, primitive: dict[str, Any],
                            target_version: str) -> None:
        super().obj_make_compatible(primitive, target_version)
        if (versionutils.convert_version_to_tuple(target_version) < (1, 1)
                and primitive.get("status")
                == fields.MigrationStatus.COMPLETED):
            # Releases 1 and 2 know no "completed"; "done" is their word
            # for a move that holds nothing any more.
            primitive["status"] = fields.MigrationStatus.DONE

    @classmethod
    @base.remotable
    def get_by_id(cls, context: Any, migration_id: int) -> Migration:
        """The live migration with this id; raises ``MigrationNotFound``."""
        return cls.obj_from_db(context, db_migrations.migration_get(context, migration_id))

    @retry.caller_assigns_uuid
    @base.remotable
    def create(self) -> None:
        """Insert this migration."""
        self.obj_db_create(db_migrations.migration_create)

    @base.skip_if_unchanged
    @base.remotable
    def save(self) -> None:
        """Write the changed fields only; raises ``MigrationNotFound``."""
        self.obj_db_update(db_migrations.migration_update)

    @base.remotable
    def destroy(self) -> None:
        """Soft-delete this migration; raises ``MigrationNotFound``."""
        self.obj_db_destroy(db_migrations.migration_destroy)


@base.NovaletObjectRegistry.register
class MigrationList(base.ObjectListBase):
    # Version 1.0: initial version (release 1)
    # Version 1.1: Migration 1.1 (release 3)
    VERSION = "1.1"
    child_versions = {"1.0": "1.0", "1.1": "1.1"}

    fields = {"objects": fields.ListOfObjectsField("Migration")}

    @classmethod
    @base.remotable
    def get_in_progress_by_host_and_node(cls, context: Any, host: str,
                                         node: str) -> MigrationList:
        """Migrations not yet done whose source or destination is this node."""
        rows = db_migrations.migration_get_in_progress_by_host_and_node(
            context, host, node, fields.MigrationStatus.DONE_STATES)
        return cls.obj_from_db(context, rows)
