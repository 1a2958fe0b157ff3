"""What a service checks before it starts."""

from __future__ import annotations

import pytest

from novalet import context, exception, objects
from novalet.cmd import common
from novalet.db import migration


@pytest.fixture
def stamped(database):
    """Lets a test change the recorded schema revision; restores it."""
    yield database
    database.query("DELETE FROM alembic_version")
    database.query("INSERT INTO alembic_version (version_num) VALUES (:v)",
                   v=migration.head_revision())


def test_schema_behind_is_refused(stamped):
    stamped.query("DELETE FROM alembic_version")
    with pytest.raises(exception.SchemaNotCurrent) as info:
        common.check_schema()
    assert "novalet-manage db sync" in info.value.message


def test_schema_of_a_newer_release_is_accepted(stamped, caplog):
    stamped.query("UPDATE alembic_version SET version_num = '9999_future'")
    common.check_schema()
    assert "newer than this release" in caplog.text


def test_services_older_than_supported_are_refused(sqlite_db):
    ctxt = context.get_admin_context()
    objects.Service(ctxt, host="new", binary="novalet-compute").create()
    common.check_service_versions(ctxt)
    objects.Service(ctxt, host="ancient", binary="novalet-compute",
                    version=0).create()
    with pytest.raises(exception.ServiceTooOld) as info:
        common.check_service_versions(ctxt)
    assert "ancient" in info.value.message
