"""Release 3 (placeholder on the auth branch: the release's own migration
replaces this file at merge).

Revision ID: 0003_release_3
Revises: 0002_release_2
Create Date: 2026-12-01
"""

revision = "0003_release_3"
down_revision = "0002_release_2"
branch_labels = None
depends_on = None


def upgrade():
    pass
