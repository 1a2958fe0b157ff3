"""An app's own errors cross RPC as themselves (``App(exceptions=...)``):
the test app appe raises its ``GadgetJammed`` from remotable methods, run
locally, through the in-process conductor, over oslo.messaging's ``fake://``
transport and over RabbitMQ to a conductor thread; the caller catches it as
``GadgetJammed`` with its message and kwargs. What the app does not declare
(or declares but is no ``NovaletException``) arrives as ``RemoteError``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import oslo_messaging as messaging
import pytest

from novalet import app, context, exception, indirection, objects, rpc
from novalet import conf as novalet_conf
from tests.apps import isolated_registry
from tests.conftest import conductor_thread

PATHS = ["local", "inprocess", "fakerpc",
         pytest.param("rabbit", marks=pytest.mark.integration)]


@pytest.fixture(autouse=True)
def _isolated() -> Iterator[None]:
    with isolated_registry("tests.apps.appe_"):
        objects.register_all(["novalet"])
        yield


def _register(declared_app: app.App) -> Any:
    app.register(declared_app)
    import tests.apps.appe_objects as appe

    return appe


def _served(request: pytest.FixtureRequest, conf: Any,
            declared_app: app.App) -> Iterator[Any]:
    """appe on the path ``request.param``; the app is loaded after the
    transport is made (as a test or an embedding process may)."""
    name = request.param
    if name in ("fakerpc", "rabbit"):
        url = ("fake://" if name == "fakerpc"
               else request.getfixturevalue("rabbit_vhost").url)
        with conductor_thread(conf, url):
            yield _register(declared_app)
        return
    if name == "inprocess":
        conf("indirection", "inprocess", "objects")
        indirection.configure(novalet_conf.CONF)
    try:
        yield _register(declared_app)
    finally:
        indirection.reset()


@pytest.fixture(params=PATHS)
def appe(request: pytest.FixtureRequest, conf: Any) -> Iterator[Any]:
    """The test app appe, its errors declared, on each path."""
    from tests.apps import declared

    yield from _served(request, conf, declared.APPE)


@pytest.fixture(params=PATHS[1:])
def appe_undeclared(request: pytest.FixtureRequest, conf: Any) -> Iterator[Any]:
    """appe without its ``exceptions`` declaration, on each conductor path."""
    yield from _served(request, conf, app.App(
        name="appe", object_modules=["tests.apps.appe_objects"]))


def _remote(path_name: str) -> bool:
    return path_name != "local"


def test_the_apps_error_crosses_as_itself(appe: Any, request: Any) -> None:
    from tests.apps import appe_exception

    ctxt = context.get_admin_context()
    gadget = appe.Gadget(ctxt, name="g1")
    assert gadget.turn(2) == 2
    with pytest.raises(appe_exception.GadgetJammed) as info:
        gadget.turn(5)
    error = info.value
    assert isinstance(error, appe_exception.AppeError)
    assert isinstance(error, exception.NovaletException)
    assert error.kwargs == {"name": "g1", "turns": 5}
    assert error.message == "Gadget g1 is jammed at 5 turns"
    assert error.code == 409
    remote = request.node.callspec.params["appe"] != "local"
    assert (type(error).__name__ == "GadgetJammed_Remote") is remote
    # From a class method too.
    with pytest.raises(appe_exception.GadgetJammed) as info:
        appe.Gadget.fail(ctxt, "jammed")
    assert info.value.kwargs == {"name": "c", "turns": 9}
    assert str(info.value).splitlines()[0] == "Gadget c is jammed at 9 turns"


@pytest.mark.parametrize("kind, exc_type", [
    ("not-novalet", "NotNovalet"),   # declared module, not a NovaletException
    ("undeclared", "UndeclaredError"),  # a NovaletException elsewhere
    ("value-error", "ValueError"),
])
def test_what_is_not_declared_arrives_as_remote_error(
        appe: Any, request: Any, kind: str, exc_type: str) -> None:
    ctxt = context.get_admin_context()
    if request.node.callspec.params["appe"] == "local":
        with pytest.raises(Exception) as info:
            appe.Gadget.fail(ctxt, kind)
        assert type(info.value).__name__ == exc_type  # itself, locally
        return
    with pytest.raises(messaging.RemoteError) as remote_info:
        appe.Gadget.fail(ctxt, kind)
    assert remote_info.value.exc_type == exc_type
    assert not isinstance(remote_info.value, ValueError)


def test_without_the_declaration_the_error_is_a_remote_error(
        appe_undeclared: Any) -> None:
    ctxt = context.get_admin_context()
    with pytest.raises(messaging.RemoteError) as info:
        appe_undeclared.Gadget(ctxt, name="g2").turn(7)
    assert info.value.exc_type == "GadgetJammed"
    assert "Gadget g2 is jammed at 7 turns" in info.value.value


def test_the_core_declares_its_own_errors_the_same_way() -> None:
    from tests.apps import declared

    core = app.get(app.CORE)
    assert list(core.exceptions) == ["novalet.exception"]
    assert "novalet.exception" in app.exception_modules()
    assert "tests.apps.appe_exception" not in rpc.ALLOWED_EXMODS
    app.register(declared.APPE)
    assert list(rpc.ALLOWED_EXMODS) == ["novalet.exception",
                                        "tests.apps.appe_exception"]
    app.unload("appe")
    assert "tests.apps.appe_exception" not in rpc.ALLOWED_EXMODS


@pytest.mark.parametrize("modules, reason", [
    ("tests.apps.appe_exception", "exceptions must be a list of module names"),
    (["tests.apps.no_such_module"], "exceptions module tests.apps.no_such_module "
                                    "does not import"),
    (["tests.apps.declared"], "exceptions module tests.apps.declared defines no "
                              "novalet.exception.NovaletException subclass"),
])
def test_a_bad_exceptions_declaration_is_an_app_load_error(
        modules: Any, reason: str) -> None:
    with pytest.raises(exception.AppLoadError, match="App appe") as info:
        app.register(app.App(name="appe", exceptions=modules))
    assert reason in str(info.value)
    assert "appe" not in app.loaded()
