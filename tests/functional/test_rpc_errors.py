"""What an error raised by an RPC server looks like to its caller, as
``novalet.exception``'s docstring says: over oslo.messaging's ``fake://``
transport and over RabbitMQ (a real ``rpc.Server`` and ``rpc.Client``), and
through the in-process path (``rpc.errors_as_on_the_wire``, built on
oslo.messaging's private (de)serialization functions: compared here with what
the real transports deliver).

A novalet error arrives as its class; everything else, Python's builtins
included, as ``oslo_messaging.RemoteError`` naming the original class."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import oslo_messaging as messaging
import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, rpc
from novalet import service as novalet_service
from novalet.objects import base as objects_base


class AppError(Exception):
    """An exception of a module callers do not allow."""


RAISES: dict[str, Callable[[], BaseException]] = {
    "not-found": lambda: exception.ServiceNotFound(service="h1/novalet-compute"),
    "field-invalid": lambda: exception.ObjectFieldInvalid(
        objname="ComputeNode", field="vcpus", value=-1, reason="negative"),
    "type-error": lambda: TypeError("unsupported operand type(s)"),
    "value-error": lambda: ValueError("invalid literal for int()"),
    "key-error": lambda: KeyError("vcpus"),
    "app-error": lambda: AppError("something of the application"),
}

#: (class the caller receives, RemoteError.exc_type or None)
EXPECTED: dict[str, tuple[type[BaseException], str | None]] = {
    "not-found": (exception.ServiceNotFound, None),
    "field-invalid": (exception.ObjectFieldInvalid, None),
    "type-error": (messaging.RemoteError, "TypeError"),
    "value-error": (messaging.RemoteError, "ValueError"),
    "key-error": (messaging.RemoteError, "KeyError"),
    "app-error": (messaging.RemoteError, "AppError"),
}


class Raiser:
    """The endpoint: raises what it is asked for."""

    target = rpc.endpoint_target("1.0")

    @rpc.expose
    def fail(self, context: Any, kind: str) -> None:
        raise RAISES[kind]()

    def not_exposed(self, context: Any) -> None:
        """Not marked ``@rpc.expose``: refused."""


@pytest.fixture(params=["fake", pytest.param("rabbit", marks=pytest.mark.integration)])
def client(request: pytest.FixtureRequest, conf: Any) -> Iterator[rpc.Client]:
    if request.param == "fake":
        conf("transport_url", "fake://")
    else:
        conf("transport_url", request.getfixturevalue("rabbit_vhost").url)
    rpc.init(novalet_conf.CONF)
    topic = "errors-%s" % os.urandom(4).hex()
    server = novalet_service.rpc_server(topic, [Raiser()], server="errors-host")
    server.start()
    try:
        yield rpc.Client(topic, "1.0", timeout=30,
                        entities=objects_base.NovaletObjectSerializer())
    finally:
        server.stop()
        server.wait()


def _over_rpc(client: rpc.Client, kind: str) -> BaseException:
    with pytest.raises(Exception) as info:
        client.call(context.get_admin_context(), "fail", kind=kind)
    return info.value


def _in_process(kind: str) -> BaseException:
    with pytest.raises(Exception) as info:
        with rpc.errors_as_on_the_wire():
            raise RAISES[kind]()
    return info.value


def _check(kind: str, error: BaseException) -> None:
    cls, exc_type = EXPECTED[kind]
    assert isinstance(error, cls), (kind, type(error))
    if exc_type is None:
        assert type(error).__name__ == cls.__name__ + "_Remote"
        assert type(error).__module__ == "novalet.exception_Remote"
        assert isinstance(error, exception.NovaletException)
        assert error.kwargs == RAISES[kind]().kwargs  # type: ignore[attr-defined]
        assert error.message == RAISES[kind]().message  # type: ignore[attr-defined]
        return
    assert isinstance(error, messaging.RemoteError)
    assert error.exc_type == exc_type
    assert str(RAISES[kind]()) in error.value
    assert "Traceback" in "".join(error.traceback or [])
    # Never the builtin itself: a caller's own TypeError stays its own.
    assert not isinstance(error, (TypeError, ValueError, KeyError, AppError))


@pytest.mark.parametrize("kind", sorted(RAISES))
def test_over_the_transport(client: rpc.Client, kind: str) -> None:
    _check(kind, _over_rpc(client, kind))


@pytest.mark.parametrize("kind", sorted(RAISES))
def test_in_process_path(kind: str) -> None:
    _check(kind, _in_process(kind))


@pytest.mark.parametrize("kind", sorted(RAISES))
def test_in_process_matches_the_transport(client: rpc.Client, kind: str) -> None:
    """The in-process path (oslo.messaging's private functions) gives what
    the transport gives."""
    wire, local = _over_rpc(client, kind), _in_process(kind)
    assert type(wire).__name__ == type(local).__name__
    assert getattr(wire, "exc_type", None) == getattr(local, "exc_type", None)
    assert (getattr(wire, "kwargs", None) == getattr(local, "kwargs", None))
    if isinstance(wire, messaging.RemoteError):
        assert wire.value == local.value  # type: ignore[attr-defined]
    else:
        assert str(wire).splitlines()[0] == str(local).splitlines()[0]


def test_unexposed_method_is_a_typed_refusal(client: rpc.Client) -> None:
    with pytest.raises(exception.MethodNotRemotable):
        client.call(context.get_admin_context(), "not_exposed")


def test_remote_form_leaves_other_errors_alone() -> None:
    novalet_error = exception.ServiceNotFound(service="x")
    app_error = AppError("y")
    assert rpc.remote_form(novalet_error) is novalet_error
    assert rpc.remote_form(app_error) is app_error
    sent = rpc.remote_form(KeyError("k"))
    assert type(sent).__name__ == "KeyError" and type(sent).__module__ == "novalet.rpc"
    assert not isinstance(sent, KeyError) and str(sent) == "'k'"
