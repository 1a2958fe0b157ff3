"""Within a release, migrations only expand the schema: the previous
release's code must keep working on it during a rolling upgrade."""

from __future__ import annotations

import io
import re

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


def test_release_2_migration_only_expands():
    sql = _sql("0001_initial", "0002_release_2")
    statements = [s.strip() for s in sql.split(";") if s.strip()]
    changes = [s for s in statements if s.upper().startswith("ALTER TABLE")]
    assert changes, sql
    for statement in changes:
        assert not FORBIDDEN.search(statement), statement
        assert "ADD COLUMN" in statement.upper(), statement
        assert "NOT NULL" not in statement.upper(), statement
