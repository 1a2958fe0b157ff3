"""Root fixtures. ``import novalet`` first: it selects oslo.service's
threading backend before any other oslo import."""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

import novalet  # noqa: F401  (must stay first)
from novalet import auth, indirection, objects, rpc
from novalet import conf as novalet_conf
from novalet import service as novalet_service
from novalet.db import engine as db_engine
from novalet.db import migration
from novalet.testing import plugin as testing_plugin
from tests import services

REQUIRE_SERVICES = os.environ.get("NOVALET_REQUIRE_SERVICES") == "1"

# oslo.messaging 18.3.1's queue manager (``use_queue_manager``, which the fault
# suite's clients use) names reply queues from the start time in
# /proc/<process group leader>/stat, read at each new queue: in a run whose
# group leader has exited (started in the background by a shell that then
# ended) the file is gone and every such call fails with FileNotFoundError.
# Such a run becomes a process group of its own, which its xdist workers
# join. novalet's services are their own groups already (oslo.service's
# launcher calls setsid(), the tests start them with start_new_session).
if not os.path.exists("/proc/%d/stat" % os.getpgrp()):
    os.setpgrp()

# novalet's own tests load the core only, in this process and in the
# services they start (set on import: test modules call register_all() as
# they are collected): installed apps (the example's) have their own tests,
# and the shared databases do not hold their tables. A test of apps in a
# process removes OS_DEFAULT__APPS from that process's environment.
novalet_conf.CONF.set_default("apps", ["novalet"])
os.environ.setdefault("OS_DEFAULT__APPS", "novalet")
DB_BACKENDS = ("sqlite", "postgresql", "mysql")

# The test run is one deployment with one master key: this process and every
# service and command it starts (OS_AUTH__MASTER_KEY_FILE, which overrides
# config files) verify requests and sign their own as the admin, unless a
# test gives a process a host key or an environment without it
# (tests/integration/test_auth_attacks.py).
_AUTH_DIR = tempfile.mkdtemp(prefix="novalet-test-keys-")
atexit.register(shutil.rmtree, _AUTH_DIR, True)
MASTER_KEY_FILE = os.path.join(_AUTH_DIR, "master.key")
auth.keys.init_master(MASTER_KEY_FILE)
os.environ["OS_AUTH__MASTER_KEY_FILE"] = MASTER_KEY_FILE
novalet_conf.CONF.set_default("master_key_file", MASTER_KEY_FILE, "auth")


def service_unavailable(reason: str) -> None:
    """Skip (laptop) or fail (CI: NOVALET_REQUIRE_SERVICES=1)."""
    if REQUIRE_SERVICES:
        pytest.fail("required service unavailable: %s" % reason)
    pytest.skip("service unavailable: %s" % reason)


# -- the run: two pytest-xdist workers (pyproject: -n 2 --dist loadscope) --
# Each module runs whole on one worker (its module and session fixtures are
# made once there): the fault suite's private broker cluster and database
# once, beside the other modules. No test touches the machine's shared
# services in a way the other worker would notice (the broker and database
# restarts use private ones).

_fault_figures: list[dict[str, Any]] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Collect the fault suite's figures (tests/faults/conftest.py puts
    them on each test's report), from whichever process ran the test."""
    if report.when == "teardown":
        _fault_figures.extend(value for key, value in report.user_properties
                              if key == "fault_figures")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not _fault_figures:
        return
    terminalreporter.section("fault figures")
    for row in _fault_figures:
        terminalreporter.write_line(
            "%-30s fault %5.1fs  back %4.1fs after it  longest beat gap "
            "%5.1fs  acknowledged lost %d  %s" % (
                row["fault"], row["fault_s"], row["back_after_end_s"],
                row["longest_beat_gap_s"], row["acknowledged_lost"],
                " ".join("%s=%s" % (k, v) for k, v in sorted(row.items())
                         if k not in ("fault", "fault_s", "back_after_end_s",
                                      "longest_beat_gap_s",
                                      "acknowledged_lost"))))


@pytest.fixture(scope="session", autouse=True)
def _novalet_session() -> None:
    novalet_conf.parse_args([], default_config_files=[])
    objects.register_all()


