"""Real services for tests and benchmarks: a private database per run on
SQLite, PostgreSQL or MariaDB, a private RabbitMQ vhost, Redis.

Each helper raises ``ServiceUnavailable`` when its service cannot be reached;
``tests/conftest.py`` turns that into a skip, or into a failure when
``NOVALET_REQUIRE_SERVICES=1``.
"""

from __future__ import annotations

import datetime
import os
import shutil
import socket
import subprocess
import uuid
from typing import Any

import sqlalchemy as sa

PG_ADMIN_URL = os.environ.get(
    "NOVALET_TEST_PG_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/test")
MYSQL_ADMIN_URL = os.environ.get(
    "NOVALET_TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
RABBIT_HOST = os.environ.get("NOVALET_TEST_RABBIT_HOST", "127.0.0.1")
REDIS_URL = os.environ.get("NOVALET_TEST_REDIS_URL", "redis://127.0.0.1:6379")


class ServiceUnavailable(Exception):
    pass


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class Database:
    """A database made for one test run; ``drop()`` removes it."""

    def __init__(self, backend: str, url: str, admin_url: str | None,
                 name: str, path: str | None = None) -> None:
        self.backend = backend
        self.url = url
        self.admin_url = admin_url
        self.name = name
        self.path = path
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)

    def clean(self, keep_host: str | None = None) -> None:
        """Delete every row (the schema stays), but the service records of
        ``keep_host`` (a conductor process that outlives the test)."""
        with self.engine.begin() as conn:
            for table in ("migrations", "instances", "compute_nodes",
                          "services", "rpc_deliveries"):
                if not sa.inspect(conn).has_table(table):
                    continue
                if table == "services" and keep_host:
                    conn.execute(sa.text("DELETE FROM services WHERE host <> :h"),
                                 {"h": keep_host})
                else:
                    conn.execute(sa.text("DELETE FROM %s" % table))

    def query(self, sql: str, **params: Any) -> list[Any]:
        if self.backend == "sqlite":
            # Bound as sqlite3's default datetime adapter did (deprecated
            # since Python 3.12): the text SQLAlchemy's DateTime reads.
            params = {k: v.isoformat(" ") if isinstance(v, datetime.datetime) else v
                      for k, v in params.items()}
        with self.engine.begin() as conn:
            result = conn.execute(sa.text(sql), params)
            return list(result) if result.returns_rows else []

    def drop(self) -> None:
        self.engine.dispose()
        if self.backend == "sqlite":
            if self.path:
                for suffix in ("", "-wal", "-shm"):
                    try:
                        os.remove(self.path + suffix)
                    except FileNotFoundError:
                        pass
            return
        admin = sa.create_engine(self.admin_url, poolclass=sa.pool.NullPool,
                                 isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                if self.backend == "postgresql":
                    conn.execute(sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                        " WHERE datname = :n AND pid <> pg_backend_pid()"),
                        {"n": self.name})
                conn.execute(sa.text("DROP DATABASE IF EXISTS %s" % self.name))
        finally:
            admin.dispose()


def provision_database(backend: str, directory: str) -> Database:
    """A new, empty database on ``backend`` (sqlite, postgresql, mysql)."""
    name = "novalet_test_%s" % uuid.uuid4().hex[:12]
    if backend == "sqlite":
        path = os.path.join(directory, name + ".sqlite")
        return Database("sqlite", "sqlite:///" + path, None, name, path)
    admin_url = PG_ADMIN_URL if backend == "postgresql" else MYSQL_ADMIN_URL
    admin = sa.create_engine(admin_url, poolclass=sa.pool.NullPool,
                             isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE %s" % name))
    except sa.exc.DBAPIError as e:
        raise ServiceUnavailable("%s at %s: %s" % (
            backend, sa.engine.make_url(admin_url).render_as_string(
                hide_password=True), str(e.orig).strip()))
    finally:
        admin.dispose()
    url = sa.engine.make_url(admin_url).set(database=name)
    return Database(backend, url.render_as_string(hide_password=False),
                    admin_url, name)


class RabbitVhost:
    """A RabbitMQ vhost made for one test run."""

    def __init__(self) -> None:
        self.name = "novalet-test-%s" % uuid.uuid4().hex[:12]
        if not _port_open(RABBIT_HOST, 5672):
            raise ServiceUnavailable("RabbitMQ not listening on %s:5672"
                                     % RABBIT_HOST)
        ctl = shutil.which("rabbitmqctl")
        if ctl is None:
            raise ServiceUnavailable("rabbitmqctl not found (needed to make "
                                     "a private vhost)")
        self._ctl = ctl
        self._run("add_vhost", self.name)
        self._run("set_permissions", "-p", self.name, "guest", ".*", ".*", ".*")
        self.url = "rabbit://guest:guest@%s:5672/%s" % (RABBIT_HOST, self.name)

    def _run(self, *args: str) -> None:
        result = subprocess.run([self._ctl, *args], capture_output=True,
                                text=True, timeout=60)
        if result.returncode != 0:
            raise ServiceUnavailable("rabbitmqctl %s failed: %s" % (
                " ".join(args), result.stderr.strip() or result.stdout.strip()))

    def delete(self) -> None:
        try:
            self._run("delete_vhost", self.name)
        except ServiceUnavailable:
            pass


def check_redis() -> str:
    host_port = REDIS_URL.split("://", 1)[1].split("/", 1)[0]
    host, _, port = host_port.partition(":")
    if not _port_open(host, int(port or 6379)):
        raise ServiceUnavailable("Redis not listening on %s" % host_port)
    return REDIS_URL
