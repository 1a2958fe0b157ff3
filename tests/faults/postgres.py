"""A private PostgreSQL cluster for the fault suite: ``initdb`` in a temporary
directory, its own port on 127.0.0.1, fsync on, trust authentication.

The postmaster runs in a session of its own, so its process group is the
postmaster and every backend: the suite can freeze the whole database
(SIGSTOP), stop it the way ``pg_ctl -m immediate`` does, and kill it all at
the end. As root, the server runs as the ``postgres`` user (PostgreSQL
refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any

import sqlalchemy as sa

from tests import processes
from tests.faults import procs
from tests.faults.cluster import free_port


class PostgresError(Exception):
    pass


def _bin_dir() -> str:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        raise PostgresError("no initdb (Debian: apt-get install postgresql)")
    return os.path.dirname(initdb)


class PrivatePostgres:
    """One private PostgreSQL server; ``close()`` removes it."""

    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.port = free_port()
        self.user: str | None = None
        self.dir = tempfile.mkdtemp(prefix="novalet-faults-pg-")
        self.data = os.path.join(self.dir, "data")
        uid = gid = None
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            self.user, uid, gid = "postgres", entry.pw_uid, entry.pw_gid
            os.chown(self.dir, uid, gid)
        self._uid, self._gid = uid, gid
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    def _run(self, *args: str, timeout: float = 120) -> None:
        result = subprocess.run(list(args), capture_output=True, text=True,
                                timeout=timeout, user=self._uid,
                                group=self._gid, cwd=self.dir,
                                env=self._env())
        if result.returncode != 0:
            raise PostgresError("%s failed: %s" % (
                " ".join(args), result.stderr.strip() or result.stdout.strip()))

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C.UTF-8"
        return env

    def initdb(self) -> None:
        self._run(os.path.join(self.bin, "initdb"), "-D", self.data, "-A",
                  "trust", "-U", "postgres", "-E", "UTF8", "--no-instructions")
        with open(os.path.join(self.data, "postgresql.auto.conf"), "a") as f:
            f.write("listen_addresses = '127.0.0.1'\n"
                    "port = %d\n"
                    "unix_socket_directories = '%s'\n"
                    "fsync = on\n"
                    "synchronous_commit = on\n"
                    "max_connections = 200\n"
                    "shared_buffers = 32MB\n"
                    "logging_collector = off\n" % (self.port, self.dir))

    def start(self, timeout: float = 60) -> None:
        if self.proc is not None and self.proc.poll() is None:
            raise PostgresError("already running")
        log = open(os.path.join(self.dir, "postgres.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(self.bin, "postgres"), "-D", self.data],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                user=self._uid, group=self._gid, cwd=self.dir, env=self._env(),
                start_new_session=True)
        finally:
            log.close()
        self.frozen = False
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        engine = sa.create_engine(self.url("postgres"),
                                  poolclass=sa.pool.NullPool)
        try:
            while time.monotonic() < deadline:
                if self.proc is None or self.proc.poll() is not None:
                    raise PostgresError("postgres exited:\n" + self.log_tail())
                try:
                    with engine.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.OperationalError:
                    time.sleep(0.2)
        finally:
            engine.dispose()
        raise PostgresError("postgres not ready in %ss:\n%s" % (
            timeout, self.log_tail()))

    def url(self, database: str) -> str:
        return "postgresql+psycopg2://postgres@127.0.0.1:%d/%s" % (
            self.port, database)

    def create_database(self, name: str) -> str:
        self.execute("CREATE DATABASE %s" % name)
        return self.url(name)

    def execute(self, sql: str, database: str = "postgres",
                **params: Any) -> list[Any]:
        engine = sa.create_engine(self.url(database), poolclass=sa.pool.NullPool,
                                  isolation_level="AUTOCOMMIT",
                                  connect_args={"connect_timeout": 5})
        try:
            with engine.connect() as conn:
                result = conn.execute(sa.text(sql), params)
                return list(result) if result.returns_rows else []
        finally:
            engine.dispose()

    def terminate_backends(self, database: str,
                           application_name: str | None = None) -> int:
        """``pg_terminate_backend`` of every other connection to ``database``."""
        sql = ("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
               " WHERE datname = :d AND pid <> pg_backend_pid()")
        params: dict[str, Any] = {"d": database}
        if application_name is not None:
            sql += " AND application_name = :a"
            params["a"] = application_name
        return int(self.execute(sql, **params)[0][0])

    def restart_immediate(self, timeout: float = 60) -> None:
        """``pg_ctl restart -m immediate``: every process quits at once
        without a checkpoint (the next start replays the WAL)."""
        self._run(os.path.join(self.bin, "pg_ctl"), "-D", self.data, "stop",
                  "-m", "immediate", "-w", "-t", str(int(timeout)))
        assert self.proc is not None
        procs.stop_group(self.proc, timeout=timeout)
        self.start(timeout)

    def _children(self) -> list[int]:
        """The postmaster's children (backends and helpers): each calls
        setsid(), so they are not in the postmaster's process group."""
        assert self.proc is not None
        return processes.children(self.proc.pid)

    def _signal_all(self, signum: int) -> None:
        assert self.proc is not None
        procs.signal_group(self.proc, signum)  # first: no new children
        for pid in self._children():
            try:
                os.kill(pid, signum)
            except ProcessLookupError:
                pass

    def freeze(self) -> None:
        """SIGSTOP the postmaster and every backend."""
        self._signal_all(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        self._signal_all(signal.SIGCONT)
        self.frozen = False

    def log_tail(self, chars: int = 3000) -> str:
        try:
            with open(os.path.join(self.dir, "postgres.log"),
                      errors="replace") as f:
                return f.read()[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        if self.proc is not None:
            children = self._children()
            procs.kill_group(self.proc)
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                    os.kill(pid, signal.SIGCONT)
                except ProcessLookupError:
                    pass
        shutil.rmtree(self.dir, ignore_errors=True)
