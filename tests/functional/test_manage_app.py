"""``novalet-manage app list`` (in this process, with the test app appa
loaded beside the core), ``service list --format json``'s ``app_releases``,
and the conductor's start-up line; the same with the example app installed,
through the installed commands and a conductor process."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import app, context, objects
from novalet.cmd import manage, manage_app, manage_service
from novalet.db import migration
from tests import commands, processes
from tests.apps import isolated_registry
from tests.functional.test_manage import Manage


@pytest.fixture(autouse=True)
def _command_state() -> Iterator[None]:
    with commands.restored_command_state(), isolated_registry(
            "tests.apps.appa_objects", "tests.apps.appe_"):
        yield


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> Iterator[Manage]:
    """``novalet-manage`` on an SQLite file of its own, appa and appe
    loaded beside the core."""
    from tests.apps import declared

    path = tmp_path / "novalet.sqlite"
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "database": {"connection": "sqlite:///%s" % path}})
    objects.register_all(["novalet"])
    app.register(declared.APPA)
    app.register(declared.APPE)
    yield Manage(manage.main, capsys, config)


def test_app_list_json(run: Manage) -> None:
    # Never synced: no revision, and no database file made.
    records = run.json("app", "list")
    assert [r["name"] for r in records] == ["novalet", "appa", "appe"]
    for record in records:
        assert tuple(record) == manage_app.KEYS
    core, appa, appe = records
    assert core["schema_revision"] is None and appa["schema_revision"] is None
    assert run("db", "sync")[0] == 0
    core, appa, appe = run.json("app", "list")
    head = migration.head_revision()
    assert (core["schema_revision"], core["schema_head"]) == (head, head)
    assert (appa["schema_revision"], appa["schema_head"]) == ("appa_0001",
                                                              "appa_0001")
    assert core["release"] == app.get("novalet").current_release
    assert core["releases"] == list(app.get("novalet").releases)
    assert core["objects"]["Service"] == objects.Service.VERSION
    assert core["objects"]["ComputeNodeList"] == objects.ComputeNodeList.VERSION
    assert core["exceptions"] == ["novalet.exception"]
    assert appa["objects"] == {"Gear": "1.0", "Widget": "1.0", "WidgetList": "1.0"}
    assert appa["release"] is None and appa["releases"] == []
    # An app without tables: no revisions; its declared errors listed.
    assert (appe["schema_revision"], appe["schema_head"]) == (None, None)
    assert appe["objects"] == {"Gadget": "1.0"}
    assert appe["exceptions"] == ["tests.apps.appe_exception"]


def test_app_list_table(run: Manage) -> None:
    assert run("db", "sync")[0] == 0
    code, out, err = run("app", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["App", "Release", "Schema", "Revision", "Code",
                                "Head", "Objects"]
    rows = {line.split()[0]: line for line in lines[2:]}
    assert set(rows) == {"novalet", "appa", "appe"}
    release = app.get("novalet").current_release
    assert rows["novalet"].split()[1:4] == [release, migration.head_revision(),
                                            migration.head_revision()]
    assert "Service %s" % objects.Service.VERSION in rows["novalet"]
    assert rows["appa"].split()[1:] == ["-", "appa_0001", "appa_0001", "Gear",
                                        "1.0,", "Widget", "1.0,", "WidgetList",
                                        "1.0"]


def test_service_list_names_each_services_app_releases(run: Manage) -> None:
    assert run("db", "sync")[0] == 0
    ctxt = context.get_admin_context()
    objects.Service(ctxt, host="h1", binary="novalet-compute",
                    app_releases={"novalet": "3", "leases": "2"}).create()
    objects.Service(ctxt, host="h2", binary="novalet-compute").create()
    records = {r["host"]: r for r in run.json("service", "list")}
    for record in records.values():
        assert tuple(record) == manage_service.KEYS
    assert records["h1"]["app_releases"] == {"novalet": "3", "leases": "2"}
    assert records["h2"]["app_releases"] is None  # an old service records none


def test_summary_names_each_app_and_release() -> None:
    from tests.apps import declared

    objects.register_all(["novalet"])
    app.register(declared.APPE)
    assert app.summary() == "novalet (release %s), appe (no releases)" % (
        app.get("novalet").current_release)


@pytest.mark.integration
@pytest.mark.timeout(180)
def test_the_example_app_is_listed_and_served(tmp_path: Any, rabbit_vhost: Any,
                                              postgresql_db: Any) -> None:
    """The example app (installed in this environment) through the installed
    commands: ``app list`` names it and its release; a conductor logs the
    apps it serves and records their releases (``service list``)."""
    pytest.importorskip("leases")
    env = dict(os.environ)
    env.pop("OS_DEFAULT__APPS", None)  # every installed app
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "cond-apps"},
        "database": {"connection": postgresql_db.url},
        "conductor": {"workers": 1,
                      "topic": "conductor-%s" % os.urandom(4).hex()},
    })

    def manage_json(*argv: str) -> Any:
        result = subprocess.run(
            [os.path.join(processes.BIN_DIR, "novalet-manage"), "--config-file",
             config, *argv, "--format", "json"],
            capture_output=True, text=True, timeout=120, env=env)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    sync = subprocess.run(
        [os.path.join(processes.BIN_DIR, "novalet-manage"), "--config-file",
         config, "db", "sync"], capture_output=True, text=True, timeout=120,
        env=env)
    assert sync.returncode == 0, sync.stderr
    listed = {r["name"]: r for r in manage_json("app", "list")}
    import leases.novalet_app

    leases_app = leases.novalet_app.APP
    assert listed["leases"]["release"] == leases_app.current_release
    assert listed["leases"]["schema_revision"] == listed["leases"]["schema_head"]
    assert listed["leases"]["schema_head"] is not None
    assert set(listed["leases"]["objects"]) == set(
        leases_app.releases[leases_app.current_release])
    proc = processes.ServiceProcess("novalet-conductor", config,
                                    str(tmp_path / "conductor.log"), env=env)
    try:
        line = proc.wait_for_log(r"novalet-conductor serves the apps .*")
        assert ("novalet (release %s), leases (release %s)" % (
            listed["novalet"]["release"], leases_app.current_release)
            in line.group(0))
        proc.wait_for_log("novalet-conductor started on cond-apps")
        services = manage_json("service", "list")
        conductor = [s for s in services if s["host"] == "cond-apps"]
        assert conductor and conductor[0]["app_releases"] == {
            "novalet": listed["novalet"]["release"],
            "leases": leases_app.current_release}
    finally:
        assert proc.stop() == 0
