"""The negotiation matrix (test_negotiation_matrix.py) for every installed
app's namespace: the entry points of group novalet.apps but the core (the
example app leases at least), each remotable method at the caps of that
app's own releases (each older one pinned with ``[upgrade_levels] apps``,
none, and auto while no conductor answers: its first release), through an
in-process conductor (SQLite) and a novalet-conductor that loads the apps
(RabbitMQ + PostgreSQL), against an uncapped local call on the same world.
Each call must return what the reference returns and leave the same rows
(but for the columns of fields the caps cannot carry). Release 1's
conductor serves no app at all: it is not a target here.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from novalet.db import engine as db_engine
from novalet.db import migration
from tests import matrix, services
from tests.compat.test_negotiation_matrix import Target, _carried, _filter, _play, _strip

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]


def _installed_apps() -> dict[str, Any]:
    from importlib import metadata

    from novalet import app

    return {ep.name: ep.load() for ep in metadata.entry_points(group=app.ENTRY_POINT_GROUP)
            if ep.name != app.CORE}


@contextlib.contextmanager
def _apps_loaded() -> Iterator[dict[str, Any]]:
    """Every installed app loaded beside the core (its object modules
    imported again: registered again); forgotten after the block."""
    from tests.apps import isolated_registry

    installed = _installed_apps()
    modules = tuple(m for declared in installed.values() for m in declared.object_modules)
    with isolated_registry(*modules):
        matrix.remotable_methods.cache_clear()
        try:
            objects.register_all(["novalet", *installed])
            yield installed
        finally:
            matrix.remotable_methods.cache_clear()


def _app_cases() -> list[Any]:
    cases = []
    with _apps_loaded() as installed:
        for name, declared in sorted(installed.items()):
            caps = ["none", *list(declared.releases)[:-1], "auto-unreachable"]
            for method in matrix.remotable_methods(name):
                for cap in caps:
                    cases.append(pytest.param(
                        name, method.cls.obj_name(), method.name, cap,
                        id="%s.%s-%s" % (name, method.id, cap)))
    return cases


APP_CASES = _app_cases()


def test_the_app_matrix_covers_the_example_app() -> None:
    """The example app is installed here, and each of its remotable methods
    (counted in its source) is in the matrix at each of its caps."""
    import re

    leases = pytest.importorskip("leases.objects", reason="pip install -e examples/leases")
    with open(leases.__file__) as f:
        marked = len(re.findall(r"^\s*@base\.remotable\s*$", f.read(), re.M))
    ids = {p.id for p in APP_CASES if p.id.startswith("leases.")}
    caps = len(_installed_apps()["leases"].releases) + 1  # older pins, none, auto
    assert marked >= 4 and len(ids) == marked * caps, sorted(ids)


@pytest.fixture(scope="module")
def apps_conductor(tmp_path_factory: pytest.TempPathFactory,
                   rabbit_vhost: services.RabbitVhost) -> Iterator[dict[str, Any]]:
    """A ``novalet-conductor`` loading every installed app, on a PostgreSQL
    database of its own synced for them."""
    from tests import processes

    directory = tmp_path_factory.mktemp("matrix-apps")
    env = {k: v for k, v in os.environ.items() if k != "OS_DEFAULT__APPS"}
    try:
        database = services.provision_database("postgresql", str(directory))
    except services.ServiceUnavailable as e:
        from tests.conftest import service_unavailable

        service_unavailable(str(e))
    topic = "conductor-%s" % os.urandom(4).hex()
    config = processes.write_config(str(directory / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": APPS_HOST},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": topic}})
    synced = subprocess.run([os.path.join(processes.BIN_DIR, "novalet-manage"),
                             "--config-file", config, "db", "sync"],
                            capture_output=True, text=True, timeout=120, env=env)
    assert synced.returncode == 0, synced.stderr
    proc = processes.ServiceProcess("novalet-conductor", config,
                                    str(directory / "conductor.log"), env=env)
    try:
        proc.wait_for_log(r"novalet-conductor started on " + APPS_HOST, timeout=90)
        yield {"process": proc, "topic": topic, "database": database,
               "transport_url": rabbit_vhost.url}
        assert not proc.errors(), proc.errors()
    finally:
        proc.stop()
        database.drop()


APPS_HOST = "matrix-apps-conductor"


@pytest.fixture(scope="module")
def apps_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[services.Database]:
    database = services.provision_database("sqlite", str(tmp_path_factory.mktemp("apps")))
    yield database
    database.drop()


@pytest.fixture(params=["inprocess", "rpc"])
def app_target(request: pytest.FixtureRequest, conf: Any) -> Target:
    if request.param == "inprocess":
        return Target("inprocess", request.getfixturevalue("apps_sqlite"), None,
                      {("indirection", "objects"): "inprocess"})
    conductor = request.getfixturevalue("apps_conductor")
    return Target("rpc", conductor["database"], APPS_HOST, {
        ("indirection", "objects"): "rpc",
        ("topic", "conductor"): conductor["topic"],
        ("transport_url", None): conductor["transport_url"],
        ("rpc_response_timeout", None): 20,
    })


def _app_tables(database: services.Database) -> list[str]:
    """The tables of the database that are no table of the core's."""
    import sqlalchemy as sa

    from novalet.db import models

    core = set(models.Base.metadata.tables)
    return sorted(t for t in sa.inspect(database.engine).get_table_names()
                  if t not in core and not t.startswith("alembic_version"))


