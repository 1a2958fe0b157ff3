"""Release 2: services.started_at, compute_nodes.pci_stats.

Expand only: both columns are nullable, so release-1 code keeps working on
this schema during a rolling upgrade (it neither reads nor writes them).

Revision ID: 0002_release_2
Revises: 0001_initial
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_release_2"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("services", sa.Column("started_at", sa.DateTime,
                                        nullable=True))
    op.add_column("compute_nodes", sa.Column("pci_stats", sa.Text,
                                             nullable=True))
