"""Negotiation per app, as a rolling upgrade of an app meets it: a
``novalet-conductor`` process runs release 1 of the test app appr (installed
by entry point), this process runs release 2 of it with no database access,
``[upgrade_levels]`` left at ``auto``. What goes to the conductor is the
app's release 1 form; what it cannot carry stays pending; once the
conductor runs release 2 the next call carries it. RabbitMQ + PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, db, indirection, objects
from novalet.upgrade import releases
from tests import conftest as root_conftest
from tests import processes, services
from tests.apps import app_environment, appr_release2_loaded, install_app

#: The core's release this code runs (what its services record).
CORE = releases.release_of_service_version(releases.SERVICE_VERSION)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]


@pytest.fixture
def appr(conf: Any) -> Iterator[Any]:
    with appr_release2_loaded() as module:
        yield module


class Conductor:
    """``novalet-conductor`` running the release of appr installed in its
    own directory."""

    def __init__(self, tmp_path: Any, rabbit_url: str, database: Any,
                 topic: str) -> None:
        self.tmp, self.rabbit_url, self.database, self.topic = (
            tmp_path, rabbit_url, database, topic)
        self.proc: processes.ServiceProcess | None = None

    def start(self, release: int) -> processes.ServiceProcess:
        directory = self.tmp / ("release%d" % release)
        directory.mkdir()
        install_app(directory, "appr", "appr = tests.apps.appr_release%d:APP\n" % release)
        config = processes.write_config(str(directory / "novalet.conf"), {
            "DEFAULT": {"transport_url": self.rabbit_url, "host": "appr-conductor",
                        "apps": "appr"},
            "database": {"connection": self.database.url},
            "conductor": {"workers": 1, "topic": self.topic},
        })
        self.proc = processes.ServiceProcess(
            "novalet-conductor", config, str(directory / "conductor.log"),
            env=app_environment(directory))
        self.proc.wait_for_log("novalet-conductor started on appr-conductor",
                               timeout=90)
        return self.proc

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.stop()


def test_an_app_upgraded_conductor_first_keeps_working(
        tmp_path: Any, conf: Any, rabbit_vhost: Any, appr: Any) -> None:
    try:
        database = services.provision_database("postgresql", str(tmp_path))
    except services.ServiceUnavailable as e:
        root_conftest.service_unavailable(str(e))
    topic = "conductor-%s" % os.urandom(4).hex()
    conductor = Conductor(tmp_path, rabbit_vhost.url, database, topic)
    synced = processes.run_command("novalet-manage", "--config-file",
                                   processes.write_config(str(tmp_path / "m.conf"), {
                                       "database": {"connection": database.url}}),
                                   "db", "sync")
    assert synced.returncode == 0, synced.stderr
    try:
        old = conductor.start(release=1)
        conf("transport_url", rabbit_vhost.url)
        conf("topic", topic, "conductor")
        conf("indirection", "rpc", "objects")
        conf("refresh_interval", 3600, "upgrade_levels")
        indirection.configure(novalet_conf.CONF, binary="appr-client")
        db.block_access("this test's client (as an agent)")
        ctxt = context.get_admin_context()
        records = objects.ServiceList.get_by_binary(ctxt, "novalet-conductor")
        assert [s.app_releases for s in records] == [{"novalet": CORE, "appr": "1"}]

        sprocket = appr.Sprocket(ctxt, size=3, colour="red")
        assert sprocket.seen() == ["1.0", "size"]
        assert appr.Sprocket.seen_class(ctxt, sprocket) == ["1.0", "size"]
        assert sprocket.obj_what_changed() == {"colour", "size"}
        assert not old.errors(), old.errors()

        # The conductor is upgraded to the app's release 2 (SIGHUP would do
        # what invalidate_caps() does here; auto re-reads by itself after
        # refresh_interval).
        conductor.stop()
        new = conductor.start(release=2)
        indirection.current().invalidate_caps()
        assert sprocket.seen() == ["1.1", "colour", "size"]
        records = objects.ServiceList.get_by_binary(ctxt, "novalet-conductor")
        assert [s.app_releases for s in records] == [{"novalet": CORE, "appr": "2"}]
        assert not new.errors(), new.errors()
    finally:
        db.allow_access()
        indirection.reset()
        conductor.stop()
        database.drop()
