"""The novalet object model on oslo.versionedobjects.

* ``NovaletObject``: base of every object (namespace ``novalet``).
* ``NovaletObjectRegistry``: objects register explicitly with its decorator;
  ``novalet.objects.register_all()`` imports the object modules.
* ``NovaletPersistentObject``: the timestamp and soft-delete fields.
* ``ObjectListBase``: base of a list object (oslo.versionedobjects' list
  mixin on ``NovaletObject``); ``LeaseList.obj_from_db(ctxt, rows)``.
* From a database row: ``Lease.obj_from_db(ctxt, row)`` (a new object) or
  ``NovaletObject._from_db_object(ctxt, obj, row)`` (fills ``obj``): each
  field from its column, the context set, no changes pending.
* ``NovaletObjectSerializer``: turns objects into primitives and back for RPC;
  errors in what it receives become typed ``novalet.exception`` errors.
* The indirection switch: ``set_indirection_api()`` sets where remotable
  methods run for the whole process; ``run_locally()`` makes this thread run
  them here (the conductor's dispatcher uses it, even when a conductor lives
  in the same process as its callers).
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable, Iterable, MutableMapping, Sequence
from typing import Any, Self, TypeVar, cast

from oslo_utils import uuidutils, versionutils
from oslo_versionedobjects import base as ovo_base

from novalet import app, db, exception
from novalet.objects import codec, fields

F = TypeVar("F", bound=Callable[..., Any])

remotable = ovo_base.remotable
# oslo.versionedobjects' (the item class by name in its own registry);
# ObjectListBase.obj_from_db looks it up in the list's namespace.
obj_make_list = ovo_base.obj_make_list

# -- the indirection switch ---------------------------------------------------

_indirection_api: Any = None


class _IndirectionSwitch:
    """Class attribute ``indirection_api``: the process-wide API, or None
    in a thread that is running remotable methods for a caller."""

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if db.dispatching():
            return None
        api = _indirection_api
        if api is None or objtype is None:
            return api
        namespace = objtype.OBJ_PROJECT_NAMESPACE
        if namespace == codec.CORE:
            return api
        return _namespaced(api, namespace)

    def __set__(self, obj: Any, value: Any) -> None:
        raise AttributeError(
            "use novalet.objects.base.set_indirection_api() to change it")


class _NamespacedAPI:
    """The indirection API as a remotable class method of an app's object
    sees it: oslo.versionedobjects names the class by name only, this adds
    its namespace (and the version tree of that namespace's class)."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str, object_versions: Any,
                                     args: Any, kwargs: Any) -> Any:
        return self.api.object_class_action_versions(
            context, objname, objmethod,
            dict(codec.version_tree(objname, self.namespace)), args, kwargs,
            objnamespace=self.namespace)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.api, name)


_namespaced_apis: dict[tuple[int, str], _NamespacedAPI] = {}


def _namespaced(api: Any, namespace: str) -> _NamespacedAPI:
    key = (id(api), namespace)
    wrapped = _namespaced_apis.get(key)
    if wrapped is None or wrapped.api is not api:
        if len(_namespaced_apis) > 64:
            _namespaced_apis.clear()
        wrapped = _namespaced_apis[key] = _NamespacedAPI(api, namespace)
    return wrapped


def set_indirection_api(api: Any) -> None:
    """Route every remotable call in this process through ``api`` (None: run
    locally against the database)."""
    global _indirection_api
    _indirection_api = api


def get_indirection_api() -> Any:
    return _indirection_api


def run_locally() -> Any:
    """``with run_locally():`` this thread runs remotable methods itself and
    may use the database (it is dispatching for a conductor): the database
    layer's ``conductor_access``, whose per-thread depth the indirection
    switch reads."""
    return db.conductor_access()


# -- registry and base classes -----------------------------------------------


