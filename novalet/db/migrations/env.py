"""alembic environment: runs on the connection novalet hands it."""

from alembic import context

from novalet.db import models

target_metadata = models.Base.metadata


def run_migrations_online():
    connection = context.config.attributes.get("connection")
    if connection is None:
        from novalet.db import engine as db_engine
        with db_engine.get_engine().begin() as connection:
            _run(connection)
    else:
        _run(connection)


def _run(connection):
    context.configure(connection=connection, target_metadata=target_metadata,
                      version_table=context.config.attributes.get(
                          "version_table", "alembic_version"),
                      render_as_batch=connection.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_offline():
    """Print the SQL instead of running it (``alembic upgrade --sql``)."""
    context.configure(url=context.config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
