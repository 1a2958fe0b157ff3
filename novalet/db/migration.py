"""Schema migrations: ``db sync`` and ``db version`` on alembic."""

from __future__ import annotations

import os

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script

from novalet.db import api as db_api

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def _alembic_config() -> alembic_config.Config:
    config = alembic_config.Config(os.path.join(MIGRATIONS_DIR, "alembic.ini"))
    config.set_main_option("script_location", MIGRATIONS_DIR)
    return config


def db_sync(revision: str = "head") -> None:
    """Upgrade the configured database to ``revision`` (default: newest)."""
    engine = db_api.get_engine()
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        alembic_command.upgrade(config, revision)


def db_version() -> str | None:
    """The revision the configured database is at (None: not versioned)."""
    engine = db_api.get_engine()
    with engine.connect() as connection:
        context = alembic_migration.MigrationContext.configure(connection)
        return context.get_current_revision()


def head_revision() -> str | None:
    """The newest revision this code knows."""
    script = alembic_script.ScriptDirectory.from_config(_alembic_config())
    return script.get_current_head()


def is_known_revision(revision: str) -> bool:
    """Whether ``revision`` is one of this release's migrations."""
    script = alembic_script.ScriptDirectory.from_config(_alembic_config())
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False
