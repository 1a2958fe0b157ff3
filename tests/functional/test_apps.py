"""Apps (novalet.app): loaded by entry point, namespaced registry, served
by the conductor; two apps with a same-named object side by side."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from oslo_versionedobjects import base as ovo_base

from novalet import app, context, exception, indirection, objects, rpc
from novalet import conf as novalet_conf
from novalet.conductor import manager as conductor_manager
from novalet.db import migration
from novalet.objects import base as objects_base
from novalet.objects import codec
from tests.apps import app_environment, install_app
from tests.conftest import calls_through


@pytest.fixture(autouse=True)
def _isolated():
    from tests.apps import isolated_registry

    with isolated_registry("tests.apps.appa_objects", "tests.apps.appb_objects",
                           "tests.apps.ovo_library", "shadowing_objects"):
        yield


def _apps() -> tuple[object, object]:
    # The os-vif style library registers its Widget first: it holds the name
    # in oslo.versionedobjects' own registry.
    import tests.apps.ovo_library  # noqa: F401

    objects.register_all(["novalet"])
    from tests.apps import declared

    app.register(declared.APPA)
    app.register(declared.APPB)
    import tests.apps.appa_objects as appa
    import tests.apps.appb_objects as appb
    return appa, appb


@pytest.fixture
def app_db(conf, tmp_path):
    """A database of its own (the session's shared ones keep the core's
    tables only), migrated for the core and appa."""
    from novalet.db import engine as db_engine
    from novalet.db import migration

    conf("connection", "sqlite:///%s" % (tmp_path / "apps.db"), "database")
    db_engine.configure(novalet_conf.CONF)
    mods = _apps()
    migration.db_sync()
    yield mods
    db_engine.dispose()


@pytest.fixture(params=["local", "inprocess", "fakerpc"])
def served(request, conf, app_db):
    """The two test apps, run locally, through an in-process conductor, or
    over oslo.messaging (fake:// transport) to a conductor thread."""
    with calls_through(conf, request.param):
        yield app_db


def test_two_apps_same_object_name_work_together(served):
    appa, appb = served
    ctxt = context.get_admin_context()
    a = appa.Widget.make(ctxt, "x", 3)
    b = appb.Widget.make(ctxt, "x", 5)
    assert type(a) is appa.Widget and type(b) is appb.Widget
    assert (a.name, a.size, a.gear.teeth) == ("appa:x", 3, 6)
    assert (b.name, b.size, b.gear.teeth) == ("appb:x", 5, 10)
    assert type(a.gear) is appa.Gear and type(b.gear) is appb.Gear
    assert a.grow(2) == "appa" and b.grow(1) == "appb"
    assert (a.size, a.gear.teeth, b.size, b.gear.teeth) == (5, 7, 6, 11)
    before = appa.Widget.stored_sizes(ctxt)  # the database is the session's
    first = a.store()
    assert appa.Widget.make(ctxt, "y", 9).store() == first + 1
    assert appa.Widget.stored_sizes(ctxt) == before + [5, 9]
    listed = appb.WidgetList.of(ctxt, [1, 2])
    assert type(listed) is appb.WidgetList
    assert [type(w) for w in listed] == [appb.Widget, appb.Widget]
    assert [w.size for w in listed] == [1, 2]


def test_registry_is_keyed_by_namespace():
    appa, appb = _apps()
    import tests.apps.ovo_library as lib

    assert codec.class_for("Widget", "1.0", "appa") is appa.Widget
    assert codec.class_for("Widget", "1.0", "appb") is appb.Widget
    # The library's registry still answers for the library's own object.
    assert ovo_base.VersionedObject.obj_class_from_name("Widget", "1.3") is lib.Widget
    assert codec.version_tree("Widget", "appb") == {"Widget": "1.0", "Gear": "1.0"}
    prim = appa.Widget(name="n", size=1, gear=None).obj_to_primitive()
    assert prim["novalet_object.namespace"] == "appa"
    back = objects_base.NovaletObjectSerializer().deserialize_entity(None, prim)
    assert type(back) is appa.Widget


def test_unknown_namespace_is_refused_with_a_typed_error():
    appa, _ = _apps()
    prim = appa.Widget(name="n", size=1, gear=None).obj_to_primitive()
    prim["novalet_object.namespace"] = "os_vif"
    ser = objects_base.NovaletObjectSerializer()
    with pytest.raises(exception.UnknownNamespace, match="os_vif"):
        ser.deserialize_entity(None, prim)
    with pytest.raises(exception.UnknownNamespace):
        objects_base.NovaletObject.obj_from_primitive(prim)
    manager = conductor_manager.ConductorManager(novalet_conf.CONF)
    with pytest.raises(exception.UnknownNamespace, match="nosuchapp"):
        manager.object_class_action_versions(
            context.get_admin_context(), "Widget", "make", {"Widget": "1.0"},
            ["x", 1], {}, objnamespace="nosuchapp")


def test_old_form_of_class_action_still_serves_the_core(app_db):
    """RPC 1.0/1.1 callers send no objnamespace: the core's class."""
    _apps()
    manager = conductor_manager.ConductorManager(novalet_conf.CONF)
    with objects_base.run_locally():
        result = manager.object_class_action_versions(
            context.get_admin_context(), "ServiceList", "get_all",
            {"ServiceList": "1.0", "Service": "1.0"}, [], {})
    assert result["novalet_object.name"] == "ServiceList"


def test_a_conductor_capped_below_1_2_refuses_app_class_methods(conf):
    from novalet.conductor import rpcapi

    _apps()
    conf("transport_url", "fake://")
    rpc.init(novalet_conf.CONF)
    api = rpcapi.ConductorAPI(novalet_conf.CONF, version_cap="1.1")
    with pytest.raises(exception.UnsupportedRPCVersion, match="appa.Widget"):
        api.object_class_action_versions(context.get_admin_context(), "Widget",
                                         "make", {"Widget": "1.0"}, [], {},
                                         objnamespace="appa")


def test_core_lookups_match_the_library():
    """codec's namespaced lookups give what oslo.versionedobjects' own give
    for every core class (the core holds its names in both registries)."""
    objects.register_all(["novalet"])
    for name, classes in codec.classes("novalet").items():
        assert codec.version_tree(name) == ovo_base.obj_tree_get_versions(name)
        for cls in classes:
            assert codec.class_for(name, cls.VERSION) is \
                ovo_base.VersionedObject.obj_class_from_name(name, cls.VERSION)


def test_an_app_cannot_register_in_another_namespace(tmp_path, monkeypatch):
    (tmp_path / "shadowing_objects.py").write_text(
        "from novalet.objects import base, fields\n"
        "@base.NovaletObjectRegistry.register\n"
        "class Shadow(base.NovaletObject):\n"
        "    VERSION = '9.0'\n"
        "    fields = {'x': fields.IntegerField()}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    objects.register_all(["novalet"])
    with pytest.raises(exception.AppLoadError,
                       match="shadowing.*novalet.Shadow"):
        app.register(app.App(name="shadowing",
                             object_modules=["shadowing_objects"]))
    assert "shadowing" not in app.loaded()


_install = install_app
_env = app_environment


def _run(binary: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = _env(tmp_path)
    return subprocess.run([os.path.join(os.path.dirname(sys.executable), binary),
                           "--config-file", str(tmp_path / "novalet.conf"), *args],
                          capture_output=True, text=True, env=env, timeout=60,
                          cwd=str(tmp_path))


@pytest.mark.parametrize("binary", ["novalet-conductor", "novalet-compute"])
def test_an_app_that_does_not_import_stops_the_service(tmp_path, binary):
    _install(tmp_path, "brokenapp", "brokenapp = brokenapp_decl:APP\n",
             {"brokenapp_decl": "import no_such_module_anywhere\n"})
    (tmp_path / "novalet.conf").write_text("[DEFAULT]\n")
    result = _run(binary, tmp_path)
    assert result.returncode == 2  # a configuration that cannot work
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("%s: cannot start: App brokenapp cannot be "
                                "loaded" % binary), result.stderr
    assert "no_such_module_anywhere" in lines[-1]


def test_two_apps_with_one_name_stop_the_conductor(tmp_path):
    decl = ("from novalet import app\n"
            "APP = app.App(name='twin', object_modules=[])\n")
    _install(tmp_path, "twin-one", "twin = twin_one:APP\n", {"twin_one": decl})
    _install(tmp_path, "twin-two", "twin = twin_two:APP\n", {"twin_two": decl})
    (tmp_path / "novalet.conf").write_text("[DEFAULT]\n")
    result = _run("novalet-conductor", tmp_path)
    assert result.returncode == 2  # a configuration that cannot work
    last = result.stderr.strip().splitlines()[-1]
    assert "App twin cannot be loaded: two apps have this name" in last, result.stderr


def test_apps_option_names_an_app_that_is_not_installed(tmp_path):
    (tmp_path / "novalet.conf").write_text("[DEFAULT]\napps = missingapp\n")
    result = _run("novalet-conductor", tmp_path)
    assert result.returncode == 2  # a configuration that cannot work
    assert "App missingapp cannot be loaded" in result.stderr.strip().splitlines()[-1]


def test_novalet_itself_is_an_app_loaded_by_entry_point():
    objects.register_all(["novalet"])
    core = app.loaded()["novalet"]
    assert "novalet.objects.service" in core.object_modules
    assert core.releases["2"]["ComputeNode"] == "1.1"
    assert codec.newest("Service") is objects.Service


@pytest.mark.integration
def test_a_separate_conductor_serves_installed_apps_over_rabbitmq(
        tmp_path, conf, rabbit_vhost, _database_registry):
    """Installing the apps (entry points) and starting novalet-conductor is
    all it takes: this process, with no database access, calls both apps'
    same-named objects through it over RabbitMQ into PostgreSQL."""
    from tests import conftest as root_conftest
    from tests import processes, services

    try:
        database = services.provision_database("postgresql", str(tmp_path))
    except services.ServiceUnavailable as e:
        root_conftest.service_unavailable(str(e))
    _install(tmp_path, "test-apps",
             "appa = tests.apps.declared:APPA\nappb = tests.apps.declared:APPB\n",
             {})
    topic = "conductor-%s" % os.urandom(4).hex()
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "apps-conductor"},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": topic},
    })
    env = _env(tmp_path)
    assert _run("novalet-manage", tmp_path, "db", "sync").returncode == 0
    proc = processes.ServiceProcess("novalet-conductor", config,
                                    str(tmp_path / "conductor.log"), env=env)
    try:
        proc.wait_for_log(r"novalet-conductor started on apps-conductor")
        appa, appb = _apps()
        conf("topic", topic, "conductor")
        conf("transport_url", rabbit_vhost.url)
        conf("indirection", "rpc", "objects")
        indirection.configure(novalet_conf.CONF)
        ctxt = context.get_admin_context()
        a = appa.Widget.make(ctxt, "r", 2)
        b = appb.Widget.make(ctxt, "r", 4)
        assert (type(a), a.name, type(b), b.name) == (
            appa.Widget, "appa:r", appb.Widget, "appb:r")
        assert b.grow(3) == "appb" and (b.size, b.gear.teeth) == (7, 9)
        assert [w.size for w in appa.WidgetList.of(ctxt, [3])] == [3]
        assert objects.ServiceList.get_all(ctxt)  # the core, beside them
        assert not proc.errors(), proc.errors()
    finally:
        indirection.reset()
        proc.stop()
        database.drop()


