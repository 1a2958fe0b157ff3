"""Version negotiation, generated: every remotable method (instance and
class) of every registered object x the caller's caps x the conductor's
release x the indirection.

Caps: ``none`` (no pin: ``auto`` with the conductor reachable), each
older release pinned, and ``auto`` while no conductor answered (the state a
compute started before its conductor is in). Conductors: this release in
this process (``inprocess``, SQLite), this release as a ``novalet-conductor``
on RabbitMQ + PostgreSQL (``rpc``), release 1's code the same way
(``rpc-r1``).

Each call must return what an uncapped local call returns (for what the
caps can carry) and leave the same rows (but for the columns of fields the
caps cannot carry); then the caps rise, and the object the call created or
read writes its new-release fields with one save, without a restart. A
release 1 conductor may refuse what it does not have (a method it lacks, a
pin above it) with a typed error and no row changed; everything it has must
work.

Every installed app's namespace, at its own releases' caps:
test_app_negotiation_matrix.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from novalet.db import engine as db_engine
from novalet.db import migration
from novalet.objects import base as objects_base
from novalet.upgrade import releases
from tests import matrix, services
from tests.conftest import CONDUCTOR_HOST, start_conductor, stop_conductor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

objects.register_all()
METHODS = matrix.remotable_methods()
#: A pin of this release itself resolves to no caps, like "none": left out.
CAPS = ["none", *(name for name, version in releases.RELEASES.items()
                  if version < releases.SERVICE_VERSION), "auto-unreachable"]
CONDUCTORS = ["inprocess", "rpc", "rpc-r1"]
R1_HOST = "matrix-r1-conductor"


@pytest.fixture(scope="module")
def r1_conductor(tmp_path_factory: pytest.TempPathFactory, release1: Any,
                 rabbit_vhost: services.RabbitVhost) -> Any:
    """Release 1's ``novalet-conductor`` on a database of its own, and the
    remotable methods release 1 has."""
    directory = tmp_path_factory.mktemp("matrix-r1")
    listed = subprocess.run(
        [sys.executable, "-c", _LIST_REMOTABLES], capture_output=True,
        text=True, env=release1.env, timeout=60, cwd=str(directory))
    assert listed.returncode == 0, listed.stderr
    conductor = start_conductor(directory, rabbit_vhost.url, R1_HOST,
                                bin_dir=release1.bin, env=release1.env)
    conductor["methods"] = set(json.loads(listed.stdout))
    yield conductor
    stop_conductor(conductor)


#: Run with release 1's code: its remotable methods, as "Object.method".
_LIST_REMOTABLES = """
import inspect, json
import novalet
from novalet import objects
from oslo_versionedobjects import base
objects.register_all()
found = []
for name, classes in base.VersionedObjectRegistry.obj_classes().items():
    for cls in classes:
        for attr in dir(cls):
            static = inspect.getattr_static(cls, attr, None)
            fn = static.__func__ if isinstance(static, classmethod) else static
            if getattr(fn, "remotable", False):
                found.append("%s.%s" % (name, attr))
