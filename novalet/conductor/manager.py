"""The conductor's RPC endpoints: the only place remotable methods are
dispatched for other processes.

Only methods marked remotable run: instance methods through
``object_action``, class methods through ``object_class_action_versions``.
Private names, ``obj_*`` framework methods, plain methods, unknown objects
and versions newer than this code are refused with a ``DispatchRefused``
error that the caller receives as that type; so are arguments that do not
fit the method (``validate``). The caller is the one ``novalet.rpc``
verified (the context's ``principal``); its writes are scoped in
``novalet.db``.
"""

from __future__ import annotations

import datetime
from typing import Any

from oslo_log import log as logging
from oslo_versionedobjects import exception as ovo_exc

from novalet import exception, rpc
from novalet import manager as base_manager
from novalet.conductor import validate
from novalet.metrics import conductor as metrics
from novalet.objects import base as objects_base
from novalet.objects import codec, remotable

LOG = logging.getLogger(__name__)

#: The conductor RPC API this code serves; its history is in
#: ``novalet.conductor.rpcapi``.
RPC_API_VERSION = "1.2"


def _refuse_name(objname: str, method: Any) -> None:
    if (not isinstance(method, str) or not method or method.startswith("_")
            or method.startswith("obj_")):
        raise exception.MethodNotRemotable(objname=objname, method=method)


def _remotable_instance_method(objinst: Any, method: Any) -> Any:
    if remotable.kind(type(objinst), method) != remotable.INSTANCE:
        objname = objinst.obj_name()
        _refuse_name(objname, method)
        raise exception.MethodNotRemotable(objname=objname, method=method)
    return getattr(objinst, method)


def _remotable_class_method(objclass: Any, method: Any) -> Any:
    if remotable.kind(objclass, method) != remotable.CLASS:
        objname = objclass.obj_name()
        _refuse_name(objname, method)
        raise exception.MethodNotRemotable(objname=objname, method=method)
    return getattr(objclass, method)


def _object_class(objname: Any, object_versions: Any,
                  namespace: Any = codec.CORE) -> Any:
    if (not isinstance(objname, str) or not isinstance(object_versions, dict)
            or not isinstance(namespace, str)):
        raise exception.MalformedRequest(
            reason="objname and objnamespace must be strings and "
                   "object_versions a dict")
    codec.check_known(objname, namespace)
    version = object_versions.get(objname)
    if version is None:
        raise exception.MalformedRequest(
            reason="object_versions does not name %s" % objname)
    try:
        objclass = codec.class_for(objname, version, namespace)
    except ovo_exc.UnsupportedObjectError as e:
        raise exception.UnknownObject(objname=objname, reason=e)
    except ovo_exc.IncompatibleObjectVersion as e:
        raise exception.UnsupportedObjectVersion(
            objname=objname, version=version,
            supported=e.kwargs.get("supported"))
    if not issubclass(objclass, objects_base.NovaletObject):
        raise exception.UnknownObject(objname=objname,
                                      reason="not a novalet object")
    return objclass


def _check_args(args: Any, kwargs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if not isinstance(args, (list, tuple)) or not isinstance(kwargs, dict):
        raise exception.MalformedRequest(
            reason="args must be a list and kwargs a dict")
    return tuple(args), kwargs


#: Values that are copied as they are when a nested value is compared.
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None), datetime.datetime})

_MISSING: Any = object()


def _snapshot(objinst: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """What the object holds, to compare a later state with: its attributes
    (a shallow copy) and a copy of the content of each field whose value
    can change in place (dicts, lists, nested objects, addresses)."""
    stored = objinst.__dict__
    return dict(stored), {
        attr: _state(objinst, name, field, stored[attr])
        for name, field, attr in codec.mutable_field_attrs(type(objinst))
        if attr in stored}


def _state(objinst: Any, name: str, field: Any, value: Any) -> Any:
    if isinstance(value, objects_base.NovaletObject):
        return _object_state(value)
    if isinstance(value, dict) and all(type(v) in _PLAIN_TYPES
                                       for v in value.values()):
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, objects_base.NovaletObject)
                                       for v in value):
        return [_object_state(v) for v in value]
    return field.to_primitive(objinst, name, value)


def _object_state(value: Any) -> tuple[Any, ...]:
    """A nested object: its class, version, pending changes and fields."""
    return (type(value), value.VERSION, frozenset(value._changed_fields),
            _snapshot(value))


def _changed(objinst: Any, before: tuple[dict[str, Any], dict[str, Any]]) -> list[str]:
    """The set fields whose value differs from the ``_snapshot`` ``before``:
    assigned a different value, or changed in place."""
    values, states = before
    stored = objinst.__dict__
    by_attr = codec.fields_by_attr(type(objinst))
    changed = []
    for attr, new in stored.items():
        old = values.get(attr, _MISSING)
        if old is new:
            continue
        entry = by_attr.get(attr)
        if entry is not None and (type(old) is not type(new) or old != new):
            changed.append(entry[0])
    for attr, state in states.items():
        new = stored.get(attr, _MISSING)
        if new is values[attr]:  # the same value: was it changed in place?
            name, field = by_attr[attr]
            if state != _state(objinst, name, field, new):
                changed.append(name)
    return changed


