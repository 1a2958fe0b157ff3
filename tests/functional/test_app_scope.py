"""An app's host-scoped table (``App(host_scoped=...)``): the test app apph
declares ``apph_parts`` scoped by its column ``owner``. A context whose
verified principal is host B writes (Core or ORM, insert, update, delete)
only B's rows; anything else is ``Forbidden`` and not one row changes; text
SQL naming the table is refused to it. Admins, unsigned and local callers
are unscoped. The values any caller writes fit their columns (a typed
``MalformedRequest``, nothing written). On SQLite, PostgreSQL and MariaDB
(whose default collation would match ``HOSTB`` to ``hostb``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from novalet import app, context, exception, novalet_app, objects
from novalet import conf as novalet_conf
from novalet.auth import principal
from novalet.db import engine as db_engine
from novalet.db import migration, models, scope
from tests import services
from tests.apps import isolated_registry
from tests.conftest import service_unavailable

_databases: dict[str, services.Database] = {}


@pytest.fixture(scope="module")
def _apph_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One database per backend for this module, migrated for the core and
    apph on first use (the session's shared ones hold the core's only)."""
    directory = str(tmp_path_factory.mktemp("apph"))

    def get(backend: str) -> services.Database:
        if backend not in _databases:
            try:
                _databases[backend] = services.provision_database(
                    backend, directory)
            except services.ServiceUnavailable as e:
                service_unavailable(str(e))
        return _databases[backend]

    yield get
    for database in _databases.values():
        database.drop()
    _databases.clear()


def use_apph(conf: Any, database: services.Database) -> Any:
    """apph loaded beside the core, ``database`` migrated and empty."""
    from tests.apps import declared

    objects.register_all(["novalet"])
    app.register(declared.APPH)
    import tests.apps.apph_objects as apph

    conf("connection", database.url, "database")
    db_engine.configure(novalet_conf.CONF)
    if migration.db_version() != migration.head_revision():
        migration.db_sync()
    database.clean()
    database.query("DELETE FROM apph_parts")
    return apph


@pytest.fixture(params=["sqlite", "postgresql", "mysql"])
def apph(request: pytest.FixtureRequest, conf: Any,
         _apph_databases: Any) -> Iterator[Any]:
    with isolated_registry("tests.apps.apph_"):
        database = _apph_databases(request.param)
        module = use_apph(conf, database)
        module.database = database
        yield module
        db_engine.dispose()


def _ctxt(who: Any = None) -> Any:
    ctxt = context.get_admin_context()
    if who is not None:
        ctxt.set_principal(who)
    return ctxt


B = principal.host("hostb")


def _rows(apph: Any) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in apph.database.query(
        "SELECT id, owner, name, size FROM apph_parts ORDER BY id")]


def _part(apph: Any, ctxt: Any, owner: str | None, name: str = "p",
          size: int = 1) -> Any:
    part = apph.Part(ctxt, owner=owner, name=name, size=size)
    part.create()
    return part


def _as(part: Any, ctxt: Any) -> Any:
    copy = part.obj_clone()
    copy._context = ctxt
    return copy


def _refused(apph: Any, action: Any) -> exception.Forbidden:
    before = _rows(apph)
    with pytest.raises(exception.Forbidden) as info:
        action()
    assert _rows(apph) == before, "a refused write changed a row"
    assert info.value.kwargs["principal"] == "host hostb"
    return info.value


def test_host_b_writes_only_its_own_rows(apph: Any) -> None:
    admin, b = _ctxt(), _ctxt(B)
    part_a = _part(apph, admin, "hosta")
    look_alikes = [_part(apph, admin, owner) for owner in ("HOSTB", "hostb ")]
    # Creating one for host A, or for nobody: Core and ORM.
    for owner in ("hosta", None, "HOSTB"):
        err = _refused(apph, apph.Part(b, owner=owner, name="x", size=1).create)
        assert err.kwargs["action"] == "insert into apph_parts"
        _refused(apph, apph.Part(b, owner=owner, name="x", size=1).create_orm)
    # Changing or deleting host A's row (and rows that only look like B's).
    for target in [part_a, *look_alikes]:
        err = _refused(apph, lambda t=target: _as(t, b).rename("stolen"))
        assert err.kwargs["action"] == "update apph_parts"
        assert "not hostb's" in err.kwargs["reason"]
        _refused(apph, lambda t=target: _as(t, b).resize(99))
        _refused(apph, lambda t=target: _as(t, b).give_to("hostb"))
        err = _refused(apph, _as(target, b).destroy)
        assert err.kwargs["action"] == "delete from apph_parts"
    # Its own row: it may not give it away, nor use text SQL.
    own = _part(apph, b, "hostb")
    _refused(apph, lambda: own.give_to("hosta"))
    err = _refused(apph, own.destroy_by_text)
    assert err.kwargs["action"] == "run SQL text on apph_parts"
    # Everything else on its own rows works, Core and ORM.
    own.rename("mine")
    own.resize(7)
    orm_made = apph.Part(b, owner="hostb", name="orm", size=2)
    orm_made.create_orm()
    orm_made.destroy()
    assert _rows(apph) == [(part_a.id, "hosta", "p", 1),
                           *[(p.id, p.owner, "p", 1) for p in look_alikes],
                           (own.id, "hostb", "mine", 7)]