class NovaletObjectRegistry(ovo_base.VersionedObjectRegistry):
    """novalet's registry, keyed by (namespace, name) (``codec``): two
    apps' objects of one name coexist. A class also goes into
    oslo.versionedobjects' registry (keyed by name) unless another
    namespace's class holds the name there (a foreign library's, or the
    other app's): the library's own tools then see it. Registering a core
    class makes ``novalet.objects.<Name>`` its newest version."""

    def _register_class(self, cls: type) -> None:
        namespace = cls.OBJ_PROJECT_NAMESPACE  # type: ignore[attr-defined]
        held = ovo_base.VersionedObjectRegistry.obj_classes().get(
            cls.obj_name())  # type: ignore[attr-defined]
        if namespace == codec.CORE or not held or all(
                c.OBJ_PROJECT_NAMESPACE == namespace for c in held):
            super()._register_class(cls)  # type: ignore[arg-type]
        else:
            # Fields become properties as the library's registration does.
            ovo_base.VersionedObjectRegistry.register_if(False)(cls)  # type: ignore[type-var]
        codec.add_class(cls)
        app.object_registered(cls)

    def registration_hook(self, cls: type, index: int) -> None:
        from novalet import objects

        if cls.OBJ_PROJECT_NAMESPACE != codec.CORE:  # type: ignore[attr-defined]
            return
        version = versionutils.convert_version_to_tuple(cls.VERSION)  # type: ignore[attr-defined]
        current = getattr(objects, cls.obj_name(), None)  # type: ignore[attr-defined]
        if current is None or version >= versionutils.convert_version_to_tuple(
                current.VERSION):
            setattr(objects, cls.obj_name(), cls)  # type: ignore[attr-defined]