print(json.dumps(sorted(set(found))))
"""


class Target:
    """Where one scenario runs: the database its rows are in, and how to
    make this process a caller of that conductor."""

    def __init__(self, name: str, database: services.Database,
                 keep_host: str | None, settings: dict[tuple[str, str | None], Any],
                 r1_methods: set[str] | None = None) -> None:
        self.name = name
        self.database = database
        self.keep_host = keep_host
        self.settings = settings
        self.r1_methods = r1_methods


@pytest.fixture(params=CONDUCTORS)
def target(request: pytest.FixtureRequest, conf: Any,
           _database_registry: Any) -> Target:
    if request.param == "inprocess":
        return Target("inprocess", _database_registry("sqlite"), None,
                      {("indirection", "objects"): "inprocess"})
    if request.param == "rpc":
        conductor = request.getfixturevalue("conductor_process")
        host = CONDUCTOR_HOST
    else:
        conductor = request.getfixturevalue("r1_conductor")
        host = conductor["host"]
    settings = {
        ("indirection", "objects"): "rpc",
        ("topic", "conductor"): conductor["topic"],
        ("transport_url", None): conductor["transport_url"],
        ("rpc_response_timeout", None): 20,
    }
    if request.param == "rpc-r1":
        # Release 1 replies unsealed: accepted during a rolling upgrade only
        # (doc/source/admin/upgrades.rst), as this caller is configured.
        settings[("require_reply_auth", "auth")] = False
    return Target(request.param, conductor["database"], host, settings,
                  r1_methods=conductor.get("methods"))


def _use_database(conf: Any, target: Target) -> None:
    """Point this process at the target's database, migrated, with only the
    conductor's own service record left (``use_database`` would delete
    that too, and ``auto`` would then see no conductor at all)."""
    indirection.reset()
    conf("connection", target.database.url, "database")
    db_engine.configure(novalet_conf.CONF)
    if migration.db_version() != migration.head_revision():
        migration.db_sync()
    target.database.clean(keep_host=target.keep_host)


def _tables() -> dict[str, Any]:
    return {cls.obj_name(): cls for cls in matrix.registered_classes()
            if matrix.is_persistent(cls)}


def _left_out(caps: dict[str, str] | None) -> dict[str, set[str] | None]:
    """Per table, the columns of fields the caps cannot carry."""
    from novalet.db import models

    left: dict[str, set[str] | None] = {}
    for name, cls in _tables().items():
        table = getattr(models, name).__tablename__
        carried = matrix.fields_at(cls, (caps or {}).get(name), caps)
        left[table] = {cls.obj_db_columns.get(f, f) for f in cls.fields
                       if f not in carried} or None
    return left


def _carried(value: Any, caps: dict[str, str] | None,
             namespace: str = "novalet") -> Any:
    """``normal(value)`` with only the fields the caps carry."""
    normal = matrix.normal(value)
    return _filter(normal, caps, namespace)


def _filter(normal: Any, caps: dict[str, str] | None, namespace: str = "novalet") -> Any:
    if isinstance(normal, tuple) and len(normal) == 2 and isinstance(normal[1], dict):
        name, values = normal
        cls = matrix.class_named(name, namespace)
        carried = matrix.fields_at(cls, (caps or {}).get(name), caps)
        return (name, {k: _filter(v, caps, namespace) for k, v in values.items()
                       if k in carried})
    if isinstance(normal, list):
        return [_filter(v, caps, namespace) for v in normal]
    return normal


def _subject(method: matrix.Method, world: matrix.World, result: Any) -> Any:
    """The persistent object a class method's result holds for row 0."""
    item = matrix.item_class(method.cls)
    if item.obj_name() not in world.rows:
        return None
    key = "uuid" if "uuid" in item.fields else "id"  # an app's may have no uuid
    wanted = getattr(world.row(method.cls), key)
    candidates = result if isinstance(result, objects_base.ovo_base.ObjectListBase) \
        else [result]
    for obj in candidates:
        if isinstance(obj, item) and obj.obj_attr_is_set(key) and \
                getattr(obj, key) == wanted:
            return obj
    return None


def _play(method: matrix.Method, ctxt: Any, world: matrix.World) -> tuple[Any, Any]:
    """Call ``method`` as a user would; returns (result, the object it
    created, changed or read)."""
    if method.is_class:
        result = getattr(method.cls, method.name)(ctxt, *matrix.arguments(world, method))
        return result, _subject(method, world, result)
    if method.name == "create":
        subject = matrix.make_object(method.cls, matrix.NEW, ctxt)
    else:
        getter = matrix.getter(world, method.cls)
        assert getter is not None, "no remotable getter reads %s back" % method.cls.obj_name()
        subject = getattr(method.cls, getter.name)(ctxt, *matrix.arguments(world, getter))
        if method.name == "save":
            for name in matrix.settable_fields(method.cls):
                if name != "uuid":
                    setattr(subject, name, matrix.value_for(
                        method.cls, name, method.cls.fields[name], matrix.NEW))
    result = getattr(subject, method.name)(*matrix.arguments(world, method))
    return result, subject


def _raise_caps(subject: Any, caps: dict[str, str] | None) -> None:
    """What a user does once the caps rose: set the fields the low caps
    could not carry, and save."""
    if subject is None or getattr(subject, "deleted", False):
        return
    cls = type(subject)
    if not hasattr(cls, "save"):
        return  # nothing writes the new fields: an app's object may have no save()
    carried = matrix.fields_at(cls, (caps or {}).get(cls.obj_name()), caps)
    for name in matrix.settable_fields(cls):
        if name not in carried:
            setattr(subject, name, matrix.value_for(cls, name, cls.fields[name],
                                                    matrix.NEW))
    subject.save()


_references: dict[tuple[str, str, str], dict[str, Any]] = {}


def _reference(method: matrix.Method, target: Target, conf: Any,
               caps: dict[str, str] | None) -> dict[str, Any]:
    """The same scenario with no indirection at all (once per target,
    method and caps)."""
    key = (target.name, method.id, json.dumps(caps, sort_keys=True))
    if key not in _references:
        _references[key] = _run_reference(method, target, conf, caps)
    return _references[key]


