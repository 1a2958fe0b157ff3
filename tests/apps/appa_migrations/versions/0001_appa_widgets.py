"""appa: the widgets table (its own lineage, alembic_version_appa)."""

import sqlalchemy as sa
from alembic import op

revision = "appa_0001"
down_revision = None


def upgrade():
    op.create_table(
        "appa_widgets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("size", sa.Integer, nullable=False))