#: Overrides for one test (the class app authors get from novalet.testing).
ConfOverrides = testing_plugin.ConfOverrides


@pytest.fixture(autouse=True)
def conf() -> Iterator[ConfOverrides]:
    overrides = ConfOverrides()
    yield overrides
    indirection.reset()
    rpc.cleanup()
    db_engine.dispose()
    overrides.clear()


_databases: dict[str, services.Database] = {}


@pytest.fixture(scope="session")
def _database_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    directory = str(tmp_path_factory.mktemp("db"))

    def get(backend: str) -> services.Database:
        if backend not in _databases:
            try:
                database = services.provision_database(backend, directory)
            except services.ServiceUnavailable as e:
                service_unavailable(str(e))
            _databases[backend] = database
        return _databases[backend]

    yield get
    for database in _databases.values():
        database.drop()
    _databases.clear()


def use_database(conf: ConfOverrides, database: services.Database) -> None:
    """Point novalet at ``database``, migrated and empty."""
    conf("connection", database.url, "database")
    db_engine.configure(novalet_conf.CONF)
    if migration.db_version() != migration.head_revision():
        migration.db_sync()
    database.clean()


@pytest.fixture(params=DB_BACKENDS)
def database(request: pytest.FixtureRequest, conf: ConfOverrides,
             _database_registry: Any) -> services.Database:
    """The same test on SQLite, PostgreSQL and MariaDB."""
    db = _database_registry(request.param)
    use_database(conf, db)
    return db  # type: ignore[no-any-return]


@pytest.fixture
def sqlite_db(conf: ConfOverrides, _database_registry: Any) -> services.Database:
    db = _database_registry("sqlite")
    use_database(conf, db)
    return db  # type: ignore[no-any-return]


@pytest.fixture
def postgresql_db(conf: ConfOverrides, _database_registry: Any) -> services.Database:
    db = _database_registry("postgresql")
    use_database(conf, db)
    return db  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def rabbit_vhost() -> Iterator[services.RabbitVhost]:
    try:
        vhost = services.RabbitVhost()
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    yield vhost
    vhost.delete()


@pytest.fixture
def redis_url() -> str:
    try:
        return services.check_redis()
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
        raise


# -- the paths a remotable call can take -----------------------------------

class CallPath:
    """How a test's objects reach the database."""

    def __init__(self, name: str, database: services.Database,
                 remote: bool) -> None:
        self.name = name
        self.database = database
        self.remote = remote


PATHS = [
    "local-sqlite", "local-postgresql", "local-mysql",
    "inprocess", "fakerpc",
    pytest.param("conductor-rabbit-postgresql", marks=pytest.mark.integration),
]


def start_conductor(directory: Any, transport_url: str, host: str,
                    **process_kwargs: Any) -> dict[str, Any]:
    """A separate ``novalet-conductor`` (this release's, or another's through
    ``bin_dir``/``env``) on ``transport_url`` and a PostgreSQL database of its
    own, synced by this release; ``stop_conductor()`` removes both."""
    from tests import processes

    try:
        database = services.provision_database("postgresql", str(directory))
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    topic = "conductor-%s" % os.urandom(4).hex()
    config = processes.write_config(str(directory / "novalet.conf"), {
        "DEFAULT": {"transport_url": transport_url, "host": host},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": topic},
    })
    result = processes.run_command("novalet-manage", "--config-file", config,
                                   "db", "sync")
    assert result.returncode == 0, result.stderr
    proc = processes.ServiceProcess("novalet-conductor", config,
                                    str(directory / "conductor.log"),
                                    **process_kwargs)
    proc.wait_for_log(r"novalet-conductor started on " + host, timeout=90)
    return {"process": proc, "topic": topic, "database": database,
            "transport_url": transport_url, "host": host, "config": config}


def stop_conductor(conductor: dict[str, Any]) -> None:
    conductor["process"].stop()
    conductor["database"].drop()


