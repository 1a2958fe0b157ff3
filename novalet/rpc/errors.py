"""How errors cross RPC: a ``NovaletException`` subclass of an allowed
module (``novalet.exception``, and each loaded app's ``exceptions``) as its
class, anything else (Python's builtins included) as
``oslo_messaging.RemoteError`` — over a real transport, over ``fake://`` and
through the in-process conductor alike (see ``novalet.exception``)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any, overload

import oslo_messaging as messaging
from oslo_serialization import jsonutils

from novalet import exception
from novalet.rpc import internals


class AllowedModules(Sequence[str]):
    """The modules whose errors a caller rebuilds as themselves:
    ``novalet.exception`` (the rpc layer's own refusals are from it), then
    the modules the source set by ``set_exception_modules`` returns (the
    app registry: every loaded app's ``exceptions``), read at every use.

    It is live because oslo.messaging fixes a transport's
    ``allowed_remote_exmods`` when the transport is made: its drivers keep
    the object they are given and ask ``module in allowed`` at each reply,
    so an app loaded after ``novalet.rpc.init`` (a test, an embedding
    process) is allowed too (tests/functional/test_app_errors.py checks this
    over RabbitMQ).
    """

    def __init__(self, fixed: Iterable[str]) -> None:
        self._fixed = list(fixed)
        self._source: Callable[[], Iterable[str]] | None = None

    def _current(self) -> list[str]:
        found = list(self._fixed)
        if self._source is not None:
            found.extend(m for m in self._source() if m not in found)
        return found

    def __contains__(self, module: object) -> bool:
        return module in self._current()

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> list[str]: ...

    def __getitem__(self, index: int | slice) -> str | list[str]:
        return self._current()[index]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, AllowedModules)):
            return self._current() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return "AllowedModules(%r)" % self._current()


#: The modules whose ``NovaletException`` subclasses cross as themselves,
#: handed to every transport (``novalet.rpc.transport``) and to the
#: in-process paths (``as_received``).
ALLOWED_EXMODS = AllowedModules([exception.__name__])


def set_exception_modules(source: Callable[[], Iterable[str]] | None) -> None:
    """Where ``ALLOWED_EXMODS`` reads the apps' modules from (the app
    registry hands ``novalet.app.exception_modules``; None: nothing but
    ``novalet.exception``)."""
    ALLOWED_EXMODS._source = source


#: The module the builtins' stand-ins name on the wire (what callers of
#: every release see as ``RemoteError``'s origin).
_STAND_IN_MODULE = "novalet.rpc"


#: Stand-ins for the classes that must not cross as themselves, by name
#: (see ``remote_form``).
_BUILTIN_STAND_INS: dict[str, type[Exception]] = {}


def remote_form(error: BaseException) -> BaseException:
    """What a server sends back for ``error``: itself, unless it is one of
    Python's builtin exceptions (``TypeError``, ``KeyError``, ...) or an
    exception of an allowed module that is no ``NovaletException``.

    oslo.messaging re-raises a builtin as that builtin in the caller (with
    the remote traceback pasted into its message), where it cannot be told
    from the caller's own ``TypeError``; and it rebuilds any exception class
    of an allowed module, where only an app's ``NovaletException``
    subclasses are declared to cross. novalet sends either instead as an
    exception of the same name from this module, which no caller allows: it
    arrives as ``RemoteError`` (``exc_type`` the original class's name,
    ``value`` its message), like every other error that is not novalet's.
    """
    if not isinstance(error, Exception) or isinstance(
            error, exception.NovaletException):
        return error
    module = type(error).__module__
    if module != "builtins" and module not in ALLOWED_EXMODS:
        return error
    name = type(error).__name__
    stand_in = _BUILTIN_STAND_INS.get(name)
    if stand_in is None:
        stand_in = _BUILTIN_STAND_INS[name] = type(
            name, (Exception,), {"__module__": _STAND_IN_MODULE,
                                 "__doc__": "A remote %s." % name})
    return stand_in(str(error))


def wire_roundtrip(value: Any) -> Any:
    """What ``value`` (already serialized) looks like after the wire."""
    return jsonutils.loads(jsonutils.dumps(value))


def exc_info_of(error: BaseException, cause: BaseException) -> Any:
    """``sys.exc_info()`` of ``error`` raised from ``cause``."""
    try:
        if error is cause:
            raise error
        raise error from cause
    except BaseException:
        return sys.exc_info()


def as_received(exc_info: Any) -> BaseException:
    """What a caller receives for the server's ``exc_info`` over a real
    transport: oslo.messaging's own remote-exception (de)serialization (two
    functions of a private module of oslo.messaging, the ones its drivers
    use, reached through ``novalet.rpc.internals``;
    tests/functional/test_rpc_errors.py compares this with RabbitMQ)."""
    data = internals.serialize_remote_exception(exc_info)
    return internals.deserialize_remote_exception(data, ALLOWED_EXMODS)  # type: ignore[no-any-return]


@contextlib.contextmanager
def errors_as_on_the_wire() -> Iterator[None]:
    """Re-raise an error the way an RPC caller would receive it: a
    ``NovaletException`` of an allowed module as its class, anything else
    (builtins too: ``remote_form``) as ``RemoteError``, exactly as from
    ``novalet-conductor``. The in-process conductor uses this."""
    try:
        yield
    except messaging.ExpectedException as e:
        raise as_received(e.exc_info)
    except Exception as e:
        raise as_received(exc_info_of(remote_form(e), e))


@contextlib.contextmanager
def server_errors(in_process: bool) -> Iterator[None]:
    """How an error of a server's endpoint (or of rebuilding its arguments)
    leaves for oslo.messaging: a ``NovaletException`` as expected (sent
    back, no traceback logged), anything else in its ``remote_form`` (logged
    with its traceback by oslo.messaging). ``in_process`` (``fake://``, whose
    driver hands the caller the server's exception object as it is): the
    error is turned into what a real transport would deliver first."""
    try:
        yield
    except messaging.ExpectedException:
        raise
    except exception.NovaletException as e:
        if not in_process:
            raise messaging.ExpectedException()
        try:
            raise as_received(sys.exc_info())
        except Exception:
            raise messaging.ExpectedException() from e
    except Exception as e:
        sent = remote_form(e)
        if in_process:
            raise as_received(exc_info_of(sent, e)) from e
        if sent is e:
            raise
        raise sent from e


