"""What every novalet command does first, and how it fails."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import exception, objects

LOG = logging.getLogger(__name__)


def setup(argv: Sequence[str] | None, *, prog: str) -> None:
    """Parse the command line and config files, set up logging, register
    the objects."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        novalet_conf.parse_args(args, prog=prog)
    except cfg.Error as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        raise SystemExit(2)
    logging.setup(novalet_conf.CONF, "novalet")
    objects.register_all()


def check_schema() -> None:
    """Raise ``ConfigurationError`` when the database is behind this release.

    A revision this release does not know is a newer release's: migrations
    within a release only expand the schema, so this code keeps working on
    it (a rolling upgrade syncs the database first).
    """
    from novalet.db import migration

    current, head = migration.db_version(), migration.head_revision()
    if current == head:
        return
    if current is not None and not migration.is_known_revision(current):
        LOG.warning("Database schema %s is newer than this release (%s); "
                    "running on it, as expand-only migrations allow",
                    current, head)
        return
    raise exception.ConfigurationError(
        reason="database schema is at %s, this release needs %s: run "
               "'novalet-manage db sync'" % (current or "nothing", head))


def check_service_versions(ctxt: Any) -> None:
    """Raise ``ServiceTooOld`` naming a live service older than the oldest
    release this one supports (it must be upgraded first)."""
    from novalet.objects import service as service_obj

    for svc in objects.ServiceList.get_all(ctxt):
        if svc.version < service_obj.OLDEST_SUPPORTED_SERVICE_VERSION:
            raise exception.ServiceTooOld(
                binary=svc.binary, host=svc.host, version=svc.version,
                minimum=service_obj.OLDEST_SUPPORTED_SERVICE_VERSION)


def fail(binary: str, error: Exception) -> int:
    """Log and print one clear line for ``error``; return exit code 1."""
    message = getattr(error, "message", None) or str(error)
    LOG.error("%s cannot start: %s", binary, message)
    print("%s: cannot start: %s" % (binary, message), file=sys.stderr)
    return 1
