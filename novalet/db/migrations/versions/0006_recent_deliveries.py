"""Release 4: services.recent_deliveries, the delivery keys of the last
signed heartbeats applied to a service (novalet.db.deliveries), so the
heartbeat's own UPDATE recognises a request delivered again instead of a
row of rpc_deliveries written in its transaction.

Expand only: a nullable column release 3 code neither reads nor writes
(release 3 conductors keep using rpc_deliveries, which stays).

Revision ID: 0006_recent_deliveries
Revises: 0005_deliveries
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0006_recent_deliveries"
down_revision = "0005_deliveries"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("services", sa.Column("recent_deliveries", sa.String(528),
                                        nullable=True))
