"""SQLAlchemy 2 models of the novalet database.

Rows are soft-deleted: ``deleted`` is 0 for a live row and the row's id once
deleted, so unique constraints that include ``deleted`` hold among live rows
only. The schema itself is owned by the alembic migrations in
``novalet/db/migrations``; a test checks the two agree.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from oslo_db.sqlalchemy import models as oslo_models
from sqlalchemy import orm


class Base(orm.DeclarativeBase, oslo_models.ModelBase):
    """Declarative base with the timestamp and soft-delete columns."""

    created_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime, nullable=True)
    updated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime, nullable=True)
    deleted_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime, nullable=True)
    deleted: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False, default=0)


class Service(Base):
    __tablename__ = "services"
    __table_args__ = (
        sa.UniqueConstraint("host", "binary", "deleted",
                            name="uniq_services0host0binary0deleted"),
        sa.UniqueConstraint("uuid", name="uniq_services0uuid"),
        sa.Index("services_host_idx", "host"),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    binary: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    topic: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    report_count: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False, default=0)
    disabled: orm.Mapped[bool] = orm.mapped_column(
        sa.Boolean, nullable=False, default=False)
    disabled_reason: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    forced_down: orm.Mapped[bool] = orm.mapped_column(
        sa.Boolean, nullable=False, default=False)
    last_seen_up: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime)
    version: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False, default=0)
    # Release 2 (0002_release_2): when the running process started.
    started_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime)
    # Release 3 (0003_release_3): {app: release} this service runs, JSON.
    app_releases: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    # Release 3 (0004_auth): how the service's last heartbeat reached the
    # database: host, admin, unsigned or local (novalet.db.scope.how); not
    # an object field (novalet-status upgrade check reads it).
    last_auth: orm.Mapped[str | None] = orm.mapped_column(sa.String(16))
    # Release 4 (0006_recent_deliveries): the delivery keys of the last 16
    # signed heartbeats applied to the row, so a request the broker delivers
    # again is applied once (novalet.db.deliveries); not an object field.
    recent_deliveries: orm.Mapped[str | None] = orm.mapped_column(sa.String(528))


class ComputeNode(Base):
    __tablename__ = "compute_nodes"
    __table_args__ = (
        sa.UniqueConstraint("host", "hypervisor_hostname", "deleted",
                            name="uniq_compute_nodes0host0hypervisor_hostname0deleted"),
        sa.UniqueConstraint("uuid", name="uniq_compute_nodes0uuid"),
        sa.Index("compute_nodes_host_idx", "host"),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    service_id: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    host: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    hypervisor_hostname: orm.Mapped[str] = orm.mapped_column(
        sa.String(255), nullable=False)
    vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    memory_mb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    local_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    vcpus_used: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    memory_mb_used: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    local_gb_used: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    free_ram_mb: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    free_disk_gb: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    disk_available_least: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    current_workload: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    running_vms: orm.Mapped[int | None] = orm.mapped_column(sa.Integer)
    hypervisor_type: orm.Mapped[str] = orm.mapped_column(
        sa.String(255), nullable=False)
    hypervisor_version: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    cpu_info: orm.Mapped[str] = orm.mapped_column(sa.Text, nullable=False)
    host_ip: orm.Mapped[str | None] = orm.mapped_column(sa.String(39))
    stats: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    metrics: orm.Mapped[str | None] = orm.mapped_column(sa.Text)
    cpu_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    ram_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(sa.Float)
    disk_allocation_ratio: orm.Mapped[float | None] = orm.mapped_column(
        sa.Float)
    # Release 2 (0002_release_2): PCI device pools as JSON.
    pci_stats: orm.Mapped[str | None] = orm.mapped_column(sa.Text)


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (
        sa.UniqueConstraint("uuid", "deleted", name="uniq_instances0uuid0deleted"),
        sa.Index("instances_host_node_idx", "host", "node"),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    host: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    memory_mb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    root_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    ephemeral_gb: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    vm_state: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    task_state: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    launched_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime)
    terminated_at: orm.Mapped[datetime.datetime | None] = orm.mapped_column(
        sa.DateTime)


#: The ``status`` of a migration that no longer holds resources; any other
#: is in progress (the host scope of ``novalet.db.scope`` lets the two ends
#: of an in-progress migration move its instance). The objects'
#: ``fields.MigrationStatus`` names these values (``DONE_STATES``).
#: ``completed``: the last state of a live migration (Migration 1.1).
MIGRATION_DONE_STATES = ("confirmed", "reverted", "error", "failed",
                         "cancelled", "done", "completed")


class Migration(Base):
    __tablename__ = "migrations"
    __table_args__ = (
        sa.UniqueConstraint("uuid", name="uniq_migrations0uuid"),
        sa.Index("migrations_source_idx", "source_compute", "source_node",
                 "status"),
        sa.Index("migrations_dest_idx", "dest_compute", "dest_node", "status"),
    )

    id: orm.Mapped[int] = orm.mapped_column(sa.Integer, primary_key=True)
    uuid: orm.Mapped[str] = orm.mapped_column(sa.String(36), nullable=False)
    instance_uuid: orm.Mapped[str] = orm.mapped_column(
        sa.String(36), nullable=False)
    source_compute: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    dest_compute: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    source_node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    dest_node: orm.Mapped[str | None] = orm.mapped_column(sa.String(255))
    status: orm.Mapped[str] = orm.mapped_column(sa.String(255), nullable=False)
    migration_type: orm.Mapped[str] = orm.mapped_column(
        sa.String(255), nullable=False)
    old_vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    old_memory_mb: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    old_disk_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    new_vcpus: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)
    new_memory_mb: orm.Mapped[int] = orm.mapped_column(
        sa.Integer, nullable=False)
    new_disk_gb: orm.Mapped[int] = orm.mapped_column(sa.Integer, nullable=False)


#: The signed requests a non-idempotent write applied (0005_deliveries):
#: ``delivery_key`` is ``novalet.auth.delivery_key``; rows older than twice the
#: signature window are removed (a request that old is refused anyway).
#: A plain table: no timestamps or soft delete. Release 3's conductors write
#: it; release 4 keeps the keys on the rows written instead
#: (``Service.recent_deliveries``) and neither reads nor writes it.
RPC_DELIVERIES = sa.Table(
    "rpc_deliveries", Base.metadata,
    sa.Column("delivery_key", sa.String(64), primary_key=True),
    sa.Column("seen_at", sa.DateTime, nullable=False),
    sa.Index("rpc_deliveries_seen_at_idx", "seen_at"))
