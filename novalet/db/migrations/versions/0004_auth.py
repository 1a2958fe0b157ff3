"""Release 3: services.last_auth, how a service's last heartbeat arrived
(``host``, ``admin``, ``unsigned`` or ``local``), for ``novalet-status
upgrade check`` ("every service signs").

Expand only: a nullable column release 1 and 2 code neither reads nor
writes.

Revision ID: 0004_auth
Revises: 0003_release_3
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_auth"
down_revision = "0003_release_3"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("services", sa.Column("last_auth", sa.String(16),
                                        nullable=True))