def test_the_no_db_guard_covers_apps_reader_and_writer(app_db):
    from novalet import db

    appa, _ = app_db
    ctxt = context.get_admin_context()
    widget = appa.Widget.make(ctxt, "g", 1)
    before = appa.Widget.stored_sizes(ctxt)
    db.block_access("test-agent")
    try:
        with pytest.raises(exception.DBNotAllowed, match="test-agent"):
            widget.store()
        with pytest.raises(exception.DBNotAllowed):
            appa.Widget.stored_sizes(ctxt)
        with pytest.raises(exception.DBNotAllowed):
            with db.writer.using(ctxt):
                pass
        with db.conductor_access():  # a conductor dispatching in this process
            widget.store()
    finally:
        db.allow_access()
    assert appa.Widget.stored_sizes(ctxt) == before + [1]


def _app_env(tmp_path: Path, apps: str = "appa,appb") -> None:
    _install(tmp_path, "test-apps",
             "appa = tests.apps.declared:APPA\nappb = tests.apps.declared:APPB\n",
             {})
    (tmp_path / "novalet.conf").write_text(
        "[DEFAULT]\napps = %s\n[database]\nconnection = sqlite:///%s\n"
        % (apps, tmp_path / "n.db"))


def test_manage_db_sync_and_version_cover_every_lineage(tmp_path):
    from tests.apps import declared  # noqa: F401  (importable from the repository root)

    _app_env(tmp_path)
    result = _run("novalet-manage", tmp_path, "db", "version")
    assert result.stdout.splitlines()[1:] == ["appa: None (not synced)"], result
    result = _run("novalet-manage", tmp_path, "db", "sync", "--app", "appa")
    assert (result.returncode, result.stdout) == (0, "App appa is at appa_0001\n")
    result = _run("novalet-status", tmp_path, "upgrade", "check")
    assert result.returncode == 2 and "never synced" in result.stdout
    result = _run("novalet-manage", tmp_path, "db", "sync")
    assert result.returncode == 0
    head = migration.head_revision()
    assert result.stdout.splitlines() == [
        "Database is at %s" % head, "App appa is at appa_0001"]
    result = _run("novalet-manage", tmp_path, "db", "version")
    assert result.stdout.splitlines() == [head, "appa: appa_0001"]
    result = _run("novalet-manage", tmp_path, "db", "sync", "--app", "appb")
    assert result.returncode == 2
    assert "App appb cannot be loaded: no loaded app of this name has migrations" \
        in result.stderr


