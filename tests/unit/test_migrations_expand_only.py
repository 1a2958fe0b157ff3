"""Within a release, migrations only expand the schema: the previous
release's code must keep working on it during a rolling upgrade."""

from __future__ import annotations

import io
import re

import pytest
from alembic import command

from novalet.db import migration

FORBIDDEN = re.compile(r"\b(DROP|RENAME)\b", re.IGNORECASE)


def _sql(from_rev: str, to_rev: str) -> str:
    config = migration._alembic_config()
    buffer = io.StringIO()
    config.output_buffer = buffer
    config.set_main_option("sqlalchemy.url", "postgresql://")
    command.upgrade(config, "%s:%s" % (from_rev, to_rev), sql=True)
    return buffer.getvalue()


@pytest.mark.parametrize("from_rev,to_rev", [("0001_initial", "0002_release_2"),
                                             ("0002_release_2", "0003_release_3"),
                                             ("0003_release_3", "0004_auth"),
                                             ("0005_deliveries", "0006_recent_deliveries")])
def test_each_release_migration_only_expands(from_rev: str, to_rev: str) -> None:
    sql = _sql(from_rev, to_rev)
    # Statements without alembic's "-- Running upgrade" comment lines.
    code = "\n".join(line for line in sql.splitlines()
                     if not line.lstrip().startswith("--"))
    statements = [s.strip() for s in code.split(";") if s.strip()]
    changes = [s for s in statements if s.upper().startswith("ALTER TABLE")]
    assert changes, sql
    for statement in changes:
        assert not FORBIDDEN.search(statement), statement
        assert "ADD COLUMN" in statement.upper(), statement
        assert "NOT NULL" not in statement.upper(), statement