def _run_reference(method: matrix.Method, target: Target, conf: Any,
                   caps: dict[str, str] | None) -> dict[str, Any]:
    _use_database(conf, target)
    ctxt = context.get_admin_context()
    world = matrix.World(ctxt)
    result, subject = _play(method, ctxt, world)
    outcome = {"result": result, "subject": matrix.normal(subject),
               "rows": matrix.table_rows(target.database, dict.fromkeys(_left_out(None)),
                                         target.keep_host)}
    _raise_caps(subject, caps)
    outcome["risen_subject"] = matrix.normal(subject)
    outcome["risen_rows"] = matrix.table_rows(
        target.database, dict.fromkeys(_left_out(None)), target.keep_host)
    return outcome


def _configure(conf: Any, target: Target, caps: str) -> Any:
    """This process as a caller with ``caps``. For ``auto-unreachable`` the
    caps' question to the conductors fails as an unanswered call does (the
    real thing, as separate processes, is in test_negotiation_processes)."""
    for (name, group), value in target.settings.items():
        conf(name, value, group)
    conf("conductor", caps if caps in releases.RELEASES else None, "upgrade_levels")
    api = indirection.configure(novalet_conf.CONF)
    api.caps_asked = api.caps.peers.minimum_version
    if caps == "auto-unreachable":
        def unreachable(ctxt: Any) -> int:
            raise exception.RPCTimeout(topic=target.settings.get(("topic", "conductor")),
                                       timeout=0)
        api.caps.peers.minimum_version = unreachable
    return api


@pytest.mark.parametrize("caps", CAPS)
@pytest.mark.parametrize("method", METHODS, ids=lambda m: m.id)
def test_every_method_at_every_cap(method: matrix.Method, caps: str, target: Target,
                                   conf: Any) -> None:
    # The reference runs first, at the caps this scenario will have.
    _use_database(conf, target)
    api = _configure(conf, target, caps)
    ctxt = context.get_admin_context()
    effective = api.caps.object_versions(ctxt)
    expected = _reference(method, target, conf, effective)

    _use_database(conf, target)
    world = matrix.World(ctxt)
    before = matrix.table_rows(target.database, dict.fromkeys(_left_out(None)),
                               target.keep_host)
    api = _configure(conf, target, caps)
    assert api.caps.object_versions(ctxt) == effective

    may_refuse = target.r1_methods is not None and (
        method.id not in target.r1_methods
        or releases.RELEASES.get(caps, 1) > 1)  # pinned above release 1
    try:
        result, subject = _play(method, ctxt, world)
    except (exception.DispatchRefused, exception.NovaletException) as e:
        if not may_refuse:
            raise
        assert isinstance(e, exception.DispatchRefused), repr(e)
        assert matrix.table_rows(target.database, dict.fromkeys(_left_out(None)),
                                 target.keep_host) == before, "a refused call changed rows"
        return

    left_out = _left_out(effective)
    assert matrix.table_rows(target.database, left_out, target.keep_host) == \
        _strip(expected["rows"], left_out)
    if method.is_class:
        assert _carried(result, effective) == _carried(expected["result"], effective)
    else:
        assert matrix.normal(result) == matrix.normal(expected["result"])
        if method.name in ("create", "save"):  # every field was set by the caller
            assert matrix.normal(subject) == expected["subject"]
        else:  # read at the caps, then acted on
            assert _filter(matrix.normal(subject), effective) == \
                _filter(expected["subject"], effective)

    if effective is None or target.name == "rpc-r1":
        return  # nothing to rise to (release 1's conductor stays capped)
    # The caps rise (the pin is lifted; auto reads this release's conductor).
    conf("conductor", None, "upgrade_levels")
    api.caps.peers.minimum_version = api.caps_asked  # the conductors answer again
    api.caps.invalidate()
    assert api.caps.object_versions(ctxt) is None
    _raise_caps(subject, effective)
    assert matrix.table_rows(target.database, dict.fromkeys(_left_out(None)),
                             target.keep_host) == expected["risen_rows"]
    if subject is not None and not getattr(subject, "deleted", False):
        assert matrix.normal(subject) == expected["risen_subject"]


def _strip(rows: dict[str, list[dict[str, Any]]],
           left_out: dict[str, set[str] | None]) -> dict[str, list[dict[str, Any]]]:
    return {table: sorted(({k: v for k, v in row.items()
                            if not left_out.get(table) or k not in left_out[table]}
                           for row in table_rows), key=repr)
            for table, table_rows in rows.items()}


def test_the_matrix_covers_every_remotable_method() -> None:
    """The generator finds every method the object modules mark remotable
    (counted in their source, independently of the generator), so a broken
    discovery cannot pass an empty matrix."""
    import glob
    import re

    sources = glob.glob(os.path.join(os.path.dirname(objects.__file__), "*.py"))
    marked = 0
    for path in sources:
        with open(path) as f:
            marked += len(re.findall(r"^\s*@base\.remotable\s*$", f.read(), re.M))
    assert marked >= 30
    assert len(METHODS) == marked, sorted(m.id for m in METHODS)

