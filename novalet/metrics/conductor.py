"""The conductor's call metrics: one decorator on each object endpoint.

Labels stay bounded whatever a caller sends: ``object`` is a registered
object's name (``app.Name`` for an app's objects, so two apps' same-named
objects count apart) and ``method`` one of that object's remotable methods, or
``unknown`` (``registry.UNKNOWN``); ``outcome`` is ``ok``, ``refused`` (a
``DispatchRefused``: not remotable, unknown object or version, malformed) or
``error`` (the method raised); ``error`` is a ``novalet.exception`` class
name or ``other``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

from oslo_versionedobjects import base as ovo_base

from novalet import exception
from novalet.metrics import registry
from novalet.objects import codec, remotable

F = TypeVar("F", bound=Callable[..., Any])

UNKNOWN = registry.UNKNOWN

#: The ``method`` label of ``object_backport_versions`` (the ``obj_``
#: prefix is the framework's, never a remotable method's name).
BACKPORT = "obj_backport"

_ERROR_NAMES = frozenset(
    name for name, value in vars(exception).items()
    if isinstance(value, type) and issubclass(value, exception.NovaletException))

def object_label(objname: Any, namespace: Any = codec.CORE) -> str:
    """``objname`` if it names a registered object of ``namespace`` (the
    core's), ``namespace.objname`` for an app's, else ``unknown``."""
    if (type(objname) is str and type(namespace) is str
            and codec.is_registered(objname, namespace)):
        return objname if namespace == codec.CORE else "%s.%s" % (namespace, objname)
    return UNKNOWN


def method_label(objlabel: str, method: Any) -> str:
    """``method`` if it is a remotable method of the object ``objlabel``
    (as ``object_label`` gave it), else ``unknown``."""
    if objlabel == UNKNOWN or type(method) is not str:
        return UNKNOWN
    namespace, _, objname = objlabel.rpartition(".")
    for cls in codec.classes_named(objname, namespace or codec.CORE):
        if remotable.kind(cls, method) is not None:
            return method
    return UNKNOWN


def error_label(error: BaseException) -> str:
    name = type(error).__name__
    return name if name in _ERROR_NAMES else "other"


def _instance_labels(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    objinst = kwargs.get("objinst", args[0] if args else None)
    objmethod = kwargs.get("objmethod", args[1] if len(args) > 1 else None)
    if not isinstance(objinst, ovo_base.VersionedObject):
        return UNKNOWN, UNKNOWN
    objlabel = object_label(objinst.obj_name(), objinst.OBJ_PROJECT_NAMESPACE)
    return objlabel, method_label(objlabel, objmethod)


def _class_labels(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    objlabel = object_label(kwargs.get("objname", args[0] if args else None),
                            kwargs.get("objnamespace", codec.CORE))
    objmethod = kwargs.get("objmethod", args[1] if len(args) > 1 else None)
    return objlabel, method_label(objlabel, objmethod)


def _backport_labels(args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[str, str]:
    objinst = kwargs.get("objinst", args[0] if args else None)
    if isinstance(objinst, ovo_base.VersionedObject):
        return object_label(objinst.obj_name(), objinst.OBJ_PROJECT_NAMESPACE), BACKPORT
    return UNKNOWN, BACKPORT


_LABELS = {"object_action": _instance_labels,
           "object_class_action_versions": _class_labels,
           "object_backport_versions": _backport_labels}


def observe(endpoint: F) -> F:
    """Count and time every call of the conductor endpoint ``endpoint``
    (``object_action``, ``object_class_action_versions`` or
    ``object_backport_versions``, called as ``(self, context, ...)``); the
    method runs unchanged when metrics are off."""
    labels = _LABELS[endpoint.__name__]

    @functools.wraps(endpoint)
    def wrapper(self: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        m = registry.current
        if m is None:
            return endpoint(self, context, *args, **kwargs)
        start = time.perf_counter()
        m.conductor_in_flight.inc()
        outcome = "ok"
        try:
            return endpoint(self, context, *args, **kwargs)
        except exception.DispatchRefused:
            outcome = "refused"
            raise
        except Exception as e:
            outcome = "error"
            objlabel, method = labels(args, kwargs)
            m.child(m.conductor_call_errors, objlabel, method,
                    error_label(e)).inc()
            raise
        finally:
            m.conductor_in_flight.dec()
            objlabel, method = labels(args, kwargs)
            m.child(m.conductor_call_duration, objlabel, method).observe(
                time.perf_counter() - start)
            m.child(m.conductor_calls, objlabel, method, outcome).inc()

    return wrapper  # type: ignore[return-value]


def refused_before_dispatch(entity: Any, namespace: str) -> None:
    """An argument the conductor could not rebuild (unknown object or
    version, malformed primitive): the call is refused before any endpoint
    runs. ``namespace`` is the objects' serial namespace (``novalet_object``)."""
    m = registry.current
    if m is None:
        return
    name = entity.get(namespace + ".name") if isinstance(entity, dict) else None
    app = (entity.get(namespace + ".namespace", codec.CORE)
           if isinstance(entity, dict) else codec.CORE)
    m.child(m.conductor_calls, object_label(name, app), UNKNOWN, "refused").inc()
