"""Release 3: rpc_deliveries, the signed requests a non-idempotent write has
applied (a heartbeat), so one the broker delivers twice counts once.

Expand only: a new table release 1 and 2 code never reads.

Revision ID: 0005_deliveries
Revises: 0004_auth
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_deliveries"
down_revision = "0004_auth"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        "rpc_deliveries",
        sa.Column("delivery_key", sa.String(64), primary_key=True),
        sa.Column("seen_at", sa.DateTime, nullable=False))
    op.create_index("rpc_deliveries_seen_at_idx", "rpc_deliveries", ["seen_at"])
