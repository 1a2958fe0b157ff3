"""``novalet-manage``: database and service administration.

    novalet-manage [--config-file F] db sync [--revision REV]
    novalet-manage db version
"""

from __future__ import annotations


import sys
from collections.abc import Callable, Sequence
from typing import Any

from oslo_config import cfg

from novalet import conf as novalet_conf
from novalet import exception
from novalet.cmd import common

BINARY = "novalet-manage"


def _db_sync(args: Any) -> int:
    from novalet.db import migration

    migration.db_sync(args.revision or "head")
    print("Database is at %s" % migration.db_version())
    return 0


def _db_version(args: Any) -> int:
    from novalet.db import migration

    print(migration.db_version() or "None (not synced)")
    return 0


def _add_commands(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="database schema")
    db_sub = db.add_subparsers(dest="action", required=True)
    sync = db_sub.add_parser("sync", help="upgrade the schema to the newest")
    sync.add_argument("--revision", default=None,
                      help="alembic revision to upgrade to (default: head)")
    sync.set_defaults(func=_db_sync)
    version = db_sub.add_parser("version", help="print the schema revision")
    version.set_defaults(func=_db_version)


_command_opt = cfg.SubCommandOpt("category", title="commands",
                                 handler=_add_commands,
                                 help="what to manage")


def main(argv: Sequence[str] | None = None) -> int:
    CONF = novalet_conf.CONF
    CONF.register_cli_opt(_command_opt)
    try:
        common.setup(argv, prog=BINARY)
    except cfg.Error as e:
        print("%s: %s" % (BINARY, e), file=sys.stderr)
        return 2
    func: Callable[[Any], int] = CONF.category.func
    try:
        return func(CONF.category)
    except exception.NovaletException as e:
        print("%s: %s" % (BINARY, e.message.splitlines()[0]), file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())



