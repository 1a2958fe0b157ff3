"""Schema migrations: ``db sync`` and ``db version`` on alembic.

Each app with ``migrations`` has its own lineage in its own version table
(``App.version_table``: the core keeps ``alembic_version``, an app ``X``
has ``alembic_version_X``); ``db_sync()`` upgrades the core first, then
each loaded app. An app's ``env.py`` is one call: ``run_env()``.
"""

from __future__ import annotations

import os
from typing import Any

from alembic import command as alembic_command
from alembic import config as alembic_config
from alembic import migration as alembic_migration
from alembic import script as alembic_script

from novalet.app import CORE
from novalet.db import engine as db_engine

MIGRATIONS_DIR = os.path.join(os.path.dirname(__file__), "migrations")


def _app(name: str) -> Any:
    from novalet import app

    if name == CORE and CORE not in app.loaded():
        return None  # the core's lineage is known without loading apps
    return app.get(name)


def _alembic_config(app_name: str = CORE) -> alembic_config.Config:
    config = alembic_config.Config(os.path.join(MIGRATIONS_DIR, "alembic.ini"))
    app = _app(app_name)
    if app_name == CORE:
        config.set_main_option("script_location", MIGRATIONS_DIR)
    else:
        if not app.migrations:
            from novalet import exception

            raise exception.AppLoadError(app=app_name,
                                         reason="it declares no migrations")
        config.set_main_option("script_location", app.migrations)
    config.attributes["version_table"] = (
        "alembic_version" if app_name == CORE else app.version_table)
    return config


def lineages() -> list[str]:
    """The core, then every loaded app that has migrations."""
    from novalet import app

    return [CORE] + [name for name, a in app.loaded().items()
                     if name != CORE and a.migrations]


def db_sync(revision: str = "head", app: str | None = None) -> None:
    """Upgrade the configured database to ``revision`` (default: newest):
    the core, then each app's lineage (``app``: that one only; a revision
    other than head needs it, or applies to the core)."""
    names = [app] if app else lineages()
    if revision != "head" and not app:
        names = [CORE]
    engine = db_engine.get_engine()
    for name in names:
        config = _alembic_config(name)
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            alembic_command.upgrade(config, revision)


def db_version(app: str = CORE) -> str | None:
    """The revision the configured database is at in ``app``'s lineage
    (None: not versioned)."""
    engine = db_engine.get_engine()
    table = _alembic_config(app).attributes["version_table"]
    with engine.connect() as connection:
        context = alembic_migration.MigrationContext.configure(
            connection, opts={"version_table": table})
        return context.get_current_revision()


def head_revision(app: str = CORE) -> str | None:
    """The newest revision of ``app``'s lineage this code knows."""
    script = alembic_script.ScriptDirectory.from_config(_alembic_config(app))
    return script.get_current_head()


def is_known_revision(revision: str, app: str = CORE) -> bool:
    """Whether ``revision`` is one of ``app``'s migrations."""
    script = alembic_script.ScriptDirectory.from_config(_alembic_config(app))
    try:
        return script.get_revision(revision) is not None
    except Exception:
        return False


def run_env() -> None:
    """The body of an app's alembic ``env.py``: run its migrations on the
    connection novalet hands it, in its own version table."""
    from alembic import context

    config = context.config
    table = config.attributes.get("version_table")
    connection = config.attributes.get("connection")

    def run(connection: Any) -> None:
        context.configure(connection=connection, version_table=table,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            context.run_migrations()

    if connection is None:
        with db_engine.get_engine().begin() as connection:
            run(connection)
    else:
        run(connection)
