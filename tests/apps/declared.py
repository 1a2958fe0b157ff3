"""The test apps' declarations (entry points of the process tests)."""

from novalet import app

APPA = app.App(name="appa", object_modules=["tests.apps.appa_objects"],
               migrations="tests.apps:appa_migrations")
APPB = app.App(name="appb", object_modules=["tests.apps.appb_objects"])
APPE = app.App(name="appe", object_modules=["tests.apps.appe_objects"],
               exceptions=["tests.apps.appe_exception"])
#: A host-scoped table (``apph_parts``, by its column ``owner``).
APPH = app.App(name="apph", object_modules=["tests.apps.apph_objects"],
               migrations="tests.apps:apph_migrations",
               host_scoped={"apph_parts": "owner"})
