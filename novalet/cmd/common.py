"""What every novalet command does first, and how it fails."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import exception, logs, objects
from novalet.cmd import exit_codes, manage_cli

LOG = logging.getLogger(__name__)


def setup(argv: Sequence[str] | None, *, prog: str,
          description: str | None = None, usage: str | None = None) -> None:
    """Parse the command line and config files, set up logging, register
    the objects. ``description`` and ``usage`` open the ``--help`` text."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        novalet_conf.parse_args(args, prog=prog, epilog=exit_codes.HELP,
                                description=description, usage=usage)
    except cfg.Error as e:
        print("%s: %s" % (prog, e), file=sys.stderr)
        raise SystemExit(exit_codes.USAGE)
    CONF = novalet_conf.CONF
    host = CONF.host.replace("%", "%%")
    # Every line names this host and the request it belongs to.
    CONF.set_default(
        "logging_context_format_string",
        "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s "
        "[" + host + "] [%(global_request_id)s %(request_id)s "
        "%(user_identity)s] %(instance)s%(message)s")
    CONF.set_default(
        "logging_default_format_string",
        "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s "
        "[" + host + "] [-] %(instance)s%(message)s")
    if CONF.log_file:
        directory = os.path.dirname(os.path.abspath(
            os.path.join(CONF.log_dir or "", CONF.log_file)))
        os.makedirs(directory, exist_ok=True)
    logging.setup(CONF, "novalet")
    # Caller text escaped to one line; oslo.messaging's floods cut down.
    logs.install()
    try:
        objects.register_all()
    except exception.AppLoadError as e:
        raise SystemExit(fail(prog, e))


class _VersionInfo:
    """What the Guru Meditation report prints as the product version."""

    def vendor_string(self) -> str:
        return "novalet"

    def product_string(self) -> str:
        return "novalet"

    def version_string_with_package(self) -> str:
        from importlib import metadata

        try:
            return metadata.version("novalet")
        except metadata.PackageNotFoundError:
            return "unknown"


def setup_guru_meditation(binary: str) -> None:
    """SIGUSR2 prints a Guru Meditation report (threads, config, ...)."""
    from oslo_reports import guru_meditation_report as gmr
    from oslo_reports import opts as gmr_opts

    gmr_opts.set_defaults(novalet_conf.CONF)
    gmr.TextGuruMeditation.setup_autorun(_VersionInfo(), service_name=binary,
                                         conf=novalet_conf.CONF)


def check_schema() -> None:
    """Raise ``SchemaNotCurrent`` when the database is behind this release.

    A revision this release does not know is a newer release's: migrations
    within a release only expand the schema, so this code keeps working on
    it (a rolling upgrade syncs the database first).
    """
    from novalet.db import migration

    for app in migration.lineages():
        what = "database schema" if app == migration.CORE else (
            "app %s's schema" % app)
        current, head = migration.db_version(app), migration.head_revision(app)
        if current == head:
            continue
        if current is not None and not migration.is_known_revision(current, app):
            LOG.warning("The %s (%s) is newer than this release (%s); running "
                        "on it, as expand-only migrations allow",
                        what, current, head)
            continue
        raise exception.SchemaNotCurrent(what=what, current=current or "nothing",
                                         head=head)


def check_service_versions(ctxt: Any) -> None:
    """Raise ``ServiceTooOld`` naming a live service older than the oldest
    release this one supports (it must be upgraded first)."""
    from novalet.upgrade import releases

    for svc in objects.ServiceList.get_all(ctxt):
        if svc.version < releases.OLDEST_SUPPORTED_SERVICE_VERSION:
            raise exception.ServiceTooOld(
                binary=svc.binary, host=svc.host, version=svc.version,
                minimum=releases.OLDEST_SUPPORTED_SERVICE_VERSION)


def fail(binary: str, error: Exception) -> int:
    """Log and print one clear line for ``error``; return its exit code
    (``novalet.cmd.exit_codes``: 3 for an unreachable database or broker,
    2 for a configuration that cannot work, else 1)."""
    message = getattr(error, "message", None) or str(error)
    if isinstance(error, (exception.NovaletException, cfg.Error)):
        LOG.error("%s cannot start: %s", binary, message)
    else:
        message = "%s: %s" % (type(error).__name__, message)
        LOG.error("%s cannot start: %s", binary, message, exc_info=error)
    print("%s: cannot start: %s" % (binary, manage_cli.first_line(message)),
          file=sys.stderr)
    return exit_codes.for_error(error)

