"""``novalet-manage``: database, service and hypervisor administration.

    novalet-manage [--config-file F] db sync [--revision REV] [--app NAME]
    novalet-manage db version          (the core, then one line per app)
    novalet-manage service list [--binary B] [--host H]
    novalet-manage service disable HOST BINARY [--reason R]
    novalet-manage service enable HOST BINARY
    novalet-manage service force-down HOST BINARY [--unset]
    novalet-manage service delete HOST BINARY [--force]
    novalet-manage hypervisor list
    novalet-manage hypervisor show NODE|HOST/NODE
    novalet-manage hypervisor stats
    novalet-manage auth init [--rotate] | retire KEY_ID
    novalet-manage auth host-key HOST --output FILE
    novalet-manage auth rabbitmq HOST [--password P]
    novalet-manage app list            (release, schema revision, objects)

Every ``service``, ``hypervisor`` and ``app`` action takes ``--format
table|json`` (after the action). A failure prints one line on stderr; the exit code says
which kind (``novalet.cmd.exit_codes``): 1 the operation failed (an unknown
host, a refused action), 2 a bad command line or configuration, 3 the
database or broker is unreachable.
``service`` and ``hypervisor`` go through the objects with ``[objects]
indirection`` (default ``direct``); ``db`` always uses the database itself.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

from novalet import conf as novalet_conf
from novalet.cmd import (
    manage_app,
    manage_auth,
    manage_cli,
    manage_hypervisor,
    manage_service,
    output,
)

BINARY = "novalet-manage"

DESCRIPTION = (
    "Administers a novalet deployment with its services' configuration "
    "files: the database schema, the services and their liveness, the "
    "compute nodes and their resources, signing keys and broker users. "
    + novalet_conf.OPTIONS_HELP)
USAGE = "%(prog)s [--config-file PATH] [options] COMMAND ACTION [...]"


def _db_sync(args: Any) -> int:
    from novalet import exception
    from novalet.db import migration

    manage_cli.check_database(novalet_conf.CONF, create=True)
    if args.app and args.app not in migration.lineages():
        raise exception.AppLoadError(
            app=args.app, reason="no loaded app of this name has migrations "
            "(lineages: %s)" % ", ".join(migration.lineages()))
    migration.db_sync(args.revision or "head", app=args.app)
    for name in [args.app] if args.app else migration.lineages():
        if name == migration.CORE:
            print("Database is at %s" % migration.db_version())
        else:
            print("App %s is at %s" % (name, migration.db_version(name)))
    return 0


def _db_version(args: Any) -> int:
    from novalet.db import migration

    # A missing SQLite file is reported as never synced, not created.
    missing = manage_cli.database_file_missing(novalet_conf.CONF)
    if not missing:
        manage_cli.check_database(novalet_conf.CONF)

    def version(name: str) -> str:
        return (None if missing else migration.db_version(name)) or (
            "None (not synced)")

    print(version(migration.CORE))
    for name in migration.lineages()[1:]:
        print("%s: %s" % (name, version(name)))
    return 0


def _format_parent() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--format", dest="output_format", choices=output.FORMATS,
                        default="table",
                        help="table (aligned text, the default) or json "
                             "(for scripts)")
    return parent


def _add_commands(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="the database schema: sync, version")
    db_sub = db.add_subparsers(dest="action", metavar="ACTION")
    db_sub.required = True
    sync = db_sub.add_parser("sync", help="upgrade the schema to the newest")
    sync.add_argument("--revision", default=None,
                      help="alembic revision to upgrade to (default: head)")
    sync.add_argument("--app", default=None,
                      help="migrate only this app's lineage (default: the "
                           "core, then every loaded app)")
    sync.set_defaults(func=_db_sync)
    version = db_sub.add_parser("version", help="print the schema revision")
    version.set_defaults(func=_db_version)
    parents = [_format_parent()]
    manage_service.add_parsers(subparsers, parents)
    manage_hypervisor.add_parsers(subparsers, parents)
    manage_auth.add_parsers(subparsers)
    manage_app.add_parsers(subparsers, parents)


_command_opt = novalet_conf.CommandOpt(
    "category", metavar="COMMAND", title="commands", handler=_add_commands,
    help="what to manage; 'novalet-manage COMMAND --help' lists its actions")


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ``novalet-manage`` command; returns its exit code.

    ``argv`` excludes the program name (default: ``sys.argv[1:]``). Can run
    any number of times in one process; ``CONF`` is left unparsed after.
    """
    CONF = novalet_conf.CONF
    with manage_cli.sub_command(CONF, _command_opt.dest,
                                lambda: CONF.register_cli_opt(_command_opt)):
        code = manage_cli.parse(argv, BINARY, description=DESCRIPTION,
                                usage=USAGE)
        if code is not None:
            return code
        args = CONF.category
        func: Callable[[Any], int] = args.func
        return manage_cli.run(BINARY, func, args)


if __name__ == "__main__":
    sys.exit(main())
