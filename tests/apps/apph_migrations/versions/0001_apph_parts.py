"""apph: the parts table, host-scoped by its column ``owner``."""

import sqlalchemy as sa
from alembic import op

revision = "apph_0001"
down_revision = None


def upgrade():
    op.create_table(
        "apph_parts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(255), nullable=True),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("size", sa.Integer, nullable=False))
