"""What an app author gets from the base (issue 23, item 5): an app's
namespace said once (``App.register``), ``novalet.objects.base.ObjectListBase``,
the row helper (``obj_from_db`` / ``_from_db_object``: context set, changes
reset), and ``novalet.testing.check_no_pending_changes`` (novalet's own
``create()`` and ``save()`` pass it on every path)."""

from __future__ import annotations

import types

import pytest
from oslo_versionedobjects import base as ovo_base

from novalet import app, context, exception, objects, testing
from novalet.objects import base, codec
from tests import matrix
from tests.conftest import calls_through


@pytest.fixture(autouse=True)
def _isolated():
    from tests.apps import isolated_registry

    with isolated_registry("tests.apps.appl_objects", "tests.apps.ovo_library"):
        yield


def _appl():
    # The library holds the name Widget in oslo.versionedobjects' registry.
    import tests.apps.ovo_library  # noqa: F401

    objects.register_all(["novalet"])
    import tests.apps.appl_objects as appl

    app.register(appl.APP)
    return appl


ROWS = [{"id": 1, "name": " w1 ", "widget_size": 3},
        {"id": 2, "name": "w2", "widget_size": 5}]


def test_register_says_the_namespace_once():
    appl = _appl()
    for cls in (appl.Gear, appl.Widget, appl.WidgetList):
        assert cls.OBJ_PROJECT_NAMESPACE == "appl"
        assert codec.class_for(cls.obj_name(), "1.0", "appl") is cls
    prim = appl.Widget(id=1, name="n", size=1, gear=None).obj_to_primitive()
    assert prim["novalet_object.namespace"] == "appl"
    assert set(codec.classes("appl")) == {"Gear", "Widget", "WidgetList"}


def test_register_refuses_another_namespace_and_non_objects():
    _appl()
    declared = app.App(name="appz")

    class Other(base.NovaletObject):
        OBJ_PROJECT_NAMESPACE = "appy"
        VERSION = "1.0"
        fields = {"x": objects_fields().IntegerField()}

    with pytest.raises(exception.AppLoadError,
                       match="appz.*Other sets OBJ_PROJECT_NAMESPACE = 'appy'"):
        declared.register(Other)
    assert not codec.is_registered("Other", "appy")
    assert not codec.is_registered("Other", "appz")
    with pytest.raises(exception.AppLoadError, match="takes a NovaletObject class"):
        declared.register(types.SimpleNamespace)

    class Library(ovo_base.VersionedObject):  # the library's, not novalet's
        VERSION = "1.0"

    with pytest.raises(exception.AppLoadError, match="takes a NovaletObject class"):
        declared.register(Library)
    assert not codec.is_registered("Library", "appz")


def objects_fields():
    from novalet.objects import fields

    return fields


def test_an_object_from_a_row_has_the_context_and_no_changes():
    appl = _appl()
    ctxt = context.get_admin_context()
    widget = appl.Widget.obj_from_db(ctxt, types.SimpleNamespace(**ROWS[0]))
    assert type(widget) is appl.Widget and widget._context is ctxt
    # obj_db_columns renames, obj_db_to_field converts, an extra field is
    # the object's own (a nested object, whose changes are reset too).
    assert (widget.id, widget.name, widget.size, widget.gear.teeth) == (1, "w1", 3, 6)
    assert widget.obj_what_changed() == set()
    assert widget.gear.obj_what_changed() == set()
    testing.check_no_pending_changes(widget)


def test_a_list_from_rows_is_an_object_list_base_in_its_namespace():
    appl = _appl()
    ctxt = context.get_admin_context()
    listed = appl.WidgetList.obj_from_db(ctxt, [types.SimpleNamespace(**r) for r in ROWS])
    assert isinstance(listed, base.ObjectListBase)
    # Its items are appl's Widget, not the one the library holds the name
    # of in oslo.versionedobjects' registry (whose obj_make_list takes that).
    assert [type(w) for w in listed] == [appl.Widget, appl.Widget]
    assert [(w.name, w.gear.teeth) for w in listed] == [("w1", 6), ("w2", 10)]
    assert listed._context is ctxt
    testing.check_no_pending_changes(listed)


@pytest.mark.parametrize("path", ["local", "inprocess", "fakerpc"])
def test_a_list_class_method_over_each_path(path, conf, sqlite_db):
    appl = _appl()
    with calls_through(conf, path):
        ctxt = context.get_admin_context()
        listed = appl.WidgetList.from_rows(ctxt, ROWS)
        assert type(listed) is appl.WidgetList
        assert isinstance(listed, base.ObjectListBase)
        assert [type(w) for w in listed] == [appl.Widget, appl.Widget]
        assert [(w.id, w.name, w.size, w.gear.teeth) for w in listed] == [
            (1, "w1", 3, 6), (2, "w2", 5, 10)]
        testing.check_no_pending_changes(listed)
        widget = listed[0]
        widget.grow(1)
        testing.check_no_pending_changes(widget)
        widget.grow_and_forget(1)  # the conductor's pending change comes back
        assert widget.size == 5
        with pytest.raises(AssertionError, match=r"Widget has pending changes: Widget\.size"):
            testing.check_no_pending_changes(widget)


def test_check_no_pending_changes_names_nested_fields():
    appl = _appl()
    widget = appl.Widget.obj_from_db(None, types.SimpleNamespace(**ROWS[1]))
    widget.gear.teeth = 1
    widget.name = "x"
    with pytest.raises(AssertionError,
                       match=r"Widget has pending changes: Widget\.gear\.teeth, Widget\.name"):
        testing.check_no_pending_changes(widget)
    with pytest.raises(TypeError, match="takes an object, not dict"):
        testing.check_no_pending_changes({})


def test_the_core_uses_the_same_base():
    objects.register_all(["novalet"])
    lists = [cls for cls in matrix.registered_classes() if cls.obj_name().endswith("List")]
    assert len(lists) == 6
    assert all(issubclass(cls, base.ObjectListBase) for cls in lists), lists
    # The mixin's name for the row helper (release 3) is the one helper.
    assert base.NovaletPersistentObject._from_db_object is base.NovaletObject._from_db_object


def _creatable():
    objects.register_all(["novalet"])
    return [m.cls for m in matrix.remotable_methods()
            if m.name == "create" and not m.is_class]


@pytest.mark.parametrize("cls_name", ["ComputeNode", "Instance", "Migration", "Service"])
def test_the_cores_create_and_save_leave_no_pending_changes(cls_name, path):
    [cls] = [c for c in _creatable() if c.obj_name() == cls_name]
    ctxt = context.get_admin_context()
    obj = matrix.make_object(cls, matrix.NEW, ctxt)
    obj.create()
    testing.check_no_pending_changes(obj)
    for name in matrix.settable_fields(cls):
        if name != "uuid":
            setattr(obj, name, matrix.value_for(cls, name, cls.fields[name], 0))
    assert obj.obj_what_changed()
    obj.save()
    testing.check_no_pending_changes(obj)