def _field_updates(objinst: Any, before: tuple[dict[str, Any], dict[str, Any]],
                   object_versions: dict[str, str] | None) -> dict[str, Any]:
    """The fields the method changed, as primitives at the caller's version.

    ``before``: the ``_snapshot`` taken before the method ran.
    ``objinst.VERSION`` is the version the caller sent; fields it does not
    know never go back, nested objects go back at ``object_versions`` (RPC
    1.1) or at what the object's own version implies.
    """
    changed = _changed(objinst, before)
    what_changed = objinst.obj_what_changed()
    if not changed and not what_changed:
        return {"obj_what_changed": []}
    if _caller_is_current(objinst, object_versions):
        # Nothing to backport: just the changed fields, in their own form.
        fields = objinst.fields
        data = {name: fields[name].to_primitive(objinst, name,
                                                getattr(objinst, name))
                for name in changed}
        present = {name for name in what_changed if objinst.obj_attr_is_set(name)}
    else:
        primitive = objinst.obj_to_primitive(version_manifest=object_versions)
        data = present = primitive["%s.data" % objinst.OBJ_SERIAL_NAMESPACE]
    updates = {name: data[name] for name in changed if name in data}
    updates["obj_what_changed"] = sorted(n for n in what_changed if n in present)
    return updates


def _caller_is_current(objinst: Any, object_versions: dict[str, str] | None) -> bool:
    """The caller sent this class's version and knows every nested object
    at this process's version."""
    if objinst.VERSION != type(objinst).VERSION:
        return False
    return (object_versions is None
            or codec.manifest_is_current(type(objinst), object_versions))


class ConductorManager(base_manager.Manager):
    """Endpoints ``object_action``, ``object_class_action_versions`` and
    ``object_backport_versions`` (conductor RPC API 1.2)."""

    target = rpc.endpoint_target(RPC_API_VERSION)

    def __init__(self, conf: Any = None, host: str | None = None) -> None:
        from novalet.conf import CONF
        conf = conf if conf is not None else CONF
        super().__init__(conf, host or conf.host)

    @rpc.expose
    @metrics.observe
    def object_action(self, context: Any, objinst: Any, objmethod: Any,
                      args: Any, kwargs: Any,
                      object_versions: Any = None) -> tuple[dict[str, Any], Any]:
        """Run the remotable instance method ``objmethod`` on ``objinst``.

        Returns ``(updates, result)``: the fields the method changed (and
        ``obj_what_changed``, what is still unsaved) and its return value,
        at the caller's versions (``object_versions``: RPC 1.1).
        Raises ``DispatchRefused`` subclasses for anything not remotable,
        and whatever the method raises.
        """
        if not isinstance(objinst, objects_base.NovaletObject):
            raise exception.MalformedRequest(
                reason="objinst is not a novalet object")
        args, kwargs = _check_args(args, kwargs)
        validate.check_manifest("object_action", object_versions)
        with objects_base.run_locally():
            method = _remotable_instance_method(objinst, objmethod)
            where = "%s.%s" % (objinst.obj_name(), objmethod)
            validate.check_call(method, where, args, kwargs, drop=1)
            validate.check_object(objinst, where, changed_only=True)
            objinst._context = context
            before = _snapshot(objinst)
            result = method(*args, **kwargs)
            if not isinstance(object_versions, dict):
                object_versions = None
            updates = _field_updates(objinst, before, object_versions)
        return updates, result

    @rpc.expose
    @metrics.observe
    def object_class_action_versions(self, context: Any, objname: Any,
                                     objmethod: Any, object_versions: Any,
                                     args: Any, kwargs: Any,
                                     objnamespace: Any = codec.CORE) -> Any:
        """Run the remotable class method ``objname.objmethod`` of the app
        ``objnamespace`` (RPC 1.2; before, always the core's).

        An object result is returned as a primitive at the versions in
        ``object_versions`` (the caller's), so the caller can read it.
        """
        args, kwargs = _check_args(args, kwargs)
        validate.check_manifest("object_class_action_versions", object_versions)
        objclass = _object_class(objname, object_versions, objnamespace)
        with objects_base.run_locally():
            method = _remotable_class_method(objclass, objmethod)
            validate.check_call(method, "%s.%s" % (objname, objmethod), args,
                                kwargs, drop=2)
            result = method(context, *args, **kwargs)
        if isinstance(result, objects_base.NovaletObject):
            target = object_versions.get(result.obj_name(), result.VERSION)
            return result.obj_to_primitive(target_version=target,
                                           version_manifest=object_versions)
        return result

    @rpc.expose
    @metrics.observe
    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: Any) -> Any:
        """Return ``objinst`` as a primitive at the caller's versions."""
        if (not isinstance(objinst, objects_base.NovaletObject)
                or not isinstance(object_versions, dict)):
            raise exception.MalformedRequest(
                reason="object_backport_versions needs an object and a "
                       "version manifest")
        target = object_versions.get(objinst.obj_name())
        if target is None:
            raise exception.MalformedRequest(
                reason="object_versions does not name %s" % objinst.obj_name())
        try:
            return objinst.obj_to_primitive(target_version=target,
                                            version_manifest=object_versions)
        except ovo_exc.InvalidTargetVersion:
            raise exception.UnsupportedObjectVersion(
                objname=objinst.obj_name(), version=target,
                supported=objinst.VERSION)

