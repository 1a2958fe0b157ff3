"""The alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

from alembic import autogenerate
from alembic import migration as alembic_migration

from novalet.db import engine as db_engine
from novalet.db import migration, models


def test_migrations_match_models(database):
    assert migration.db_version() == migration.head_revision()
    with db_engine.get_engine().connect() as connection:
        context = alembic_migration.MigrationContext.configure(
            connection, opts={"compare_type": True})
        diff = autogenerate.compare_metadata(context, models.Base.metadata)
    assert diff == []


def test_db_sync_is_idempotent(database):
    migration.db_sync()
    migration.db_sync()
    assert migration.db_version() == migration.head_revision()

