"""A database of its own for each test of ``novalet.testing``
(``novalet_db``).

Without ``NOVALET_TEST_DATABASE_URL``, or with an SQLite URL: a new SQLite
file in the test's temporary directory. With a PostgreSQL or MariaDB/MySQL
URL (``postgresql+psycopg2://user@host/db``, ``mysql+pymysql://user@host/db``):
the URL names a server and an existing database to connect to; each test
gets a new database ``novalet_test_<random>`` on that server (the user
needs the right to create databases), dropped after the test, so nothing
one test writes is seen by the next.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from typing import Any

#: The environment variable naming the test database server.
ENV = "NOVALET_TEST_DATABASE_URL"


class TestDatabase:
    """One test's database: ``url`` to use, ``drop()`` after the test."""

    __test__ = False  # not a test class, whatever pytest's naming rules say

    def __init__(self, url: str, admin_url: str | None = None,
                 name: str | None = None) -> None:
        self.url = url
        self._admin_url = admin_url
        self._name = name

    def drop(self) -> None:
        """Drop the database made for the test (nothing for SQLite: the
        file goes with the test's temporary directory)."""
        if self._admin_url is None or self._name is None:
            return
        with _admin(self._admin_url) as connection:
            import sqlalchemy as sa

            if connection.dialect.name == "postgresql":
                # A connection pool the test left open would block the drop.
                connection.execute(sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"),
                    {"name": self._name})
            connection.execute(sa.text("DROP DATABASE IF EXISTS %s"
                                       % self._name))


@contextlib.contextmanager
def _admin(url: str) -> Iterator[Any]:
    """An autocommit connection to ``url`` (CREATE and DROP DATABASE run
    outside a transaction), closed with its engine."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool,
                              isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            yield connection
    finally:
        engine.dispose()


def create(tmp_path: Any) -> TestDatabase:
    """A new database for one test (see the module's docstring)."""
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = os.environ.get(ENV)
    if not url or make_url(url).get_backend_name() == "sqlite":
        return TestDatabase("sqlite:///%s" % os.path.join(str(tmp_path),
                                                          "novalet.db"))
    server = make_url(url)
    name = "novalet_test_%s" % uuid.uuid4().hex[:16]
    with _admin(url) as connection:
        connection.execute(sa.text("CREATE DATABASE %s" % name))
    return TestDatabase(server.set(database=name).render_as_string(
        hide_password=False), admin_url=url, name=name)
