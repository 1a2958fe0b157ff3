"""novalet.db.engine's transaction modes, on every backend."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from novalet import context, exception
from novalet.db import compute_nodes as db_nodes
from novalet.db import engine as db_engine


def _node_values(**extra):
    return dict(host="h1", hypervisor_hostname="n1", vcpus=1, memory_mb=1,
                local_gb=1, vcpus_used=0, memory_mb_used=0, local_gb_used=0,
                hypervisor_type="fake", hypervisor_version=1,
                cpu_info="{}", uuid="6f1d2c1e-8d2a-4a59-9a3e-2b0b1c3d4e5f",
                **extra)


def test_a_connection_writer_commits_alone_and_joins_an_outer_transaction(database):
    """``compute_node_update`` runs on a connection, not an ORM session: on
    its own it commits; inside a caller's writer transaction it is part of
    it (rolled back with it)."""
    ctxt = context.get_admin_context()
    node_id = db_nodes.compute_node_create(ctxt, _node_values()).id
    db_nodes.compute_node_update(ctxt, node_id, {"memory_mb_used": 7})
    assert database.query("SELECT memory_mb_used FROM compute_nodes")[0][0] == 7

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        with db_engine._get_manager().writer.using(ctxt):
            db_nodes.compute_node_update(ctxt, node_id, {"memory_mb_used": 8})
            assert ctxt.session.execute(sa.text(
                "SELECT memory_mb_used FROM compute_nodes")).scalar() == 8
            raise Abort()
    assert database.query("SELECT memory_mb_used FROM compute_nodes")[0][0] == 7
    with pytest.raises(exception.ComputeHostNotFound):
        db_nodes.compute_node_update(ctxt, node_id + 1, {"memory_mb_used": 9})


def test_apps_and_the_table_modules_share_one_transaction_api():
    """``novalet.db.reader`` / ``writer`` are the engine's own: one API."""
    from novalet import db

    assert db.reader is db_engine.reader
    assert db.writer is db_engine.writer


def test_the_decorator_finds_the_context_after_self_or_cls_or_by_name(sqlite_db):
    from novalet import db

    class Widgets:
        @db.reader
        def count(self, context):
            return context.session.execute(sa.text(
                "SELECT COUNT(*) FROM services")).scalar()

        @classmethod
        @db.writer
        def touch(cls, context, value):
            context.session.execute(sa.text(
                "UPDATE services SET report_count = :v"), {"v": value})
            return value

    ctxt = context.get_admin_context()
    assert Widgets().count(ctxt) == 0
    assert Widgets().count(context=ctxt) == 0
    assert Widgets.touch(ctxt, 3) == 3
    assert Widgets.touch(context=ctxt, value=4) == 4


def test_throwing_the_switch_imports_no_database_code():
    """``import novalet.db`` (a compute blocking its database use) loads
    the engine only when ``reader`` or ``writer`` is first used."""
    import subprocess
    import sys

    script = ("import sys, novalet.db as db\n"
              "db.block_access('x')\n"
              "print('novalet.db.engine' in sys.modules)\n"
              "db.reader\n"
              "print('novalet.db.engine' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False", "True"]