class NovaletObject(ovo_base.VersionedObject):
    """Base of novalet objects.

    Setting a field to a bad value raises ``ObjectFieldInvalid`` naming the
    object and the field.
    """

    OBJ_SERIAL_NAMESPACE = "novalet_object"
    OBJ_PROJECT_NAMESPACE = codec.CORE

    indirection_api = _IndirectionSwitch()  # type: ignore[assignment]

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in self.fields:
            return super().__setattr__(name, value)
        try:
            super().__setattr__(name, value)
        except exception.ObjectFieldInvalid:
            raise
        except (ValueError, TypeError) as e:
            if name not in self.fields:
                raise
            raise exception.ObjectFieldInvalid(
                objname=self.obj_name(), field=name, value=value, reason=e)

    @classmethod
    def obj_register(cls) -> None:
        """Register this class with ``NovaletObjectRegistry`` in its
        ``OBJ_PROJECT_NAMESPACE`` (``App.register`` calls it, having set
        the namespace to the app's)."""
        NovaletObjectRegistry.register(cls)

    @classmethod
    def obj_from_primitive(cls, primitive: dict[str, Any],
                           context: Any = None) -> Any:
        # As oslo.versionedobjects', with the class lookup remembered.
        info = codec.info(cls)
        # Any registered namespace: an app's object may nest another's.
        objns = primitive[info.key_namespace]
        objname = primitive[info.key_name]
        objver = primitive[info.key_version]
        if type(objver) is not str or type(objns) is not str:
            raise exception.MalformedRequest(
                reason="%s primitive: version %r and namespace %r must be "
                       "strings" % (objname, objver, objns))
        return codec.class_for(objname, objver, objns)._obj_from_primitive(
            context, objver, primitive)

    @classmethod
    def _obj_from_primitive(cls, context: Any, objver: str,
                            primitive: dict[str, Any]) -> Any:
        # As oslo.versionedobjects' (each field's from_primitive, then the
        # same coerce its property setter runs), storing straight into the
        # attributes; a field that cannot be read is named in the error.
        info = codec.info(cls)
        objdata = primitive.get(info.key_data)
        changes = primitive.get(info.key_changes, [])
        if not isinstance(objdata, dict) or not isinstance(changes, list):
            raise exception.MalformedRequest(
                reason="%s primitive needs a data dict and a changes list"
                % cls.obj_name())
        if info.bare_init:
            # What VersionedObject.__init__ does; ObjectListBase's also sets
            # an empty list, made below if the primitive holds none.
            self = cls.__new__(cls)
            self.__dict__["_changed_fields"] = set()
        else:
            self = cls()
        stored = self.__dict__
        stored["_context"] = context
        stored["VERSION"] = objver
        for name, field, attr, identity_type, none_is_none, fast in info.load:
            if name not in objdata:
                continue
            value = objdata[name]
            if type(value) is identity_type or (value is None and none_is_none):
                stored[attr] = value
                continue
            try:
                if fast is not None:
                    loaded = fast(self, value)
                    if loaded is not codec.SLOW:
                        stored[attr] = loaded
                        continue
                stored[attr] = field.coerce(
                    self, name, field.from_primitive(self, name, value))
            except (exception.NovaletException, exception.ObjectFieldInvalid):
                raise
            except (AttributeError, KeyError, TypeError, ValueError) as e:
                raise exception.ObjectFieldInvalid(
                    objname=cls.obj_name(), field=name, value=value, reason=e)
        if info.bare_init and info.is_list and "_obj_objects" not in stored:
            self.objects = []
        changed = set()
        for x in changes:
            if type(x) is not str:
                raise exception.MalformedRequest(
                    reason="%s primitive: changes: %s is not a field name"
                    % (cls.obj_name(), type(x).__name__))
            if x not in info.fields:
                continue  # a newer release's field: not ours to write
            if not self.obj_attr_is_set(x):
                # Writing it would read an unset field (NotImplementedError).
                raise exception.MalformedRequest(
                    reason="%s primitive: changes name %s, which is not set"
                    % (cls.obj_name(), x))
            changed.add(x)
        stored["_changed_fields"] = changed
        return self

    def obj_to_primitive(self, target_version: str | None = None,
                         version_manifest: dict[str, str] | None = None) -> Any:
        """As oslo.versionedobjects', but an object read at an older version
        than its class (``self.VERSION`` set from the primitive) is always
        turned back into that version's form, not just relabelled; and a
        manifest naming this object's own versions (the caller runs the same
        release) costs no compatibility pass."""
        cls = type(self)
        own = self.__dict__.get("VERSION")
        if own is not None and own != cls.VERSION:
            del self.VERSION
            try:
                return super().obj_to_primitive(target_version or own,
                                                version_manifest)
            finally:
                self.VERSION = own
        info = codec.info(cls)
        if target_version is not None and target_version != cls.VERSION:
            return super().obj_to_primitive(target_version, version_manifest)
        if version_manifest and not codec.manifest_is_current(cls, version_manifest):
            return super().obj_to_primitive(target_version, version_manifest)
        stored = self.__dict__
        data = {name: (value if as_is or value is None and none_is_none
                       else field.to_primitive(self, name, value))
                for name, field, attr, as_is, none_is_none in info.dump
                if attr in stored
                for value in (stored[attr],)}
        primitive = {info.key_name: self.obj_name(),
                     info.key_namespace: cls.OBJ_PROJECT_NAMESPACE,
                     info.key_version: cls.VERSION,
                     info.key_data: data}
        changes = [name for name in self.obj_what_changed() if name in data]
        if changes:
            primitive[info.key_changes] = changes
        return primitive

    def obj_what_changed(self) -> set[str]:
        # oslo.versionedobjects' answer, reading the attributes directly.
        info = codec.info(type(self))
        changes = {name for name in self._changed_fields if name in info.fields}
        stored = self.__dict__
        for name, attr in info.object_attrs:
            value = stored.get(attr)
            if (isinstance(value, ovo_base.VersionedObject)
                    and value.obj_what_changed()):
                changes.add(name)
        return changes

    def obj_attr_is_set(self, attrname: str) -> bool:
        # oslo.versionedobjects' builds the list of all field names per call.
        if attrname not in self.fields and attrname not in self.obj_extra_fields:
            raise AttributeError("%s object has no attribute '%s'"
                                 % (self.obj_name(), attrname))
        return hasattr(self, "_obj_" + attrname)

    def obj_make_current(self) -> None:
        """Bring this object, read at an older version, to its class's
        version in place, nested objects too; pending changes stay. (Its
        fields already hold the newest form: a class reads older primitives
        into its own fields. Only the label changes, so whatever is sent
        next goes at the newest version the caps allow.)"""
        stored = self.__dict__
        stored.pop("VERSION", None)
        for _name, _field, attr in codec.mutable_field_attrs(type(self)):
            value = stored.get(attr)
            if isinstance(value, NovaletObject):
                value.obj_make_current()
            elif type(value) is list or type(value) is dict:
                for item in (value.values() if type(value) is dict else value):
                    if isinstance(item, NovaletObject):
                        item.obj_make_current()

    # -- from a database row ------------------------------------------------

    #: Fields stored in a column of another name: ``{field: column}``.
    obj_db_columns: dict[str, str] = {}

    @classmethod
    def obj_from_db(cls, context: Any, db_row: Any) -> Self:
        """A new object of this class holding ``db_row``'s values, with
        ``context`` and no pending changes (``_from_db_object``)."""
        return cast(Self, cls._from_db_object(context, cls(), db_row))

    @staticmethod
    def _from_db_object(context: Any, obj: Any, db_row: Any) -> Any:
        """Fill ``obj`` from ``db_row`` (a row or any object with the
        columns as attributes) and return it: each field but those in
        ``obj_extra_fields`` from its column (``obj_db_columns`` renames),
        through ``obj_db_to_field``; then the context is set and every
        change, nested objects' too, reset. An object with a field made of
        several columns overrides this: it sets that field (listed in
        ``obj_extra_fields``), then calls ``NovaletObject._from_db_object``.
        """
        for name in obj.fields:
            if name in obj.obj_extra_fields:
                continue
            value = getattr(db_row, obj.obj_db_columns.get(name, name))
            if name == "deleted" and isinstance(obj, NovaletPersistentObject):
                value = bool(value)  # soft delete stores the row's id
            else:
                value = obj.obj_db_to_field(name, value)
            setattr(obj, name, value)
        obj._context = context
        obj.obj_reset_changes(recursive=True)
        return obj

    def obj_db_to_field(self, name: str, value: Any) -> Any:
        """Convert a column value into a field value (override per field)."""
        return value

    @classmethod
    def obj_newest_version(cls) -> str:
        return codec.newest(cls.obj_name(), cls.OBJ_PROJECT_NAMESPACE).VERSION  # type: ignore[no-any-return]

    @classmethod
    def obj_class_from_name(cls, objname: str, objver: str) -> Any:
        """As oslo.versionedobjects', within this class's namespace."""
        return codec.class_for(objname, objver, cls.OBJ_PROJECT_NAMESPACE)