@pytest.fixture(scope="session")
def conductor_process(tmp_path_factory: pytest.TempPathFactory,
                      rabbit_vhost: services.RabbitVhost,
                      _database_registry: Any) -> Iterator[dict[str, Any]]:
    """A separate ``novalet-conductor`` on RabbitMQ and PostgreSQL (a
    database of its own: its heartbeat must not write into the database
    other tests empty and count rows in)."""
    conductor = start_conductor(tmp_path_factory.mktemp("conductor"),
                                rabbit_vhost.url, CONDUCTOR_HOST)
    yield conductor
    stop_conductor(conductor)


REMOTE_PATHS = PATHS[3:]

#: The host of the session's separate conductor; its record is its own.
CONDUCTOR_HOST = "test-conductor"


@pytest.fixture(params=PATHS)
def path(request: pytest.FixtureRequest, conf: ConfOverrides,
         _database_registry: Any) -> Iterator[CallPath]:
    """One test body, every path: local on each database, the in-process
    conductor, oslo.messaging's fake:// transport to a conductor thread, and
    a separate novalet-conductor over RabbitMQ into PostgreSQL."""
    yield from _call_path(request, conf, _database_registry)


@pytest.fixture(params=REMOTE_PATHS)
def remote_path(request: pytest.FixtureRequest, conf: ConfOverrides,
                _database_registry: Any) -> Iterator[CallPath]:
    """The paths through a conductor only."""
    yield from _call_path(request, conf, _database_registry)


@contextlib.contextmanager
def conductor_thread(conf: ConfOverrides,
                     transport_url: str = "fake://") -> Iterator[None]:
    """A conductor in this process behind ``transport_url`` (oslo.messaging's
    ``fake://`` by default; on a topic of its own); this process's objects
    call it with the ``rpc`` indirection."""
    from novalet.conductor import manager as conductor_manager

    conf("topic", "conductor-%s" % os.urandom(4).hex(), "conductor")
    conf("transport_url", transport_url)
    rpc.init(novalet_conf.CONF)
    server = novalet_service.rpc_server(novalet_conf.CONF.conductor.topic,
                        [conductor_manager.ConductorManager(novalet_conf.CONF)],
                        server="test-conductor", objects_local=True)
    server.start()
    conf("indirection", "rpc", "objects")
    indirection.configure(novalet_conf.CONF)
    try:
        yield
    finally:
        indirection.reset()
        server.stop()
        server.wait()


@contextlib.contextmanager
def calls_through(conf: ConfOverrides, name: str) -> Iterator[None]:
    """This process's objects run their remotable methods ``local`` (here,
    against the configured database), through an ``inprocess`` conductor,
    or through a conductor thread behind ``fakerpc`` (``conductor_thread``)."""
    if name == "fakerpc":
        with conductor_thread(conf):
            yield
        return
    if name == "inprocess":
        conf("indirection", "inprocess", "objects")
        indirection.configure(novalet_conf.CONF)
    elif name != "local":
        raise ValueError("no such call path: %s" % name)
    try:
        yield
    finally:
        indirection.reset()


def _call_path(request: pytest.FixtureRequest, conf: ConfOverrides,
               _database_registry: Any) -> Iterator[CallPath]:
    name = request.param
    if name.startswith("local-"):
        db = _database_registry(name.split("-", 1)[1])
        use_database(conf, db)
        indirection.reset()
        yield CallPath(name, db, remote=False)
        return
    if name == "inprocess":
        db = _database_registry("sqlite")
        use_database(conf, db)
        conf("indirection", "inprocess", "objects")
        indirection.configure(novalet_conf.CONF)
        yield CallPath(name, db, remote=True)
        return
    if name == "fakerpc":
        db = _database_registry("sqlite")
        use_database(conf, db)
        with conductor_thread(conf):
            yield CallPath(name, db, remote=True)
        return
    conductor = request.getfixturevalue("conductor_process")
    db = conductor["database"]
    db.clean(keep_host=CONDUCTOR_HOST)
    conf("topic", conductor["topic"], "conductor")
    conf("transport_url", conductor["transport_url"])
    conf("connection", db.url, "database")
    conf("indirection", "rpc", "objects")
    indirection.configure(novalet_conf.CONF)
    yield CallPath(name, db, remote=True)
    assert not conductor["process"].errors(), conductor["process"].errors()
