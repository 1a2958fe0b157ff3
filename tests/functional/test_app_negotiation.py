"""Negotiation per app: each app's objects are capped by that app's own
releases (``[upgrade_levels] apps``, or ``auto``: the oldest release of the
app a running conductor records), through the in-process conductor and
fake:// RPC to a conductor thread. The same with a conductor process that
runs an older release of the app: tests/integration/test_app_negotiation.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from novalet import context, exception, indirection, objects
from tests.apps import appr_release2_loaded
from tests.conftest import calls_through


@pytest.fixture
def appr(conf: Any, sqlite_db: Any) -> Iterator[Any]:
    with appr_release2_loaded() as module:
        yield module


@pytest.fixture(params=["inprocess", "fakerpc"])
def conductor_path(request: pytest.FixtureRequest, conf: Any, appr: Any) -> Iterator[Any]:
    with calls_through(conf, request.param):
        yield appr


def _conductor(host: str, **releases: str) -> Any:
    svc = objects.Service(context.get_admin_context(), host=host,
                          binary="novalet-conductor",
                          app_releases=dict(releases, novalet="3"))
    with objects.base.run_locally():
        svc.create()
    return svc


def test_a_pin_sends_the_app_s_older_form_and_keeps_what_it_cannot_carry(
        conductor_path: Any, conf: Any) -> None:
    ctxt = context.get_admin_context()
    conf("apps", {"appr": "1"}, "upgrade_levels")
    sprocket = conductor_path.Sprocket(ctxt, size=3, colour="red")
    assert sprocket.seen() == ["1.0", "size"]
    # The colour could not go: it stays a pending change, not lost.
    assert sprocket.obj_what_changed() == {"colour", "size"}
    assert sprocket.colour == "red"
    assert conductor_path.Sprocket.seen_class(ctxt, sprocket) == ["1.0", "size"]
    conf("apps", {}, "upgrade_levels")
    indirection.current().invalidate_caps()
    assert sprocket.seen() == ["1.1", "colour", "size"]
    assert conductor_path.Sprocket.seen_class(ctxt, sprocket) == ["1.1", "colour", "size"]


def test_auto_follows_the_oldest_conductor_that_runs_the_app(
        conductor_path: Any, conf: Any) -> None:
    ctxt = context.get_admin_context()
    conf("refresh_interval", 3600, "upgrade_levels")
    sprocket = conductor_path.Sprocket(ctxt, size=3, colour="red")
    # No conductor records appr: nothing to cap to.
    assert sprocket.seen() == ["1.1", "colour", "size"]
    old = _conductor("c-old", appr="1")
    _conductor("c-new", appr="2")
    _conductor("c-newer", appr="7")  # a release this code does not know
    _conductor("c-other", leases="1")  # does not run appr: cannot lower it
    indirection.current().invalidate_caps()
    assert sprocket.seen() == ["1.0", "size"]
    assert "colour" in sprocket.obj_what_changed()
    # The old conductor is gone (upgraded and its record replaced).
    with objects.base.run_locally():
        old.destroy()
    indirection.current().invalidate_caps()
    assert sprocket.seen() == ["1.1", "colour", "size"]


def test_the_core_caps_do_not_cap_apps(conductor_path: Any, conf: Any) -> None:
    """Each app has its own history: pinning novalet's release leaves an
    app's objects alone (class calls of apps need conductor RPC 1.2, which
    release 2 conductors lack: refused before anything is sent)."""
    ctxt = context.get_admin_context()
    conf("conductor", "3", "upgrade_levels")
    assert conductor_path.Sprocket(ctxt, size=1, colour="b").seen() == [
        "1.1", "colour", "size"]


def test_a_pin_to_a_release_the_app_does_not_declare_is_a_configuration_error(
        conductor_path: Any, conf: Any) -> None:
    conf("apps", {"appr": "9"}, "upgrade_levels")
    with pytest.raises(exception.ConfigurationError, match="appr:9.*releases 1, 2"):
        conductor_path.Sprocket(context.get_admin_context(), size=1).seen()