def test_conductor_and_status_check_every_app_schema(tmp_path):
    _app_env(tmp_path)
    assert _run("novalet-manage", tmp_path, "db", "sync", "--app",
                "novalet").returncode == 0
    result = _run("novalet-status", tmp_path, "upgrade", "check")
    assert result.returncode == 2
    assert "App schemas behind: appa (at nothing, needs appa_0001)" in \
        " ".join(result.stdout.split())
    result = _run("novalet-conductor", tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "novalet-conductor: cannot start: app appa's "
        "schema is at nothing, this release needs appa_0001: run "
        "'novalet-manage db sync'")
    # [DEFAULT] apps restricts what is loaded, hence checked.
    (tmp_path / "novalet.conf").write_text(
        (tmp_path / "novalet.conf").read_text().replace("apps = appa,appb",
                                                        "apps = appb"))
    result = _run("novalet-manage", tmp_path, "db", "version")
    assert result.stdout.splitlines() == [migration.head_revision()]



def test_metrics_labels_keep_two_apps_same_named_objects_apart():
    """The conductor's ``object`` label is ``app.Name`` for an app's objects
    (the core's keep their plain names); only registered names and their
    remotable methods become labels."""
    from novalet.metrics import conductor as conductor_metrics

    _apps()
    label = conductor_metrics.object_label
    assert label("Widget", "appa") == "appa.Widget"
    assert label("Widget", "appb") == "appb.Widget"
    assert label("ComputeNode") == "ComputeNode"
    assert label("Widget") == label("Widget", "nosuchapp") == label(None, "appa") == "unknown"
    method = conductor_metrics.method_label
    assert method("appa.Widget", "store") == "store"
    assert method("appb.Widget", "store") == "unknown"  # appb's Widget has none
    assert method("appb.Widget", "grow") == "grow"
    assert method("ComputeNode", "save") == "save"
