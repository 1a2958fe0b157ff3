"""The database engine behind novalet and every app: oslo.db's
enginefacade configured from ``[database]``, the one transaction API (the
``reader`` and ``writer`` the query functions run in, which apps use as
``novalet.db.reader`` / ``novalet.db.writer``), the errors of an
unreachable database as ``DatabaseUnavailable`` and those of a missing
table or column as ``SchemaIncomplete``."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sqlalchemy as sa
from oslo_config import cfg
from oslo_db import exception as db_exc
from oslo_db.sqlalchemy import enginefacade
from sqlalchemy.engine import make_url

from novalet import db as db_switch
from novalet import exception
from novalet.db import schema_errors, statements
from novalet.logs import is_secret_name

F = TypeVar("F", bound=Callable[..., Any])

_lock = threading.Lock()
_manager: Any = None
_connection: str | None = None

_hooks_lock = threading.Lock()
#: What ``add_engine_hook`` asked to be called with every engine.
_engine_hooks: list[Callable[[sa.engine.Engine], None]] = []
#: The engines made so far (a hook added later is called with them too).
_engines: weakref.WeakSet[sa.engine.Engine] = weakref.WeakSet()


def add_engine_hook(hook: Callable[[sa.engine.Engine], None]) -> None:
    """Call ``hook(engine)`` once for every engine of this process: each one
    made already, and each one made from now on. The layers above the
    database watch it this way (``novalet.metrics.database``) without the
    database importing them. Adding one hook twice adds it once."""
    with _hooks_lock:
        if hook in _engine_hooks:
            return
        _engine_hooks.append(hook)
        engines = list(_engines)
    for engine in engines:
        hook(engine)


def _on_engine_create(engine: sa.engine.Engine) -> None:
    with _hooks_lock:
        _engines.add(engine)
        hooks = list(_engine_hooks)
    for hook in hooks:
        hook(engine)
    statements.install(engine)
    if engine.dialect.name != "sqlite":
        return

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_conn: Any, record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def configure(conf: cfg.ConfigOpts) -> None:
    """Point the database layer at ``conf.database`` (replacing any earlier)."""
    global _manager, _connection
    connection = conf.database.connection
    url = make_url(connection)
    if url.get_backend_name() == "sqlite" and url.database:
        os.makedirs(os.path.dirname(os.path.abspath(url.database)),
                    exist_ok=True)
    manager = enginefacade.transaction_context()
    manager.configure(
        connection=connection,
        slave_connection=conf.database.slave_connection,
        sqlite_fk=False,
        max_pool_size=conf.database.max_pool_size,
        max_overflow=conf.database.max_overflow,
        pool_timeout=conf.database.pool_timeout,
        max_retries=conf.database.max_retries,
        retry_interval=conf.database.retry_interval,
        connection_recycle_time=conf.database.connection_recycle_time,
        connection_debug=conf.database.connection_debug,
        mysql_sql_mode=conf.database.mysql_sql_mode,
        # oslo.db's sleep(0) at every checkin lets eventlet switch green
        # threads; novalet runs native threads, which need no such yield.
        thread_checkin=False,
    )
    manager.append_on_engine_create(_on_engine_create)
    with _lock:
        old, _manager, _connection = _manager, manager, connection
    if old is not None:
        old.dispose_pool()


def dispose() -> None:
    """Close every pooled connection (after fork, at stop, between tests)."""
    global _manager
    with _lock:
        old, _manager = _manager, None
    if old is not None:
        old.dispose_pool()


def masked_url(connection: str) -> str:
    """``connection`` as it may be printed or logged: the password of its
    user part and every secret query argument (``?password=``, ``?pass=``,
    ``novalet.logs.is_secret_name``) replaced by ``***``."""
    try:
        url = make_url(connection)
        secret = {key: ("***" if isinstance(value, str) else
                        tuple("***" for _ in value))
                  for key, value in url.query.items() if is_secret_name(key)}
        if secret:
            url = url.update_query_dict(secret)
        return url.render_as_string(hide_password=True).replace(
            "=%2A%2A%2A", "=***")
    except Exception:
        return "<unparsable database URL>"


def masked_connection() -> str:
    """The configured connection URL with its password hidden."""
    if _connection is None:
        return "<not configured>"
    return masked_url(_connection)


def check_connection(conf: cfg.ConfigOpts, timeout: float) -> None:
    """Wait up to ``timeout`` seconds for ``conf.database.connection`` to
    accept a connection; raises ``DatabaseUnavailable``. Leaves no engine."""
    url = make_url(conf.database.connection)
    if url.get_backend_name() == "sqlite" and url.database:
        os.makedirs(os.path.dirname(os.path.abspath(url.database)),
                    exist_ok=True)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                with engine.connect() as connection:
                    connection.execute(sa.text("SELECT 1"))
                return
            except sa.exc.DBAPIError as e:
                if time.monotonic() >= deadline:
                    raise exception.DatabaseUnavailable(
                        url=masked_url(conf.database.connection),
                        reason=str(e.orig).strip() or e)
                time.sleep(max(1, conf.database.retry_interval))
    finally:
        engine.dispose()


def _get_manager() -> Any:
    manager = _manager
    if manager is None:
        from novalet.conf import CONF
        configure(CONF)
        manager = _manager
    return manager


def get_engine() -> sa.engine.Engine:
    db_switch.check_access("get_engine")
    return _get_manager().writer.get_engine()  # type: ignore[no-any-return]


@contextlib.contextmanager
def translate_errors() -> Iterator[None]:
    """A database that cannot be reached raises ``DatabaseUnavailable``; a
    statement naming a table or column the database lacks raises
    ``SchemaIncomplete`` (a ``SchemaNotCurrent``: ``novalet.db.schema_errors``)."""
    try:
        yield
    except (db_exc.DBError, sa.exc.DBAPIError) as e:
        inner = getattr(e, "inner_exception", None) or getattr(e, "orig", None)
        if isinstance(inner, exception.NovaletException):
            # A check of novalet.db.statements refusing SQL sent as text,
            # wrapped by oslo.db as it passed the driver.
            raise inner from e
        translated = schema_errors.schema_error(e)
        if translated is not None:
            raise translated from e
        if isinstance(e, db_exc.DBConnectionError):
            raise exception.DatabaseUnavailable(
                url=masked_connection(), reason=e.inner_exception or e)
        if isinstance(e, sa.exc.OperationalError):
            # oslo.db does not recognise every driver's wording of a
            # refused connection (libpq 15 with several hosts: "connection
            # to server at ... failed"): still the database, not a bug.
            raise exception.DatabaseUnavailable(
                url=masked_connection(), reason=str(e.orig).strip() or e)
        raise


class Transaction:
    """One enginefacade mode, resolved on each use (``configure()`` may
    replace the engine facade). Every use passes the no-database guard
    first (``novalet.db.check_access``) and leaves an unreachable database
    as ``DatabaseUnavailable``.

    A decorator: the context is the first argument, after ``self`` or
    ``cls`` (or the keyword ``context``); it carries the transaction
    (``context.session``, or ``context.connection`` for ``connection``
    transactions). A function of a ``reader`` that has a ``replica``
    parameter reads from ``[database] slave_connection`` when called with
    ``replica=True`` and a replica is configured: for listings that may lag
    the primary a little, never for a read that feeds a write.

    Or a context manager: ``with writer.using(ctxt) as session``. Either
    way, a transaction of the same context already open is joined.

    Every statement is checked as it runs (``novalet.db.statements``): its
    values against their columns, and a host principal's writes confined to
    its own rows of the host-scoped tables.
    """

    __slots__ = ("mode", "connection", "name")

    def __init__(self, mode: str, *, connection: bool = False) -> None:
        self.mode = mode
        self.connection = connection
        self.name = mode + ("_connection" if connection else "")

    def _factory(self, replica: bool = False) -> Any:
        factory = getattr(_get_manager(), self.mode)
        if replica and self.mode == "reader":
            # oslo.db's async reader: [database] slave_connection if set
            # (inside a transaction, that transaction's engine).
            factory = factory.async_
        if self.connection:
            factory = factory.connection
        return factory

    @contextlib.contextmanager
    def using(self, context: Any) -> Iterator[Any]:
        """``with ...using(ctxt) as session``: a transaction (joined if one
        of this context is already open)."""
        db_switch.check_access("%s.using" % self.name)
        with translate_errors(), self._factory().using(context) as session:
            statements.bind(context, session)
            yield session

    def __call__(self, fn: F) -> F:
        params = list(inspect.signature(fn).parameters)
        index = 1 if params and params[0] in ("self", "cls") else 0
        replica = "replica" in params and self.mode == "reader"
        name = fn.__qualname__

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            db_switch.check_access(name)
            context = args[index] if len(args) > index else kwargs["context"]
            with translate_errors():
                factory = self._factory(replica and kwargs.get("replica", False))
                with factory.using(context) as session:
                    statements.bind(context, session)
                    return fn(*args, **kwargs)
        return wrapper  # type: ignore[return-value]


#: A read-only transaction on the primary (``connection``), or a replica
#: for a ``replica=True`` call of a function that takes ``replica``.
#: ``novalet.db.reader`` for apps.
reader = Transaction("reader")
#: A read-write transaction with an ORM session. ``novalet.db.writer``.
writer = Transaction("writer")
#: A writer whose body runs Core statements only: ``context.connection``,
#: no ORM session (inside a session transaction, it joins that one).
writer_connection = Transaction("writer", connection=True)