def test_every_statement_form_is_confined(apph: Any) -> None:
    """Statements an app may write by hand, in one transaction of host B."""
    from novalet import db

    parts = apph.PARTS
    unscoped = models.Base.metadata.tables["rpc_deliveries"]
    admin, b = _ctxt(), _ctxt(B)
    part_a = _part(apph, admin, "hosta")
    _part(apph, b, "hostb")
    dialect = apph.database.backend
    attempts: list[Any] = [
        # Several rows, one of them A's; executemany likewise.
        lambda s: s.execute(sa.insert(parts).values([
            {"owner": "hostb", "name": "1", "size": 1},
            {"owner": "hosta", "name": "2", "size": 1}])),
        lambda s: s.execute(sa.insert(parts), [
            {"owner": "hostb", "name": "1", "size": 1},
            {"owner": "hosta", "name": "2", "size": 1}]),
        lambda s: s.execute(sa.insert(parts).values(
            owner=sa.func.lower("HOSTA"), name="e", size=1)),
        lambda s: s.execute(sa.insert(parts).from_select(
            ["owner", "name", "size"],
            sa.select(parts.c.owner, parts.c.name, parts.c.size))),
        lambda s: s.execute(sa.insert(parts).values(
            owner="hostb", name="r", size=1).prefix_with("OR REPLACE")),
        # Every row (A's among them), through an alias, by a bound name.
        lambda s: s.execute(sa.update(parts).values(size=5)),
        lambda s: s.execute(sa.delete(parts)),
        lambda s: s.execute(sa.update(parts.alias("p")).values(size=5)),
        lambda s: s.execute(
            sa.update(parts).where(parts.c.id == sa.bindparam("target"))
            .values(size=5), {"target": part_a.id}),
        # SQL text, however sent.
        lambda s: s.execute(sa.text("UPDATE apph_parts SET size = 5")),
        lambda s: s.execute(sa.select(sa.literal_column("1")).select_from(
            sa.text("apph_parts"))),
        lambda s: s.connection().exec_driver_sql("DELETE FROM APPH_PARTS"),
        # Into the table through another table's UPDATE (MySQL's
        # multi-table form), and its DDL.
        lambda s: s.execute(sa.update(unscoped).values({parts.c.name: "x"})
                            .where(unscoped.c.delivery_key == parts.c.name)),
        lambda s: s.execute(sa.update(unscoped).values({parts.c.name: "x"})),
        lambda s: s.connection().execute(sa.schema.DropTable(parts)),
    ]
    if dialect in ("sqlite", "postgresql"):
        insert = (sqlite if dialect == "sqlite" else postgresql).insert
        attempts.append(lambda s: s.execute(insert(parts).values(
            id=part_a.id, owner="hostb", name="u", size=1)
            .on_conflict_do_update(index_elements=["id"],
                                   set_={"name": "stolen"})))
    if dialect == "postgresql":
        attempts.append(lambda s: s.execute(sa.select(sa.literal(1)).add_cte(
            sa.update(parts).values(size=9).returning(parts.c.id).cte("u"))))
    for attempt in attempts:
        def run(attempt: Any = attempt) -> None:
            with db.writer.using(_ctxt(B)) as session:
                attempt(session)
        _refused(apph, run)
    # A table of the core declared without a column: a host writes no row
    # of it but through the core's own rules.
    with pytest.raises(exception.Forbidden) as info:
        with db.writer.using(_ctxt(B)) as session:
            session.execute(sa.update(models.Migration.__table__)
                            .values(status="error"))
    assert info.value.kwargs["reason"] == "a host writes no row of migrations"
    # The same statements' scoped forms work; an admin is unscoped.
    with db.writer.using(_ctxt(B)) as session:
        session.execute(sa.update(parts).where(parts.c.owner == "hostb")
                        .values(size=3))
        session.execute(sa.insert(parts), [
            {"owner": "hostb", "name": "m1", "size": 1},
            {"owner": "hostb", "name": "m2", "size": 1}])
    with db.writer.using(admin) as session:
        session.execute(sa.update(parts).values(size=4))
    assert {r[3] for r in _rows(apph)} == {4}