class ObjectListBase(ovo_base.ObjectListBase, NovaletObject):  # type: ignore[type-arg]
    """Base of a list object: oslo.versionedobjects' list mixin on
    ``NovaletObject``. Its one field is ``objects``
    (``fields.ListOfObjectsField("Lease")``); ``child_versions`` maps each
    of its versions to the item's. An app's list takes its app's namespace
    as any of its objects does (``App.register``)."""

    @classmethod
    def obj_from_db(cls, context: Any, db_rows: Iterable[Any]) -> Self:
        """A new list of ``db_rows`` as objects of its item class (that
        class's ``_from_db_object``, in the list's own namespace), with
        ``context`` and no pending changes."""
        item_name = cls.fields["objects"].objname  # type: ignore[attr-defined]
        item_cls = codec.newest(item_name, cls.OBJ_PROJECT_NAMESPACE)
        listed = cls(context)
        listed.objects = [item_cls._from_db_object(context, item_cls(), row)
                          for row in db_rows]
        listed.obj_reset_changes()
        return listed


#: The serializer's mark of an object primitive.
_NAME_KEY = "%s.name" % NovaletObject.OBJ_SERIAL_NAMESPACE
_NAMESPACE_KEY = "%s.namespace" % NovaletObject.OBJ_SERIAL_NAMESPACE

