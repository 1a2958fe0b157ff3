"""The negotiation matrix's generator: every remotable method of every
registered object, a world of rows made from the objects' own field types,
arguments found by name in that world, and normalized results and rows.

Nothing here names an object or a method: a new object or method joins the
matrix by being registered. A field type or a parameter name the generator
cannot handle fails with a message saying what to teach it.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import inspect
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from oslo_versionedobjects import base as ovo_base
from oslo_versionedobjects import fields as ovo_fields

from novalet.objects import base as objects_base
from novalet.objects import fields as novalet_fields

_NAMESPACE = uuid.UUID("6f1d3a52-6f51-4d1e-9b7a-3c0f1a2b4c5d")
_BASE_TIME = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)

#: Set by the database or by create() itself, never given (last_seen_up:
#: by the database clock only, a value sent is refused).
DB_FIELDS = frozenset({"id", "created_at", "updated_at", "deleted_at", "deleted",
                       "last_seen_up"})
#: Columns that say how a request arrived (signed by whom; the delivery keys
#: of signed heartbeats), which differ between the paths by design: left out
#: of the rows compared.
PATH_COLUMNS = frozenset({"last_auth", "recent_deliveries"})
#: Values that differ between two runs of the same scenario.
VOLATILE = frozenset({"id", "created_at", "updated_at", "deleted_at", "last_seen_up"})

#: The two live rows of each object in the world, and the values a save
#: or a create writes.
ROW_VARIANTS = (0, 1)
NEW = 2


@dataclasses.dataclass(frozen=True)
class Method:
    cls: Any
    name: str
    is_class: bool

    @property
    def id(self) -> str:
        return "%s.%s" % (self.cls.obj_name(), self.name)

    @property
    def function(self) -> Callable[..., Any]:
        static = inspect.getattr_static(self.cls, self.name)
        fn = static.__func__ if isinstance(static, classmethod) else static
        return getattr(fn, "original_fn", fn)  # type: ignore[no-any-return]


def class_named(name: str, namespace: str = "novalet") -> Any:
    """The newest class ``name`` of ``namespace``, else the core's (an
    app's object may hold the core's)."""
    from novalet.objects import codec

    if codec.is_registered(name, namespace):
        return codec.newest(name, namespace)
    return codec.newest(name)


def registered_classes(namespace: str = "novalet") -> list[Any]:
    """The newest class of every registered object of ``namespace`` (from
    novalet's registry, keyed by namespace: an app's class of a name the
    core or another library holds is not in oslo.versionedobjects')."""
    from novalet.objects import codec

    found = [classes[0] for _name, classes in sorted(codec.classes(namespace).items())]
    assert found, "no %s objects are registered" % namespace
    return found


@functools.cache
def remotable_methods(namespace: str = "novalet") -> tuple[Method, ...]:
    methods = []
    for cls in registered_classes(namespace):
        for name in sorted(dir(cls)):
            if name.startswith("_"):
                continue
            static = inspect.getattr_static(cls, name, None)
            if isinstance(static, classmethod):
                if getattr(static.__func__, "remotable", False):
                    methods.append(Method(cls, name, True))
            elif callable(static) and getattr(static, "remotable", False):
                methods.append(Method(cls, name, False))
    return methods


def is_persistent(cls: Any) -> bool:
    return issubclass(cls, objects_base.NovaletPersistentObject)


def item_class(cls: Any) -> Any:
    """The class a list object holds, or ``cls`` itself."""
    if issubclass(cls, ovo_base.ObjectListBase):
        return class_named(cls.fields["objects"]._type._element_type._type._obj_name,
                           cls.OBJ_PROJECT_NAMESPACE)
    return cls


# -- values made from field types ------------------------------------------

def _camel(snake: str) -> str:
    return "".join(part.capitalize() for part in snake.split("_"))


def value_for(cls: Any, name: str, field: Any, variant: int) -> Any:
    """A valid value of ``cls.name`` for ``variant``; values of different
    variants differ. Host, node and ``<object>_uuid`` fields follow one
    naming so that rows of different objects refer to each other."""
    kind = field._type
    if name == "host" or name.endswith("_compute"):
        return "host-%d" % variant
    if name in ("node", "hypervisor_hostname") or name.endswith("_node"):
        return "node-%d" % variant
    if isinstance(kind, (ovo_fields.UUID, novalet_fields.StrictUUID)):
        owner = cls.obj_name() if name == "uuid" else _camel(name[:-len("_uuid")])
        return str(uuid.uuid5(_NAMESPACE, "%s.uuid.%d" % (owner, variant)))
    if isinstance(kind, ovo_fields.Enum):
        valid = kind._valid_values
        return valid[variant % len(valid)]
    if isinstance(kind, (ovo_fields.Boolean, novalet_fields.StrictBoolean)):
        return variant != 0
    if isinstance(kind, (ovo_fields.Integer, ovo_fields.NonNegativeInteger)):
        return 10 + variant
    if isinstance(kind, (ovo_fields.Float, ovo_fields.NonNegativeFloat)):
        return 1.5 + variant
    if isinstance(kind, ovo_fields.DateTime):
        return _BASE_TIME + datetime.timedelta(days=variant)
    if isinstance(kind, ovo_fields.IPNetwork):
        return "198.51.%d.0/24" % (100 + variant)  # TEST-NET-2: a value only
    if isinstance(kind, ovo_fields.IPAddress):
        return "192.0.2.%d" % (10 + variant)  # TEST-NET-1: a value only
    if isinstance(kind, ovo_fields.MACAddress):
        return "52:54:00:00:00:%02x" % (10 + variant)
    if isinstance(kind, ovo_fields.String):
        return "%s-%d" % (name.replace("_", "-"), variant)
    if isinstance(kind, ovo_fields.Object):
        return make_object(class_named(kind._obj_name, cls.OBJ_PROJECT_NAMESPACE),
                           variant)
    if isinstance(kind, ovo_fields.List):
        element = kind._element_type
        return [value_for(cls, name, element, variant + i) for i in (0, 1)]
    if isinstance(kind, ovo_fields.Dict):
        return {"key": value_for(cls, name, kind._element_type, variant)}
    raise AssertionError(
        "the matrix cannot make a value of %s for %s.%s: teach "
        "tests/matrix.py:value_for" % (type(kind).__name__, cls.obj_name(), name))


def settable_fields(cls: Any) -> list[str]:
    return [name for name, field in cls.fields.items()
            if name not in DB_FIELDS and not field.read_only]


def make_object(cls: Any, variant: int, context: Any = None) -> Any:
    obj = cls(context)
    for name in settable_fields(cls):
        setattr(obj, name, value_for(cls, name, cls.fields[name], variant))
    return obj


# -- the world --------------------------------------------------------------

class World:
    """Two live rows of every object of ``namespace`` with a remotable
    ``create()``, made locally (uncapped)."""

    def __init__(self, context: Any, namespace: str = "novalet") -> None:
        self.context = context
        self.namespace = namespace
        self.rows: dict[str, list[Any]] = {}
        with objects_base.run_locally():
            for cls in registered_classes(namespace):
                if "create" in _instance_methods(cls):
                    self.rows[cls.obj_name()] = [
                        self._create(cls, variant) for variant in ROW_VARIANTS]

    def _create(self, cls: Any, variant: int) -> Any:
        obj = make_object(cls, variant, self.context)
        obj.create()
        return obj

    def row(self, cls: Any, variant: int = 0) -> Any:
        return self.rows[item_class(cls).obj_name()][variant]


def _instance_methods(cls: Any) -> set[str]:
    return {m.name for m in remotable_methods(cls.OBJ_PROJECT_NAMESPACE)
            if m.cls is cls and not m.is_class}


def _plain(field: Any, value: Any) -> Any:
    """A field value as a caller passes it (an address as text)."""
    return str(value) if isinstance(field._type, ovo_fields.IPAddress) else value


#: Parameter names that are not a field of the method's object: what they
#: refer to in the world.
def _argument(world: World, method: Method, param: inspect.Parameter) -> Any:
    cls = item_class(method.cls)
    name = param.name
    row = world.row(cls)
    if name in cls.fields and row.obj_attr_is_set(name):
        return _plain(cls.fields[name], getattr(row, name))
    for held_name in cls.fields:  # a field of an object the row holds
        held = getattr(row, held_name) if row.obj_attr_is_set(held_name) else None
        if isinstance(held, ovo_base.VersionedObject) and name in held.fields:
            return _plain(held.fields[name], getattr(held, name))
    if name in ("host", "node", "nodename"):
        return value_for(cls, "node" if name == "nodename" else name,
                         novalet_fields.StringField(), 0)
    for suffix, many in (("_ids", True), ("_id", False)):
        if name.endswith(suffix):
            owner = {"node": "ComputeNode"}.get(name[:-len(suffix)],
                                                _camel(name[:-len(suffix)]))
            if owner not in world.rows:
                owner = cls.obj_name()
            ids = [r.id for r in world.rows[owner]]
            return ids if many else ids[0]
    if param.default is not inspect.Parameter.empty:
        return param.default
    if param.annotation in (int, "int"):  # a plain number (a time, a count)
        return 100
    raise AssertionError(
        "the matrix cannot find a value for parameter %r of %s: teach "
        "tests/matrix.py:_argument" % (name, method.id))


def arguments(world: World, method: Method) -> list[Any]:
    params = list(inspect.signature(method.function).parameters.values())[1:]
    if method.is_class:
        params = params[1:]  # the context
    return [_argument(world, method, p) for p in params
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def getter(world: World, cls: Any) -> Method | None:
    """A remotable class method of ``cls`` that reads row 0 back."""
    for method in remotable_methods(cls.OBJ_PROJECT_NAMESPACE):
        if method.cls is not cls or not method.is_class:
            continue
        returns = inspect.signature(method.function).return_annotation
        if returns in (cls.obj_name(), cls):
            return method
    return None


# -- normal forms -----------------------------------------------------------

def normal(value: Any) -> Any:
    """``value`` with what differs between runs replaced: objects become
    their fields (ids and timestamps only as set or not), datetimes and
    text that reads as one become a mark."""
    if isinstance(value, ovo_base.VersionedObject):
        return (value.obj_name(), {
            name: ("<set>" if getattr(value, name) is not None else None)
            if name in VOLATILE else normal(getattr(value, name))
            for name in value.fields if value.obj_attr_is_set(name)})
    if isinstance(value, (list, tuple)):
        return [normal(v) for v in value]
    if isinstance(value, dict):
        return {k: normal(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        return "<datetime>"
    if isinstance(value, str):
        try:
            datetime.datetime.fromisoformat(value)
        except ValueError:
            return value
        return "<datetime>"
    return value


def fields_at(cls: Any, version: str | None, manifest: dict[str, str] | None) -> set[str]:
    """The fields of ``cls`` an object at ``version`` carries (all when None)."""
    if version is None or version == cls.VERSION:
        return set(cls.fields)
    sample = make_object(cls, NEW)
    primitive = sample.obj_to_primitive(target_version=version,
                                        version_manifest=manifest)
    return set(primitive["%s.data" % cls.OBJ_SERIAL_NAMESPACE])


def table_rows(database: Any, tables: dict[str, set[str] | None],
               keep_host: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """Every row of ``tables`` without volatile columns (timestamps only
    as set or not), sorted; ``tables`` maps a table to the columns left out
    (``None``: none). Rows of ``keep_host`` (the conductor's) are left out."""
    found = {}
    for table, left_out in sorted(tables.items()):
        rows = []
        for row in database.query("SELECT * FROM %s" % table):
            values = dict(row._mapping)
            if table == "services" and keep_host and values.get("host") == keep_host:
                continue
            normal_row = {}
            for column, value in values.items():
                if (left_out and column in left_out) or column in PATH_COLUMNS:
                    continue
                if column in VOLATILE:
                    value = value is not None
                elif column == "deleted":  # soft delete writes the row's id
                    value = bool(value)
                normal_row[column] = value
            rows.append(normal_row)
        found[table] = sorted(rows, key=repr)
    return found


def iter_object_rows(world: World) -> Iterator[tuple[str, Any]]:
    for name, rows in world.rows.items():
        for row in rows:
            yield name, row
