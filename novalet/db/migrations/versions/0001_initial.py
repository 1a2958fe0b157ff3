"""Release 1 schema: services, compute_nodes, instances, migrations.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def _soft_delete_columns():
    return [
        sa.Column("created_at", sa.DateTime, nullable=True),
        sa.Column("updated_at", sa.DateTime, nullable=True),
        sa.Column("deleted_at", sa.DateTime, nullable=True),
        sa.Column("deleted", sa.Integer, nullable=False),
    ]


def upgrade():
    op.create_table(
        "services",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("binary", sa.String(255), nullable=False),
        sa.Column("topic", sa.String(255)),
        sa.Column("report_count", sa.Integer, nullable=False),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.String(255)),
        sa.Column("forced_down", sa.Boolean, nullable=False),
        sa.Column("last_seen_up", sa.DateTime),
        sa.Column("version", sa.Integer, nullable=False),
        *_soft_delete_columns(),
        sa.UniqueConstraint("host", "binary", "deleted",
                            name="uniq_services0host0binary0deleted"),
        sa.UniqueConstraint("uuid", name="uniq_services0uuid"),
    )
    op.create_index("services_host_idx", "services", ["host"])

    op.create_table(
        "compute_nodes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("service_id", sa.Integer),
        sa.Column("host", sa.String(255), nullable=False),
        sa.Column("hypervisor_hostname", sa.String(255), nullable=False),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("local_gb", sa.Integer, nullable=False),
        sa.Column("vcpus_used", sa.Integer, nullable=False),
        sa.Column("memory_mb_used", sa.Integer, nullable=False),
        sa.Column("local_gb_used", sa.Integer, nullable=False),
        sa.Column("free_ram_mb", sa.Integer),
        sa.Column("free_disk_gb", sa.Integer),
        sa.Column("disk_available_least", sa.Integer),
        sa.Column("current_workload", sa.Integer),
        sa.Column("running_vms", sa.Integer),
        sa.Column("hypervisor_type", sa.String(255), nullable=False),
        sa.Column("hypervisor_version", sa.Integer, nullable=False),
        sa.Column("cpu_info", sa.Text, nullable=False),
        sa.Column("host_ip", sa.String(39)),
        sa.Column("stats", sa.Text),
        sa.Column("metrics", sa.Text),
        sa.Column("cpu_allocation_ratio", sa.Float),
        sa.Column("ram_allocation_ratio", sa.Float),
        sa.Column("disk_allocation_ratio", sa.Float),
        *_soft_delete_columns(),
        sa.UniqueConstraint(
            "host", "hypervisor_hostname", "deleted",
            name="uniq_compute_nodes0host0hypervisor_hostname0deleted"),
        sa.UniqueConstraint("uuid", name="uniq_compute_nodes0uuid"),
    )
    op.create_index("compute_nodes_host_idx", "compute_nodes", ["host"])

    op.create_table(
        "instances",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("host", sa.String(255)),
        sa.Column("node", sa.String(255)),
        sa.Column("vcpus", sa.Integer, nullable=False),
        sa.Column("memory_mb", sa.Integer, nullable=False),
        sa.Column("root_gb", sa.Integer, nullable=False),
        sa.Column("ephemeral_gb", sa.Integer, nullable=False),
        sa.Column("vm_state", sa.String(255), nullable=False),
        sa.Column("task_state", sa.String(255)),
        sa.Column("launched_at", sa.DateTime),
        sa.Column("terminated_at", sa.DateTime),
        *_soft_delete_columns(),
        sa.UniqueConstraint("uuid", "deleted",
                            name="uniq_instances0uuid0deleted"),
    )
    op.create_index("instances_host_node_idx", "instances", ["host", "node"])

    op.create_table(
        "migrations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(36), nullable=False),
        sa.Column("instance_uuid", sa.String(36), nullable=False),
        sa.Column("source_compute", sa.String(255)),
        sa.Column("dest_compute", sa.String(255)),
        sa.Column("source_node", sa.String(255)),
        sa.Column("dest_node", sa.String(255)),
        sa.Column("status", sa.String(255), nullable=False),
        sa.Column("migration_type", sa.String(255), nullable=False),
        sa.Column("old_vcpus", sa.Integer, nullable=False),
        sa.Column("old_memory_mb", sa.Integer, nullable=False),
        sa.Column("old_disk_gb", sa.Integer, nullable=False),
        sa.Column("new_vcpus", sa.Integer, nullable=False),
        sa.Column("new_memory_mb", sa.Integer, nullable=False),
        sa.Column("new_disk_gb", sa.Integer, nullable=False),
        *_soft_delete_columns(),
        sa.UniqueConstraint("uuid", name="uniq_migrations0uuid"),
    )
    op.create_index("migrations_source_idx", "migrations",
                    ["source_compute", "source_node", "status"])
    op.create_index("migrations_dest_idx", "migrations",
                    ["dest_compute", "dest_node", "status"])
