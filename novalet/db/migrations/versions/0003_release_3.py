"""Release 3: services.app_releases, the release of each app a service runs.

Expand only: the column is nullable, so release-2 code keeps working on this
schema during a rolling upgrade (it neither reads nor writes it).

Revision ID: 0003_release_3
Revises: 0002_release_2
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_release_3"
down_revision = "0002_release_2"
branch_labels = None
depends_on = None


def upgrade():
    op.add_column("services", sa.Column("app_releases", sa.Text,
                                        nullable=True))
