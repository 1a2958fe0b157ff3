"""Loading an app (``novalet.app.register``): its modules may register
objects in its own namespace only."""

from __future__ import annotations

import pytest

from novalet import app, exception, objects
from novalet.objects import codec
from tests.apps import isolated_registry

_MODULE = (
    "from novalet.objects import base, fields\n"
    "@base.NovaletObjectRegistry.register\n"
    "class Gadget(base.NovaletObject):\n"
    "    OBJ_PROJECT_NAMESPACE = %r\n"
    "    VERSION = '1.0'\n"
    "    fields = {'x': fields.IntegerField()}\n")


@pytest.fixture
def app_module(tmp_path, monkeypatch):
    """Write ``name``'s object module registering Gadget in ``namespace``."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(name: str, namespace: str) -> str:
        (tmp_path / ("%s.py" % name)).write_text(_MODULE % namespace)
        return name

    with isolated_registry("nsapp_", "otherapp_"):
        objects.register_all(["novalet"])
        yield write


def test_an_app_registering_in_another_apps_namespace_is_refused(app_module):
    module = app_module("nsapp_foreign", "otherapp")
    with pytest.raises(exception.AppLoadError) as info:
        app.register(app.App(name="nsapp", object_modules=[module]))
    assert "nsapp" in info.value.message
    assert "otherapp.Gadget" in info.value.message
    assert "nsapp" not in app.loaded()


def test_an_app_registering_in_the_cores_namespace_is_refused(app_module):
    module = app_module("nsapp_core", "novalet")
    with pytest.raises(exception.AppLoadError, match="novalet.Gadget"):
        app.register(app.App(name="nsapp", object_modules=[module]))
    assert "nsapp" not in app.loaded()


def test_an_app_registering_in_its_own_namespace_loads(app_module):
    module = app_module("nsapp_own", "nsapp")
    app.register(app.App(name="nsapp", object_modules=[module]))
    assert "nsapp" in app.loaded()
    assert codec.is_registered("Gadget", "nsapp")
