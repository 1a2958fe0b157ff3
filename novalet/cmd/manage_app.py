"""``novalet-manage app list``: the apps this installation loads (``[DEFAULT]
apps``), each with the release its code runs, its schema revision in the
database beside the code's head, and its objects at their versions.

    app list [--format table|json]

JSON: one record per app, the core first, with the keys ``KEYS``:
``name``; ``release`` (the release this code runs, the last of its
``releases``; None for an app without any); ``releases`` (every release it
knows, oldest first); ``schema_revision`` (the database's revision of its
migration lineage; None when not synced) and ``schema_head`` (the code's
newest; both None for an app without tables); ``objects`` (``{name:
version}``, the newest this code has); ``exceptions`` (its modules whose
errors cross RPC as themselves). The database is read for the revisions
only; a missing SQLite file is reported as not synced, never created.
"""

from __future__ import annotations

from typing import Any

from novalet import app
from novalet import conf as novalet_conf
from novalet.cmd import manage_cli, output

#: ``app list`` columns: (JSON key, table header).
COLUMNS = (
    ("name", "App"),
    ("release", "Release"),
    ("schema_revision", "Schema Revision"),
    ("schema_head", "Code Head"),
    ("objects", "Objects"),
)

#: Keys of an app record.
KEYS = ("name", "release", "releases", "schema_revision", "schema_head",
        "objects", "exceptions")


def app_record(loaded: app.App, revision: str | None,
               head: str | None) -> dict[str, Any]:
    """``loaded`` as a plain record with the keys ``KEYS``, in that order."""
    from novalet.objects import codec

    return {
        "name": loaded.name,
        "release": loaded.current_release,
        "releases": list(loaded.releases),
        "schema_revision": revision,
        "schema_head": head,
        "objects": {name: found[0].VERSION
                    for name, found in codec.classes(loaded.name).items()},
        "exceptions": list(loaded.exceptions),
    }


def apps_table(records: list[dict[str, Any]]) -> str:
    """Records as the ``app list`` table (objects as ``Name version``)."""
    rows = []
    for record in records:
        row = [record[key] for key, _header in COLUMNS]
        row[-1] = ", ".join("%s %s" % item for item in record["objects"].items())
        rows.append(row)
    return output.format_table([header for _key, header in COLUMNS], rows)


def list_apps(args: Any) -> int:
    """Print every loaded app (the core first)."""
    from novalet.db import migration

    conf = novalet_conf.CONF
    missing = manage_cli.database_file_missing(conf)
    if not missing:
        manage_cli.check_database(conf)
    lineages = migration.lineages()
    records = []
    for name, loaded in app.loaded().items():
        revision = head = None
        if name in lineages:
            head = migration.head_revision(name)
            revision = None if missing else migration.db_version(name)
        records.append(app_record(loaded, revision, head))
    output.emit(args.output_format, records, apps_table(records))
    return 0


def add_parsers(subparsers: Any, parents: list[Any]) -> None:
    """Add ``app`` and its action to the ``novalet-manage`` parser;
    ``parents`` carry the shared options (``--format``)."""
    parser = subparsers.add_parser("app", help="the apps this installation "
                                               "serves")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    listing = actions.add_parser(
        "list", parents=parents,
        help="each app's release, schema revision and objects")
    listing.set_defaults(func=list_apps)
