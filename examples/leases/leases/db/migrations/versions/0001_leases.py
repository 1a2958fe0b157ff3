"""The leases table (lineage "leases", table alembic_version_leases)."""

import sqlalchemy as sa
from alembic import op

revision = "leases_0001"
down_revision = None


def upgrade():
    op.create_table(
        "leases",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ip", sa.String(64), nullable=False, unique=True),
        sa.Column("mac", sa.String(32), nullable=False),
        sa.Column("hostname", sa.String(255), nullable=True),
        sa.Column("client_id", sa.String(255), nullable=True),
        sa.Column("subnet_cidr", sa.String(64), nullable=False),
        sa.Column("subnet_gateway", sa.String(64), nullable=False),
        sa.Column("expires_at", sa.Integer, nullable=False))