#: Set by the database layer (soft delete, timestamps), never written from
#: an object's changes.
_DB_OWNED_FIELDS = frozenset({"deleted", "deleted_at", "updated_at"})


class NovaletPersistentObject:
    """Fields every database-backed object has, and the row mapping."""

    fields: MutableMapping[str, fields.Field[Any]] = {
        "created_at": fields.DateTimeField(nullable=True, default=None),
        "updated_at": fields.DateTimeField(nullable=True, default=None),
        "deleted_at": fields.DateTimeField(nullable=True, default=None),
        "deleted": fields.BooleanField(default=False),
    }

    #: Fields that are not columns of the row (filled by the object).
    obj_extra_fields: Sequence[str] = ()
    obj_db_columns: dict[str, str]  # NovaletObject's
    # The row mapping is NovaletObject's; the mixin's name for it stays.
    _from_db_object = staticmethod(NovaletObject._from_db_object)

    def obj_db_create(self, db_create: Any) -> None:
        """The body of a ``create()``: a uuid if none, defaults, one INSERT
        through ``db_create(context, values)``, then the row read back."""
        if self.obj_attr_is_set("id"):  # type: ignore[attr-defined]
            raise exception.ObjectActionError(action="create",
                                              reason="already created")
        if not self.obj_attr_is_set("uuid"):  # type: ignore[attr-defined]
            self.uuid = uuidutils.generate_uuid()  # type: ignore[attr-defined]
        self.obj_set_defaults()  # type: ignore[attr-defined]
        row = db_create(self._context, self.obj_db_changes())  # type: ignore[attr-defined]
        self._from_db_object(self._context, self, row)  # type: ignore[attr-defined]

    def obj_db_update(self, db_update: Any) -> None:
        """The body of a one-UPDATE ``save()``: ``db_update(context, id,
        values)`` returns the new ``updated_at``."""
        self.updated_at = db_update(self._context, self.id,  # type: ignore[attr-defined]
                                    self.obj_db_changes())
        # Nested objects too: what they held is written.
        self.obj_reset_changes(recursive=True)  # type: ignore[attr-defined]

    def obj_db_destroy(self, db_destroy: Any) -> None:
        """The body of a ``destroy()``: soft-delete the row."""
        db_destroy(self._context, self.id)  # type: ignore[attr-defined]
        self.deleted = True
        self.obj_reset_changes(["deleted"])  # type: ignore[attr-defined]

    def obj_field_to_db(self, name: str, value: Any) -> Any:
        """Convert a field value into a column value (override per field)."""
        return value

    def obj_db_changes(self) -> dict[str, Any]:
        """``obj_get_changes()`` as column values (naive UTC datetimes)."""
        values = {}
        for name, value in self.obj_get_changes().items():  # type: ignore[attr-defined]
            if name in self.obj_extra_fields or name in _DB_OWNED_FIELDS:
                continue
            if isinstance(value, datetime.datetime) and value.tzinfo:
                value = value.astimezone(datetime.UTC).replace(tzinfo=None)
            values[self.obj_db_columns.get(name, name)] = \
                self.obj_field_to_db(name, value)
        values.pop("id", None)
        return values


def skip_if_unchanged(fn: F) -> F:
    """A ``save()`` with nothing changed returns at once: no RPC, no SQL.

    Goes outside ``@remotable`` and keeps its ``remotable`` mark, so the
    conductor still sees a remotable method.
    """

    @functools.wraps(fn)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if not self.obj_what_changed():
            return None
        return fn(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# The serializer's public name, where it has always been.
from novalet.objects.serializer import (  # noqa: E402
    NovaletObjectSerializer as NovaletObjectSerializer,
)
