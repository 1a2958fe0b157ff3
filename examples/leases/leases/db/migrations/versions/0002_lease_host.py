"""The host whose agent handed a lease out (release 3): the leases table is
host-scoped by it (``App(host_scoped={"leases": "host"})``)."""

import sqlalchemy as sa
from alembic import op

revision = "leases_0002"
down_revision = "leases_0001"


def upgrade():
    op.add_column("leases", sa.Column("host", sa.String(255), nullable=True))