def test_admins_unsigned_and_local_callers_are_unscoped(apph: Any) -> None:
    for who in (principal.admin(), principal.UNSIGNED_PRINCIPAL, None):
        ctxt = _ctxt(who)
        part = _part(apph, ctxt, "hosta")
        part.rename("renamed")
        _as(part, ctxt).give_to("hostc")
        part.destroy_by_text()
    assert _rows(apph) == []


def test_values_must_fit_their_columns(apph: Any) -> None:
    """Text longer than its column, a value of the wrong type, an integer
    out of range: ``MalformedRequest`` naming table and column, nothing
    written (SQLite would store each as it is; PostgreSQL would raise a
    driver error)."""
    admin = _ctxt()
    part = _part(apph, admin, "hosta", name="sixteen-chars-ok")
    before = _rows(apph)
    for action, where in [
            (lambda: _part(apph, admin, "hosta", name="seventeen-chars!!"),
             "apph_parts.name: text longer than 16"),
            (lambda: part.rename("x" * 17), "apph_parts.name"),
            (lambda: part.rename("nul\0"), "apph_parts.name: text with a NUL"),
            (lambda: part.resize("big"), "apph_parts.size: str is not an integer"),
            (lambda: part.resize(False), "apph_parts.size: bool is not"),
            (lambda: part.resize(2 ** 31), "apph_parts.size: integer out of range"),
            (lambda: part.resize(1.5), "apph_parts.size: float is not")]:
        with pytest.raises(exception.MalformedRequest) as info:
            action()
        assert where in info.value.message
        assert _rows(apph) == before


def test_the_core_declares_its_tables_the_same_way(apph: Any) -> None:
    assert novalet_app.APP.host_scoped == {
        "services": "host", "compute_nodes": "host", "instances": "host",
        "migrations": None}
    tables = scope.scoped_tables()
    assert tables["apph_parts"] == "owner"
    assert tables["instances"] == "host"
    with pytest.raises(exception.AppLoadError, match="declares the host scope"):
        app.register(app.App(name="apph2", host_scoped={"instances": "node"}))
    for bad in ({"t": 1}, ["t"], {"": "c"}):
        with pytest.raises(exception.AppLoadError, match="host_scoped"):
            app.App(name="bad", host_scoped=bad)  # type: ignore[arg-type]


def test_the_cores_tables_are_scoped_with_the_core_app_not_loaded(
        monkeypatch: Any) -> None:
    """The database imports no app declaration: it keeps the core's map
    with the core's rules, so a process that loaded no app (nothing in
    ``app.loaded()``) still confines a host to its own core rows."""
    monkeypatch.setattr(app, "_loaded", {})
    assert scope.scoped_tables() == {
        "services": "host", "compute_nodes": "host", "instances": "host",
        "migrations": None}
    assert novalet_app.APP.host_scoped == scope.CORE_HOST_SCOPED


def test_the_write_itself_carries_the_scope(apph: Any, monkeypatch: Any) -> None:
    """A row that changes hands between the look and the write (simulated:
    the look sees none of A's rows) is still not written: the statement
    that writes carries ``owner = :caller``."""
    from novalet.db import statements

    admin = _ctxt()
    part_a = _part(apph, admin, "hosta")
    before = _rows(apph)
    monkeypatch.setattr(statements, "names_foreign_rows", lambda *a: False)
    _as(part_a, _ctxt(B)).rename("stolen")
    _as(part_a, _ctxt(B)).give_to("hostb")
    assert _rows(apph) == before


# -- context.principal and the scope over RPC, with keys -----------------------

RPC_PATHS = ["fakerpc", pytest.param("rabbit", marks=pytest.mark.integration)]


