"""How novalet reads and writes its objects' fields, fast.

oslo.versionedobjects rebuilds its field lists on every call and runs every
value through two or three generic calls. ``ClassInfo`` (``info(cls)``) is
computed once per class: per field, the shortcuts that give exactly what the
library's path gives (values of plain types and None as they are, a datetime
in the library's own form, nested objects by their class, a type's coerce
once); every value is still checked. Version trees and class lookups are
cached until the next registration (``registry_changed()``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from typing import Any

from oslo_utils import versionutils
from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import exception as ovo_exc
from oslo_versionedobjects import fields as ovo_fields

from novalet.app import CORE
from novalet.objects import fields


def _plain_field(field: Any) -> bool:
    """The field's own from_primitive and coerce are oslo.versionedobjects'
    base ones: all the work is its type's, and None is simply None when
    the field is nullable."""
    return (type(field).coerce is ovo_fields.Field.coerce
            and type(field).from_primitive is ovo_fields.Field.from_primitive)


def _identity_type(field: Any) -> type | None:
    """``int`` for a plain ``IntegerField`` and so on: a value of exactly
    that type is what the field's from_primitive and coerce would return.
    None for every other field (their checks always run)."""
    if not _plain_field(field):
        return None
    return _IDENTITY_TYPES.get(type(field._type))


_IDENTITY_TYPES: dict[type, type] = {
    ovo_fields.Integer: int, ovo_fields.Float: float, ovo_fields.String: str,
    ovo_fields.Boolean: bool, fields.StrictBoolean: bool}

#: Field types whose values cannot change in place.
_IMMUTABLE_TYPES: tuple[type, ...] = (
    ovo_fields.Integer, ovo_fields.NonNegativeInteger, ovo_fields.Float,
    ovo_fields.NonNegativeFloat, ovo_fields.String, ovo_fields.Boolean,
    ovo_fields.DateTime, ovo_fields.UUID, fields.StrictBoolean, fields.StrictUUID)
#: Field types whose values are never objects (containers included:
#: objects inside them are not tracked for changes, as in
#: oslo.versionedobjects).
_VALUE_TYPES = (*_IMMUTABLE_TYPES, ovo_fields.IPAddress, ovo_fields.CompoundFieldType)

#: A fast loader's answer "not this value: take the field's own path".
SLOW: Any = object()


def _load_datetime(obj: Any, value: Any) -> Any:
    # Only the form oslo.versionedobjects writes (isotime: whole seconds,
    # UTC as "Z"); its parser returns the same aware datetime.
    if type(value) is str and len(value) == 20 and value[19] == "Z":
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            pass
    return SLOW


def _object_loader(obj_name: str, info: ClassInfo) -> Callable[[Any, Any], Any]:
    key_name, key_namespace, key_version, namespace = (
        info.key_name, info.key_namespace, info.key_version, info.namespace)

    def load(obj: Any, value: Any) -> Any:
        # A primitive of exactly the object the field holds: its class by
        # name and version, as oslo.versionedobjects' Object field does
        # (which then checks the name the primitive already gave).
        if type(value) is not dict or value.get(key_name) != obj_name \
                or value.get(key_namespace) != namespace:
            return SLOW
        version = value.get(key_version)
        if type(version) is not str:
            return SLOW
        return class_for(obj_name, version, namespace)._obj_from_primitive(
            obj._context, version, value)
    return load


def _coerce_loader(coerce: Callable[[Any, str, Any], Any],
                   name: str) -> Callable[[Any, Any], Any]:
    def load(obj: Any, value: Any) -> Any:
        return SLOW if value is None else coerce(obj, name, value)
    return load


def _fast_loader(field: Any, name: str,
                 info: ClassInfo) -> Callable[[Any, Any], Any] | None:
    """A loader for the common primitive forms of ``field``'s values that
    returns what from_primitive then coerce would, or ``SLOW``; it may
    raise what they raise."""
    if not _plain_field(field):
        return None
    field_type = field._type
    kind = type(field_type)
    if kind is ovo_fields.DateTime and field_type.tzinfo_aware:
        return _load_datetime
    if kind is ovo_fields.Object and not field_type._subclasses:
        return _object_loader(field_type._obj_name, info)
    if kind.from_primitive is ovo_fields.FieldType.from_primitive:
        # from_primitive returns the value as it is: only the type's coerce
        # does anything (a hostname, a UUID, a string, an enum...).
        return _coerce_loader(field_type.coerce, name)
    if kind.from_primitive is ovo_fields.IPAddress.from_primitive:
        # from_primitive is coerce, then the setter coerces again: once
        # gives the same address.
        return _coerce_loader(field_type.coerce, name)
    return None


#: Bumped by every registration: the _RegistryCache dicts start over.
_registry_generation = 0


def registry_changed() -> None:
    """An object class was registered: version trees and class lookups are
    computed again."""
    global _registry_generation
    _registry_generation += 1


class ClassInfo:
    """What the hot paths need of an object class, computed once per class:
    ``(name, field, storage attribute)`` triples and the primitive keys."""

    def __init__(self, cls: Any) -> None:
        self.fields = cls.fields
        self.attrs = tuple((name, field, "_obj_" + name)
                           for name, field in cls.fields.items())
        ns = cls.OBJ_SERIAL_NAMESPACE
        self.key_name, self.key_namespace, self.key_version, self.key_data, \
            self.key_changes = ("%s.%s" % (ns, k) for k in (
                "name", "namespace", "version", "data", "changes"))
        self.namespace = cls.OBJ_PROJECT_NAMESPACE
        # For reading primitives: the Python type a field's value may have
        # for which from_primitive and coerce both return it unchanged,
        # whether None is just None, and a fast loader for other values.
        self.load = tuple((name, field, attr, _identity_type(field),
                           field.nullable and _plain_field(field),
                           _fast_loader(field, name, self))
                          for name, field, attr in self.attrs)
        # For writing them: whether to_primitive returns every value as it
        # is (the type's is the library's base one), or at least None.
        self.dump = tuple(
            (name, field, attr,
             _plain_field(field)
             and type(field._type).to_primitive is ovo_fields.FieldType.to_primitive,
             _plain_field(field))
            for name, field, attr in self.attrs)
        # Built without calling __init__ when it is the library's own.
        self.is_list = issubclass(cls, ovo_base.ObjectListBase)
        self.bare_init = cls.__init__ in (ovo_base.VersionedObject.__init__,
                                          ovo_base.ObjectListBase.__init__)
        self.by_attr = {attr: (name, field) for name, field, attr in self.attrs}
        # Fields whose value may change in place (dicts, lists, objects...).
        self.mutable_attrs = tuple(
            (name, field, attr) for name, field, attr in self.attrs
            if not isinstance(field._type, _IMMUTABLE_TYPES))
        # Fields whose value may itself be an object (its changes count).
        self.object_attrs = tuple((name, attr) for name, field, attr in self.attrs
                                  if not isinstance(field._type, _VALUE_TYPES))


class _RegistryCache(dict[Any, Any]):
    """A dict emptied whenever an object class is registered."""

    generation = -1

    def current(self) -> _RegistryCache:
        if self.generation != _registry_generation:
            self.clear()
            self.generation = _registry_generation
        return self


_trees = _RegistryCache()
_classes = _RegistryCache()


#: Every registered novalet object class: ``{(namespace, name): [class,
#: ...]}``, newest version first (oslo.versionedobjects' own registry is
#: keyed by name alone: two apps' classes of one name would mix there).
_by_key: dict[tuple[str, str], list[Any]] = {}


def add_class(cls: Any) -> None:
    """Record ``cls`` under ``(its namespace, its name)``; a class of the
    same version replaces the one registered before (as in the library)."""
    key = (cls.OBJ_PROJECT_NAMESPACE, cls.obj_name())
    registered = _by_key.setdefault(key, [])
    version = versionutils.convert_version_to_tuple(cls.VERSION)
    for i, other in enumerate(registered):
        if other.VERSION == cls.VERSION:
            registered[i] = cls
            break
        if version > versionutils.convert_version_to_tuple(other.VERSION):
            registered.insert(i, cls)
            break
    else:
        registered.append(cls)
    registry_changed()


def remove_class(cls: Any) -> None:
    """Forget ``cls`` (tests that register throwaway classes)."""
    key = (cls.OBJ_PROJECT_NAMESPACE, cls.obj_name())
    registered = _by_key.get(key, [])
    if cls in registered:
        registered.remove(cls)
    if not registered:
        _by_key.pop(key, None)
    registry_changed()


def is_registered(objname: str, namespace: str = CORE) -> bool:
    return (namespace, objname) in _by_key


def check_known(objname: str, namespace: str = CORE) -> None:
    """The one check of an object a caller names: raise ``UnknownNamespace``
    (no app of that name is loaded) or ``UnknownObject`` unless
    ``namespace.objname`` is registered."""
    if (namespace, objname) in _by_key:
        return
    from novalet import exception

    if namespace not in namespaces():
        raise exception.UnknownNamespace(
            namespace=namespace, objname=objname,
            loaded=", ".join(sorted(namespaces())) or "none")
    raise exception.UnknownObject(
        objname=objname if namespace == CORE else "%s.%s" % (namespace, objname),
        reason="no such object is registered")


def classes_named(objname: str, namespace: str = CORE) -> list[Any]:
    """The registered classes of ``namespace.objname``, newest first."""
    return list(_by_key.get((namespace, objname), ()))


def registered_keys() -> set[tuple[str, str]]:
    return set(_by_key)


def registered_classes() -> set[Any]:
    return {cls for classes in _by_key.values() for cls in classes}


def namespaces() -> set[str]:
    """The namespaces that have registered objects."""
    return {ns for ns, _ in _by_key}


def classes(namespace: str) -> dict[str, list[Any]]:
    """``{name: [class, ...]}`` of one namespace, newest first: the shape
    of oslo.versionedobjects' ``obj_classes()`` (``ObjectVersionChecker``
    takes it)."""
    return {name: list(found) for (ns, name), found in sorted(_by_key.items())
            if ns == namespace}


def _found(objname: str, namespace: str) -> list[Any]:
    found = _by_key.get((namespace, objname))
    if found:
        return found
    if namespace not in namespaces():
        check_known(objname, namespace)  # raises UnknownNamespace
    raise ovo_exc.UnsupportedObjectError(objtype="%s.%s" % (namespace, objname))


def newest(objname: str, namespace: str = CORE) -> Any:
    """The newest registered class ``namespace.objname``."""
    return _found(objname, namespace)[0]


def _tree(objname: str, namespace: str, tree: dict[str, str]) -> None:
    # obj_tree_get_versions, resolving each child in the parent's namespace
    # (then the core's): a nested ObjectField names a class, not an app.
    if objname in tree:
        return
    objclass = newest(objname, namespace)
    tree[objname] = objclass.VERSION
    for field in objclass.fields.values():
        if isinstance(field, (ovo_fields.ObjectField,
                              ovo_fields.ListOfObjectsField)):
            child = field.objname
            child_ns = namespace if (namespace, child) in _by_key else CORE
            if (child_ns, child) not in _by_key:
                raise ovo_exc.UnregisteredSubobject(
                    child_objname=child, parent_objname=objname)
            _tree(child, child_ns, tree)


def version_tree(objname: str, namespace: str = CORE) -> Mapping[str, str]:
    """``obj_tree_get_versions(objname)`` (of the newest registered class
    of ``namespace``), computed once per registry change: the same mapping
    each call, which callers must not change."""
    trees = _trees.current()
    key = (namespace, objname)
    tree = trees.get(key)
    if tree is None:
        built: dict[str, str] = {}
        _tree(objname, namespace, built)
        tree = trees[key] = built
    return tree  # type: ignore[no-any-return]


def class_for(objname: str, objver: str, namespace: str = CORE) -> Any:
    """``obj_class_from_name(objname, objver)`` within ``namespace``: the
    class of that version, else the newest compatible one; remembered until
    the next registration (the library searches on every call). Raises as
    the library does, and ``UnknownNamespace``."""
    classes = _classes.current()
    key = (namespace, objname, objver)
    objclass = classes.get(key)
    if objclass is None:
        found = _found(objname, namespace)
        compatible = None
        for candidate in found:
            if candidate.VERSION == objver:
                objclass = candidate
                break
            if compatible is None and versionutils.is_compatible(
                    objver, candidate.VERSION):
                compatible = candidate
        else:
            objclass = compatible
        if objclass is None:
            raise ovo_exc.IncompatibleObjectVersion(
                objname=objname, objver=objver, supported=found[0].VERSION)
        if len(classes) < 512:  # only what was found; never unbounded
            classes[key] = objclass
    return objclass


def manifest_is_current(cls: Any, manifest: Mapping[str, str]) -> bool:
    """``manifest`` names ``cls`` and every object it may hold at the
    versions this process has: nothing sent to its owner needs a backport."""
    tree = version_tree(cls.obj_name(), cls.OBJ_PROJECT_NAMESPACE)
    return all(manifest.get(name) == version for name, version in tree.items())


def fields_by_attr(cls: Any) -> dict[str, tuple[str, Any]]:
    """``{storage attribute: (name, field)}`` of ``cls``."""
    return info(cls).by_attr


def mutable_field_attrs(cls: Any) -> tuple[tuple[str, Any, str], ...]:
    """``(name, field, storage attribute)`` of the fields of ``cls`` whose
    value may change in place."""
    return info(cls).mutable_attrs


def info(cls: Any) -> ClassInfo:
    info = cls.__dict__.get("_novalet_info")
    if info is None or info.fields is not cls.fields:
        info = ClassInfo(cls)
        type.__setattr__(cls, "_novalet_info", info)
    return info  # type: ignore[no-any-return]

