"""The ``novalet.testing`` pytest plugin (entry point ``pytest11``: novalet;
also importable as ``novalet.testing.plugin``).

Every fixture is opt-in and named ``novalet_*``:

* ``novalet_apps``: the apps under test, names or ``App`` objects (default:
  ini option ``novalet_apps``, else every installed app). Override it in a
  conftest to choose.
* ``novalet_registry``: those apps loaded for the test; after it, the
  registry is as it was before (what the test registered is forgotten).
* ``novalet_conf``: ``novalet_conf(name, value, group)`` overrides for one test.
* ``novalet_db``: a database of the test's own, migrated for the core and
  every app under test: a fresh SQLite file, or, when the environment
  variable ``NOVALET_TEST_DATABASE_URL`` names a PostgreSQL or MariaDB/MySQL
  server (``postgresql+psycopg2://user@host/postgres``,
  ``mysql+pymysql://root@host/mysql``: a database to connect to, whose user
  may create databases), a fresh database ``novalet_test_<random>`` there,
  dropped after the test. Nothing one test writes is seen by the next.
* ``novalet_path``: the test runs once per path: ``local`` (this process,
  against the database), ``inprocess`` (an in-process conductor: every call
  through the real serializer), ``rpc`` (a conductor behind oslo.messaging on
  the broker at ``NOVALET_TEST_TRANSPORT_URL``, default RabbitMQ on
  127.0.0.1:5672; skipped with its reason when unreachable, failed instead
  when ``NOVALET_REQUIRE_SERVICES=1``, as in CI; every request signed as the
  admin with a master key of the test's own unless ``[auth] master_key_file``
  is set). Its value is the path's name. The ``rpc`` path's topic and
  exchange are the test's own (``novalet-testing-<uuid>``); after the test
  its queues and exchanges are deleted and its fanout and reply queues
  expire within a second (``novalet.testing.broker``): nothing stays on the
  broker.
* ``novalet_no_db``: this process may not use the database (as a compute
  agent): remotable methods must go through a conductor path.
* ``novalet_sign_as``: ``novalet_sign_as("host-b")`` makes this process sign
  its requests as that host (its own key, derived from the test's master
  key) for the rest of the test, as an agent on that host does: on the
  ``rpc`` path the conductor sees ``context.principal`` of kind ``host``
  and confines its writes to the app's host-scoped tables (no signature on
  the other paths: there the principal is None, a local caller).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib import parse

import pytest

if TYPE_CHECKING:
    from novalet import app

# pytest loads this module in every run of every project of an environment
# novalet is installed in: it imports nothing but the standard library and
# pytest. novalet (and with it oslo.*, test-only packages such as
# ``fixtures``) is imported by the fixtures, when a test asks for one.

PATHS = ("local", "inprocess", "rpc")
DEFAULT_TRANSPORT_URL = "rabbit://guest:guest@127.0.0.1:5672/"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("novalet_apps", type="args", default=[],
                  help="novalet.testing: the apps under test (default: every "
                       "installed app)")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "novalet_path" in metafunc.fixturenames:
        metafunc.parametrize("novalet_path", PATHS, indirect=True)


class ConfOverrides:
    """``overrides(name, value, group)``; all cleared by ``clear()``."""

    def __init__(self) -> None:
        from novalet import conf as _conf

        self.CONF = _conf.CONF
        self._set: list[tuple[str, str | None]] = []

    def __call__(self, name: str, value: Any, group: str | None = None) -> None:
        self.CONF.set_override(name, value, group)
        self._set.append((name, group))

    def clear(self) -> None:
        for name, group in reversed(self._set):
            self.CONF.clear_override(name, group)
        self._set.clear()


@pytest.fixture(scope="session")
def _novalet_parsed() -> None:
    """``novalet.conf.CONF`` parsed once for the session (no config file)
    unless the test run parsed it already."""
    from oslo_config import cfg

    from novalet import conf as _conf

    try:
        parsed = _conf.CONF.config_file is not None  # registered by a parse
    except cfg.NoSuchOptError:
        parsed = False
    if not parsed:
        _conf.parse_args([], default_config_files=[])


@pytest.fixture
def novalet_conf(_novalet_parsed: None) -> Iterator[ConfOverrides]:
    """``novalet_conf(name, value, group=None)`` overrides one option of
    ``novalet.conf.CONF`` for this test; every override is cleared after it,
    and the indirection API, the RPC transport and the database engine are
    reset."""
    from novalet import indirection, rpc

    overrides = ConfOverrides()
    try:
        yield overrides
    finally:
        indirection.reset()
        rpc.cleanup()
        from novalet.db import engine as db_engine

        db_engine.dispose()
        overrides.clear()


@pytest.fixture
def novalet_apps(request: pytest.FixtureRequest) -> list[Any]:
    """The apps under test: names of installed apps or ``App`` objects.
    Default: the ini option ``novalet_apps``, else every installed app;
    override this fixture in a conftest to choose."""
    return list(request.config.getini("novalet_apps"))


#: The registry with each set of apps under test loaded (a module is
#: imported once: its classes are put back, not registered again).
_with_apps: dict[tuple[str, ...], Any] = {}


@pytest.fixture
def novalet_registry(novalet_apps: list[Any],
                     _novalet_parsed: None) -> Iterator[list[app.App]]:
    """The apps under test loaded into the object registry (the core
    always); yields the loaded ``App`` objects. After the test the registry
    is as it was before: what the test registered is forgotten."""
    from novalet import app, testing

    before = testing.RegistryState()
    key = tuple(a.name if isinstance(a, app.App) else a for a in novalet_apps)
    if key in _with_apps:
        _with_apps[key].restore()
    else:
        names = [a for a in novalet_apps if isinstance(a, str)]
        app.load(None if not novalet_apps else names or [app.CORE])
        for declared in novalet_apps:
            if isinstance(declared, app.App):
                app.register(declared)
        _with_apps[key] = testing.RegistryState()
    wanted = {a.name if isinstance(a, app.App) else a for a in novalet_apps}
    loaded = [a for n, a in app.loaded().items() if not wanted or n in wanted
              or n == app.CORE]
    try:
        yield loaded
    finally:
        before.restore()


@pytest.fixture
def novalet_db(novalet_conf: ConfOverrides, novalet_registry: list[app.App],
               tmp_path: Any) -> Iterator[str]:
    """A database of the test's own, migrated for the core and every app
    under test, set as ``[database] connection``; yields its URL. A fresh
    SQLite file; with ``NOVALET_TEST_DATABASE_URL`` naming a PostgreSQL or
    MariaDB server, a fresh database there, dropped after the test."""
    import sqlalchemy as sa

    from novalet import conf as _conf
    from novalet.db import engine as db_engine
    from novalet.db import migration
    from novalet.testing import databases

    try:
        database = databases.create(tmp_path)
    except sa.exc.DBAPIError as e:
        pytest.fail("novalet.testing: %s=%s: cannot create a database there: %s"
                    % (databases.ENV, os.environ.get(databases.ENV),
                       str(e.orig).strip()))
    try:
        novalet_conf("connection", database.url, "database")
        db_engine.configure(_conf.CONF)
        for lineage in migration.lineages():
            migration.db_sync(app=lineage)
        yield database.url
    finally:
        db_engine.dispose()
        database.drop()


def _broker_url() -> str:
    url = os.environ.get("NOVALET_TEST_TRANSPORT_URL") or DEFAULT_TRANSPORT_URL
    parsed = parse.urlsplit(url)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1",
                                       parsed.port or 5672), timeout=1):
            pass
    except OSError as e:
        reason = ("novalet.testing: no broker at %s (%s); set "
                  "NOVALET_TEST_TRANSPORT_URL" % (parsed.hostname, e))
        if os.environ.get("NOVALET_REQUIRE_SERVICES") == "1":
            pytest.fail(reason + " (NOVALET_REQUIRE_SERVICES=1: a required "
                        "service is missing)")
        pytest.skip(reason)
    return url


@pytest.fixture
def novalet_path(request: pytest.FixtureRequest, novalet_conf: ConfOverrides,
                 novalet_db: str) -> Iterator[str]:
    """Runs the test once per path, yielding the path's name: ``local``
    (remotable methods run in this process against the database),
    ``inprocess`` (an in-process conductor: every call through the real
    serializer), ``rpc`` (a conductor behind oslo.messaging on the broker at
    ``NOVALET_TEST_TRANSPORT_URL``, every request signed)."""
    from novalet import conf as _conf
    from novalet import indirection, rpc

    name = getattr(request, "param", "local")
    if name == "local":
        yield name
        return
    if name == "inprocess":
        novalet_conf("indirection", "inprocess", "objects")
        indirection.configure(_conf.CONF, binary="novalet.testing")
        yield name
        return
    from novalet import service as novalet_service
    from novalet.conductor import manager as conductor_manager
    from novalet.testing import broker

    url = _broker_url()
    topic = "novalet-testing-%s" % uuid.uuid4().hex
    novalet_conf("transport_url", url)
    novalet_conf("topic", topic, "conductor")
    # The test's own exchange too: everything it makes has its name, and is
    # deleted after it (novalet.testing.broker).
    novalet_conf("control_exchange", topic)
    keys_dir = None
    if not _conf.CONF.auth.master_key_file:
        # A real broker: requests are signed (as the admin) and verified.
        from novalet import auth

        keys_dir = tempfile.mkdtemp(prefix="novalet-testing-keys-")
        master = os.path.join(keys_dir, "master.key")
        auth.keys.init_master(master)
        novalet_conf("master_key_file", master, "auth")
    rpc.cleanup()
    rpc.init(_conf.CONF)
    broker.transient_ttl(_conf.CONF, novalet_conf)
    server_name = "novalet-testing-conductor"
    server = novalet_service.rpc_server(topic,
                        [conductor_manager.ConductorManager(_conf.CONF)],
                        server=server_name, objects_local=True)
    try:
        server.start()
        try:
            novalet_conf("indirection", "rpc", "objects")
            indirection.configure(_conf.CONF, binary="novalet.testing")
            yield name
        finally:
            indirection.reset()
            server.stop()
            server.wait()
    finally:
        rpc.cleanup()
        broker.delete(_conf.CONF, url, topic, server_name)
        if keys_dir is not None:
            shutil.rmtree(keys_dir, ignore_errors=True)


@pytest.fixture
def novalet_no_db() -> Iterator[None]:
    """This process may not use the database during the test, as a compute
    agent may not: remotable methods must go through a conductor path."""
    from novalet import db

    db.block_access("novalet.testing (novalet_no_db)")
    try:
        yield
    finally:
        db.allow_access()


@pytest.fixture
def novalet_sign_as(novalet_conf: ConfOverrides,
                    tmp_path: Any) -> Iterator[Any]:
    """``novalet_sign_as(host)``: from then on this process signs its
    requests as ``host`` with that host's own key (``[DEFAULT] host`` and
    ``[auth] key_file`` set for the test); the conductor of the ``rpc``
    path verifies them with the test's master key. Needs a master key
    (the ``rpc`` path makes one)."""
    from novalet import auth
    from novalet import conf as _conf

    def sign_as(host: str) -> None:
        master = _conf.CONF.auth.master_key_file
        if not master:
            pytest.fail("novalet_sign_as: no [auth] master_key_file to derive "
                        "a host key from (use it on novalet_path's rpc path)")
        key_file = os.path.join(str(tmp_path), "%s.key" % host)
        auth.keys.write_host_key(master, host, key_file)
        novalet_conf("host", host)
        novalet_conf("key_file", key_file, "auth")
        auth.reset()
        auth.configure(_conf.CONF)

    try:
        yield sign_as
    finally:
        auth.reset()