def _use_app_database(conf: Any, target: Target) -> None:
    """The target's database, migrated for the core and the apps, empty
    but for the conductor's own service record."""
    import sqlalchemy as sa

    indirection.reset()
    conf("connection", target.database.url, "database")
    db_engine.configure(novalet_conf.CONF)
    migration.db_sync()
    target.database.clean(keep_host=target.keep_host)
    with target.database.engine.begin() as connection:
        for table in _app_tables(target.database):
            connection.execute(sa.text("DELETE FROM %s" % table))


def _app_left_out(namespace: str, caps: dict[str, str] | None,
                  database: services.Database) -> dict[str, set[str] | None]:
    """Per app table, the columns of the app's fields the caps cannot carry."""
    columns: set[str] = set()
    for cls in matrix.registered_classes(namespace):
        carried = matrix.fields_at(cls, (caps or {}).get(cls.obj_name()), caps)
        columns |= {cls.obj_db_columns.get(f, f) for f in cls.fields if f not in carried}
    return {table: columns or None for table in _app_tables(database)}


def _app_rows(target: Target, namespace: str,
              caps: dict[str, str] | None) -> dict[str, list[dict[str, Any]]]:
    return matrix.table_rows(target.database, _app_left_out(namespace, caps, target.database),
                             target.keep_host)


@pytest.mark.parametrize("namespace, objname, name, caps", APP_CASES)
def test_every_app_method_at_every_app_cap(namespace: str, objname: str, name: str,
                                           caps: str, app_target: Target,
                                           conf: Any) -> None:
    with _apps_loaded():
        [method] = [m for m in matrix.remotable_methods(namespace)
                    if m.cls.obj_name() == objname and m.name == name]
        ctxt = context.get_admin_context()

        # The reference: no indirection at all, uncapped.
        _use_app_database(conf, app_target)
        world = matrix.World(ctxt, namespace)
        ref_result, ref_subject = _play(method, ctxt, world)
        ref_rows = _app_rows(app_target, namespace, None)

        _use_app_database(conf, app_target)
        world = matrix.World(ctxt, namespace)
        for (option, group), value in app_target.settings.items():
            conf(option, value, group)
        conf("apps", {namespace: caps} if caps not in ("none", "auto-unreachable")
             else {}, "upgrade_levels")
        api = indirection.configure(novalet_conf.CONF)
        app_caps = api.negotiator.caps_for(namespace)
        assert app_caps is not None, "%s declares no releases" % namespace
        if caps == "auto-unreachable":
            def unreachable(ctxt: Any) -> list[dict[str, str]]:
                raise exception.RPCTimeout(topic="conductor", timeout=0)
            app_caps.peers.app_releases = unreachable
        effective = app_caps.object_versions(ctxt)
        if caps == "none":
            assert effective is None
        else:  # the pinned release's, or the first one's while none answers
            declared = _installed_apps()[namespace]
            release = caps if caps != "auto-unreachable" else list(declared.releases)[0]
            assert effective == dict(declared.releases[release])

        result, subject = _play(method, ctxt, world)
        assert _app_rows(app_target, namespace, effective) == \
            _app_rows_of(ref_rows, _app_left_out(namespace, effective, app_target.database))
        if method.is_class:
            assert _carried(result, effective, namespace) == \
                _carried(ref_result, effective, namespace)
        else:
            assert matrix.normal(result) == matrix.normal(ref_result)
            assert _filter(matrix.normal(subject), effective, namespace) == \
                _filter(matrix.normal(ref_subject), effective, namespace)
        indirection.reset()


def _app_rows_of(rows: dict[str, list[dict[str, Any]]],
                 left_out: dict[str, set[str] | None]) -> dict[str, list[dict[str, Any]]]:
    return _strip(rows, left_out)