@pytest.fixture(params=RPC_PATHS)
def served_apph(request: pytest.FixtureRequest, conf: Any,
                _apph_databases: Any, tmp_path: Any) -> Iterator[Any]:
    """apph on SQLite behind a conductor thread (holding the master key)
    over oslo.messaging's ``fake://`` or RabbitMQ; ``sign_as(who)`` makes
    this process's requests signed as ``"host"`` (hostb, its own key),
    ``"admin"`` (the master key) or ``"unsigned"`` (no key; the conductor
    then runs with ``[auth] enforce`` false)."""
    from novalet import auth, rpc
    from novalet.auth import keys
    from tests.conftest import MASTER_KEY_FILE, conductor_thread

    url = ("fake://" if request.param == "fakerpc"
           else request.getfixturevalue("rabbit_vhost").url)
    with isolated_registry("tests.apps.apph_"):
        module = use_apph(conf, _apph_databases("sqlite"))
        module.database = _apph_databases("sqlite")
        admin = _ctxt()
        module.part_a = _part(module, admin, "hosta")
        module.part_b = _part(module, admin, "hostb")

        def sign_as(who: str) -> Any:
            if who == "host":
                key_file = str(tmp_path / "b.key")
                keys.write_host_key(MASTER_KEY_FILE, "hostb", key_file)
                conf("host", "hostb")
                conf("key_file", key_file, "auth")
            if who == "unsigned":
                conf("enforce", False, "auth")
            rpc.cleanup()
            return conductor_thread(conf, url)

        module.sign_as = sign_as
        module.unsigned = lambda: setattr(auth, "_signer", None)
        module.remote = request.param
        yield module
        db_engine.dispose()


@pytest.mark.parametrize("who", ["host", "admin", "unsigned"])
def test_an_apps_method_sees_the_verified_caller(served_apph: Any,
                                                 who: str) -> None:
    apph = served_apph
    assert apph.Part.whoami(_ctxt()) == [None, None]  # a local call
    with apph.sign_as(who):
        if who == "unsigned":
            apph.unsigned()  # this process signs nothing from now on
        seen = apph.Part.whoami(_ctxt())
    expected = {"host": ["host", "hostb"], "admin": ["admin", None],
                # oslo.messaging's fake:// driver runs in this process: an
                # unsigned request on it is a local call.
                "unsigned": (["unsigned", None] if apph.remote == "rabbit"
                             else [None, None])}[who]
    assert seen == expected


def test_host_b_is_confined_through_the_conductor(served_apph: Any) -> None:
    """Signed as hostb, through a conductor: A's rows are refused (the
    ``Forbidden`` arrives as itself), B's own are written."""
    apph = served_apph
    before = _rows(apph)
    with apph.sign_as("host"):
        ctxt = _ctxt()  # says admin: believed for nothing
        for action in [apph.Part(ctxt, owner="hosta", name="x", size=1).create,
                       lambda: _as(apph.part_a, ctxt).rename("stolen"),
                       lambda: _as(apph.part_b, ctxt).give_to("hosta"),
                       _as(apph.part_a, ctxt).destroy,
                       _as(apph.part_b, ctxt).destroy_by_text]:
            with pytest.raises(exception.Forbidden, match="host hostb"):
                action()
        assert _rows(apph) == before
        _as(apph.part_b, ctxt).rename("mine")
        made = apph.Part(ctxt, owner="hostb", name="new", size=2)
        made.create()
        # A value too long for its column: typed, nothing written.
        with pytest.raises(exception.MalformedRequest, match="apph_parts.name"):
            _as(apph.part_b, ctxt).rename("x" * 17)
    assert _rows(apph) == [*before[:1], (apph.part_b.id, "hostb", "mine", 1),
                           (made.id, "hostb", "new", 2)]


def test_the_conductor_checks_an_apps_fields_against_its_columns(
        served_apph: Any, monkeypatch: Any) -> None:
    """``novalet.conductor.validate`` knows an app object's table
    (``obj_db_table``): a field too long for its column or out of its
    range is refused before the method runs (``Part.name``, not the
    statement's ``apph_parts.name``); without the table named, the
    statement's own check still refuses it."""
    apph = served_apph
    before = _rows(apph)
    with apph.sign_as("admin"):
        for field, value, reason in [
                ("name", "x" * 17, "Part.name: text longer than 16"),
                ("size", 2 ** 31, "Part.size: integer out of range")]:
            part = apph.Part(_ctxt(), owner="hosta", name="ok", size=1)
            setattr(part, field, value)
            with pytest.raises(exception.MalformedRequest, match=reason):
                part.create()
        monkeypatch.delattr(apph.Part, "obj_db_table")
        part = apph.Part(_ctxt(), owner="hosta", name="x" * 17, size=1)
        with pytest.raises(exception.MalformedRequest,
                           match="apph_parts.name: text longer than 16"):
            part.create()
    assert _rows(apph) == before
