"""A table or column the database lacks (a field added before its
migration, a database not synced) is ``SchemaNotCurrent`` naming the app and
``novalet-manage db sync``, never ``DatabaseUnavailable``: on SQLite,
PostgreSQL and MariaDB, locally and through a conductor."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from novalet import app, context, db, exception, objects
from novalet import conf as novalet_conf
from novalet.db import engine as db_engine
from novalet.db import migration
from tests import services
from tests.apps import isolated_registry
from tests.conftest import calls_through, service_unavailable

CASES = [("sqlite", "local"), ("postgresql", "local"), ("mysql", "local"),
         ("sqlite", "inprocess"), ("sqlite", "fakerpc"),
         ("postgresql", "fakerpc")]


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def appa(request: pytest.FixtureRequest, conf: Any, tmp_path: Any
         ) -> Iterator[tuple[Any, services.Database]]:
    """The test app appa on a database of its own (synced), called on one
    path."""
    backend, path = request.param
    try:
        database = services.provision_database(backend, str(tmp_path))
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    try:
        with isolated_registry("tests.apps.appa_objects"):
            from tests.apps import declared

            objects.register_all(["novalet"])
            app.register(declared.APPA)
            import tests.apps.appa_objects as appa_objects

            conf("connection", database.url, "database")
            db_engine.configure(novalet_conf.CONF)
            migration.db_sync()
            with calls_through(conf, path):
                yield appa_objects, database
            db_engine.dispose()
    finally:
        database.drop()


def _check(error: BaseException, missing: str) -> None:
    assert isinstance(error, exception.SchemaNotCurrent), repr(error)
    assert not isinstance(error, exception.DatabaseUnavailable)
    message = str(error).splitlines()[0]
    assert "app appa's schema has no %s" % missing in message
    assert "run 'novalet-manage db sync'" in message
    assert error.kwargs["app"] == "appa"  # type: ignore[attr-defined]


def test_a_missing_column_names_the_app(appa: Any) -> None:
    objects_module, database = appa
    ctxt = context.get_admin_context()
    widget = objects_module.Widget.make(ctxt, "w", 2)
    widget.store()
    database.query("ALTER TABLE appa_widgets DROP COLUMN size")
    with pytest.raises(exception.SchemaNotCurrent) as info:
        widget.store()  # INSERT ... size
    _check(info.value, "column")
    assert "size" in str(info.value)
    assert "appa_0001" in str(info.value)  # where the database and code are
    with pytest.raises(exception.SchemaNotCurrent) as info:
        objects_module.Widget.stored_sizes(ctxt)  # SELECT size
    _check(info.value, "column")


def test_a_missing_table_names_the_app(appa: Any) -> None:
    objects_module, database = appa
    database.query("DROP TABLE appa_widgets")
    ctxt = context.get_admin_context()
    with pytest.raises(exception.SchemaNotCurrent) as info:
        objects_module.Widget.stored_sizes(ctxt)
    _check(info.value, "table appa_widgets")


LOCAL = [c for c in CASES if c[1] == "local"]


@pytest.mark.parametrize("appa", LOCAL, ids=["-".join(c) for c in LOCAL],
                         indirect=True)
def test_outside_an_apps_code_the_lineage_behind_is_named(appa: Any) -> None:
    """No app's object module ran the statement: the app whose schema is
    behind the code is the one named."""
    objects_module, database = appa
    database.query("DROP TABLE appa_widgets")
    database.query("DELETE FROM alembic_version_appa")
    with pytest.raises(exception.SchemaNotCurrent) as info:
        with db.reader.using(context.get_admin_context()) as session:
            session.execute(sa.select(objects_module.WIDGETS))
    _check(info.value, "table appa_widgets")
    assert "at nothing" in str(info.value)


def test_an_unreachable_database_is_still_unavailable(conf: Any) -> None:
    conf("connection", "postgresql+psycopg2://nobody@127.0.0.1:1/none",
         "database")
    conf("max_retries", 0, "database")
    db_engine.configure(novalet_conf.CONF)
    with pytest.raises(exception.DatabaseUnavailable):
        with db.reader.using(context.get_admin_context()) as session:
            session.execute(sa.text("SELECT 1"))
