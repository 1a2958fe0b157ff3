"""What every novalet command does first, and how it fails."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import exception, objects

LOG = logging.getLogger(__name__)


def setup(argv: Sequence[str] | None, *, prog: str) -> None:
    """Parse the command line and config files, set up logging, register
    the objects."""
    args = list(sys.argv[1:] if argv is None else argv)
    novalet_conf.parse_args(args, prog=prog)
    logging.setup(novalet_conf.CONF, "novalet")
    objects.register_all()


def check_schema() -> None:
    """Raise ``ConfigurationError`` unless the database is at the newest
    migration this code knows."""
    from novalet.db import migration

    current, head = migration.db_version(), migration.head_revision()
    if current != head:
        raise exception.ConfigurationError(
            reason="database schema is at %s, this release needs %s: run "
                   "'novalet-manage db sync'" % (current or "nothing", head))


def fail(binary: str, error: Exception) -> int:
    """Log and print one clear line for ``error``; return exit code 1."""
    message = getattr(error, "message", None) or str(error)
    LOG.error("%s cannot start: %s", binary, message)
    print("%s: cannot start: %s" % (binary, message), file=sys.stderr)
    return 1
