"""novalet.testing leaves nothing behind and lets nothing through: a run of
the plugin's fixtures (in a pytest of its own, as an app's test suite runs)
on a RabbitMQ vhost of its own leaves no queue or exchange there; with
``NOVALET_TEST_DATABASE_URL`` naming a PostgreSQL or MariaDB server, each
test has a database of its own, dropped after it; every fixture says what it
does in ``pytest --fixtures``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from typing import Any

import pytest
import sqlalchemy as sa

from tests import services
from tests.conftest import service_unavailable

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CONFTEST = '''
import pytest


@pytest.fixture
def novalet_apps():
    return ["novalet"]
'''

TESTS = '''
import json
import os

from novalet import context, objects


def _record(url):
    with open(os.environ["SEEN_DATABASES"], "a") as f:
        f.write(json.dumps(url) + "\\n")


def test_writes(novalet_path, novalet_db, novalet_registry):
    _record(novalet_db)
    ctxt = context.get_admin_context()
    objects.Service(ctxt, host="isolated", binary="novalet-compute").create()
    assert [s.host for s in objects.ServiceList.get_all(ctxt)] == ["isolated"]


def test_sees_nothing_of_the_other(novalet_path, novalet_db, novalet_registry):
    _record(novalet_db)
    ctxt = context.get_admin_context()
    assert list(objects.ServiceList.get_all(ctxt)) == []
'''

ADMIN_URLS = {"sqlite": None, "postgresql": services.PG_ADMIN_URL,
              "mysql": services.MYSQL_ADMIN_URL}


def _pytest(directory: Any, env: dict[str, str], *args: str
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-W", "error", "-q", "-p",
         "no:cacheprovider", "-p", "no:xdist", *args],
        cwd=str(directory), env=env, capture_output=True, text=True,
        timeout=240)


def _rabbitmqctl(*args: str) -> list[str]:
    ctl = shutil.which("rabbitmqctl")
    assert ctl is not None
    result = subprocess.run([ctl, "-q", *args], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return [line.strip() for line in result.stdout.splitlines()
            if line.strip() and line.strip() != "name"]


def _left_on(vhost: str) -> tuple[list[str], list[str]]:
    """The queues, and the exchanges but the broker's own (``amq.*`` and
    the nameless default one), of ``vhost``."""
    queues = _rabbitmqctl("list_queues", "-p", vhost, "name")
    exchanges = [e for e in _rabbitmqctl("list_exchanges", "-p", vhost, "name")
                 if e and not e.startswith("amq.")]
    return queues, exchanges


def _database_exists(admin_url: str, name: str) -> bool:
    engine = sa.create_engine(admin_url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                query = "SELECT 1 FROM pg_database WHERE datname = :n"
            else:
                query = ("SELECT 1 FROM information_schema.schemata "
                         "WHERE schema_name = :n")
            return connection.execute(sa.text(query), {"n": name}).first() \
                is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", sorted(ADMIN_URLS))
def test_a_run_leaves_nothing_behind(tmp_path: Any, backend: str) -> None:
    try:
        vhost = services.RabbitVhost()
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    try:
        (tmp_path / "conftest.py").write_text(CONFTEST)
        (tmp_path / "test_app.py").write_text(TESTS)
        seen = tmp_path / "seen.jsonl"
        env = dict(os.environ, NOVALET_TEST_TRANSPORT_URL=vhost.url,
                   NOVALET_REQUIRE_SERVICES="1", SEEN_DATABASES=str(seen))
        env.pop("NOVALET_TEST_DATABASE_URL", None)
        admin_url = ADMIN_URLS[backend]
        if admin_url is not None:
            env["NOVALET_TEST_DATABASE_URL"] = admin_url
        result = _pytest(tmp_path, env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "6 passed" in result.stdout, result.stdout
        # Every test had a database of its own.
        urls = [json.loads(line) for line in seen.read_text().splitlines()]
        assert len(urls) == 6 and len(set(urls)) == 6, urls
        if admin_url is not None:
            names = [sa.engine.make_url(u).database for u in urls]
            assert all(n.startswith("novalet_test_") for n in names), names
            assert not [n for n in names if _database_exists(admin_url, n)]
        # Nothing on the broker: the fanout and reply queues expire a
        # second after the last use, the rest is deleted at once.
        deadline = time.monotonic() + 10
        left = _left_on(vhost.name)
        while left != ([], []) and time.monotonic() < deadline:
            time.sleep(0.5)
            left = _left_on(vhost.name)
        assert left == ([], []), left
    finally:
        vhost.delete()


def test_every_fixture_has_a_docstring(tmp_path: Any) -> None:
    result = _pytest(tmp_path, dict(os.environ), "--fixtures")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    shown = [i for i, line in enumerate(lines) if line.startswith("novalet_")]
    names = {lines[i].split()[0] for i in shown}
    assert {"novalet_apps", "novalet_registry", "novalet_conf", "novalet_db",
            "novalet_path", "novalet_no_db"} <= names, names
    for i in shown:
        assert lines[i + 1].strip() and "no docstring" not in lines[i + 1], (
            lines[i:i + 2])
