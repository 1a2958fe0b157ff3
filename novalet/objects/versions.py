"""Objects across versions, as a caller under version caps needs them:
bringing objects read at an older version to this process's, and reading
the updates a conductor sent back at an older version. The negotiator
(``novalet.upgrade.negotiator``) is given this module (``ObjectVersions``).
"""

from __future__ import annotations

from typing import Any

from oslo_versionedobjects import base as ovo_base

from novalet.objects import base, codec

#: ``objname``'s version manifest in ``namespace`` (read-only).
version_tree = codec.version_tree


def is_object(value: Any) -> bool:
    """Whether ``value`` is a novalet object."""
    return isinstance(value, base.NovaletObject)


def make_current(value: Any) -> Any:
    """Bring every novalet object in ``value`` (an object, or lists, tuples
    and dicts holding objects) to its class's version, in place."""
    if isinstance(value, base.NovaletObject):
        value.obj_make_current()
    elif isinstance(value, (list, tuple)):
        for item in value:
            make_current(item)
    elif isinstance(value, dict):
        for item in value.values():
            make_current(item)
    return value


def updates_at_current(objinst: Any, sent_version: str,
                       updates: dict[str, Any]) -> dict[str, Any]:
    """``updates`` a conductor sent for ``objinst`` at ``sent_version``
    (field primitives, nested objects already deserialized), as the
    remotable wrapper applies them at ``objinst``'s version: primitives of
    this version for plain fields, current objects for object fields. They
    are read by the path that reads an old primitive (``_obj_from_primitive``
    at that version), whatever the field type."""
    cls = type(objinst)
    info = codec.info(cls)
    data = {}
    for name, value in updates.items():
        if name not in info.fields:
            continue
        data[name] = _as_received(value)
    primitive = {info.key_name: objinst.obj_name(),
                 info.key_namespace: info.namespace,
                 info.key_version: sent_version,
                 info.key_data: data}
    loaded = codec.class_for(objinst.obj_name(), sent_version,
                             info.namespace)._obj_from_primitive(
        objinst._context, sent_version, primitive)
    loaded.obj_make_current()
    current: dict[str, Any] = {
        key: value for key, value in updates.items() if key not in info.fields}
    for name in data:
        if not loaded.obj_attr_is_set(name):
            continue
        value = getattr(loaded, name)
        current[name] = (value if isinstance(value, ovo_base.VersionedObject)
                         else info.fields[name].to_primitive(loaded, name, value))
    return current


def _as_received(value: Any) -> Any:
    """A value of an update back in its wire form: objects the serializer
    already rebuilt become their primitives again (at the version they
    came at), so the whole update is read in one pass."""
    if isinstance(value, ovo_base.VersionedObject):
        return value.obj_to_primitive()
    if isinstance(value, list):
        return [_as_received(v) for v in value]
    if isinstance(value, dict):
        return {k: _as_received(v) for k, v in value.items()}
    return value
