"""An oslo.versionedobjects library in the same process, os-vif style: its
own base class and namespace, registered on the library's base registry,
with a class named as the test apps' Widget."""

from __future__ import annotations

from oslo_versionedobjects import base, fields


class LibraryObject(base.VersionedObject):
    OBJ_PROJECT_NAMESPACE = "os_vif"


@base.VersionedObjectRegistry.register
class Widget(LibraryObject):
    VERSION = "1.3"
    fields = {"address": fields.StringField()}
