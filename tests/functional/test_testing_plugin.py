"""novalet.testing, used as an app author would (its fixtures only), on the
test apps appa and appb."""

from __future__ import annotations

import pytest

from novalet import context, exception, testing
from novalet.objects import base as objects_base
from novalet.objects import codec


@pytest.fixture(autouse=True)
def _broker(request, monkeypatch):
    """The rpc path on this run's own RabbitMQ vhost (its queues go with it)."""
    if "novalet_path" in request.fixturenames:
        vhost = request.getfixturevalue("rabbit_vhost")
        monkeypatch.setenv("NOVALET_TEST_TRANSPORT_URL", vhost.url)


@pytest.fixture
def novalet_apps():
    from tests.apps import declared

    return [declared.APPA, declared.APPB]




def test_every_path_runs_the_test(novalet_path, novalet_registry):
    import tests.apps.appa_objects as appa

    ctxt = context.get_admin_context()
    widget = appa.Widget.make(ctxt, "p", 2)
    widget.store()
    assert widget.grow(1) == "appa"
    assert appa.Widget.stored_sizes(ctxt) == [2]
    remote = novalet_path != "local"
    assert (objects_base.get_indirection_api() is not None) is remote


def test_no_db_guard_with_a_conductor_path(novalet_path, novalet_no_db):
    import tests.apps.appa_objects as appa

    ctxt = context.get_admin_context()
    widget = appa.Widget.make(ctxt, "n", 4)
    if novalet_path == "local":
        with pytest.raises(exception.DBNotAllowed):
            widget.store()
    else:
        widget.store()
        assert appa.Widget.stored_sizes(ctxt) == [4]


def test_fingerprints(novalet_registry):
    data = testing.object_data("appa")
    assert sorted(data) == ["Gear", "Widget", "WidgetList"]
    assert data != testing.object_data("appb")  # appa's Widget has more methods
    testing.check_object_data("appa", data)
    stale = dict(data, Widget="1.0-0123")
    with pytest.raises(AssertionError, match="Widget: expected 1.0-0123"):
        testing.check_object_data("appa", stale)


def test_registry_isolation_registers(novalet_registry):
    @objects_base.NovaletObjectRegistry.register
    class Throwaway(objects_base.NovaletObject):
        OBJ_PROJECT_NAMESPACE = "appa"
        VERSION = "1.0"
        fields: dict = {}

    assert ("appa", "Throwaway") in codec.registered_keys()


def test_registry_isolation_forgot_it(novalet_registry):
    assert ("appa", "Throwaway") not in codec.registered_keys()
    assert ("appa", "Widget") in codec.registered_keys()


def test_check_releases(novalet_registry):
    from novalet import app
    from tests.apps import isolated_registry

    testing.check_releases("novalet")  # the core's history names its objects
    with isolated_registry("tests.apps.appr_"):
        from tests.apps import appr_release2

        app.register(appr_release2.APP)
        testing.check_releases("appr")

        @objects_base.NovaletObjectRegistry.register
        class Chain(objects_base.NovaletObject):
            OBJ_PROJECT_NAMESPACE = "appr"
            VERSION = "1.0"
            fields: dict = {}

        with pytest.raises(AssertionError,
                           match="Chain: release 2 says .absent., the code has 1.0"):
            testing.check_releases("appr")
