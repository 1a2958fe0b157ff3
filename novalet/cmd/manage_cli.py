"""Command-line plumbing of the admin commands (``novalet-manage``,
``novalet-status``): sub-command registration that can run again in one
process, parsing whose errors are one line, and running a command so that
failures are one line on stderr, never a traceback.

Exit codes (``novalet.cmd.exit_codes``): 0 done; 1 the operation failed
(an unknown record, a refused action, a database never synced, anything
unexpected: its traceback is logged at DEBUG, run with ``--debug`` to see it); 2 a bad command line,
config file or option value (argparse's own code); 3 the database or the
broker is unreachable.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import context as novalet_context
from novalet import exception, indirection, logs, objects
from novalet.cmd import exit_codes

LOG = logging.getLogger(__name__)

EXIT_OK = exit_codes.OK
EXIT_FAILED = exit_codes.FAILED
EXIT_USAGE = exit_codes.USAGE
EXIT_UNREACHABLE = exit_codes.UNREACHABLE


def first_line(text: str) -> str:
    """The first non-blank line of ``text`` (stripped), or ``text``."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def error(prog: str, message: str) -> None:
    """Print ``prog: message`` (its first line only) on stderr."""
    print("%s: %s" % (prog, first_line(message)), file=sys.stderr)


@contextlib.contextmanager
def sub_command(conf: cfg.ConfigOpts, dest: str,
                register: Callable[[], object]) -> Iterator[None]:
    """Run ``register`` (which registers the CLI sub-command option
    ``dest``) for the duration of the block, and unregister it after, so a
    second ``main()`` in the same process can register it again (another
    command's sub-command option would otherwise clash with it).

    CLI options can only change on an unparsed ``ConfigOpts``: ``conf`` is
    cleared before and after (as parsing does anyway; overrides and defaults
    stay). Parse it again to use it after the block.
    """
    conf.clear()
    register()
    try:
        yield
    finally:
        conf.clear()
        conf.unregister_opt(cfg.SubCommandOpt(dest))


def _argparse_error(captured: str) -> str:
    lines = [line.strip() for line in captured.splitlines() if line.strip()]
    for line in reversed(lines):
        if ": error: " in line:
            return line
    return lines[-1] if lines else "invalid arguments"


def parse(argv: Sequence[str] | None, prog: str,
          epilog: str = exit_codes.HELP, *, description: str | None = None,
          usage: str | None = None) -> int | None:
    """Parse the command line and config files into ``CONF``, then set up
    logging and register the objects. ``description`` and ``usage`` open
    the ``--help`` text (``novalet.conf.parse_args``).

    Returns None when the command should run, else its exit code: 0 after
    ``--help`` or ``--version``, 2 after a bad command line or config file,
    reported as one line on stderr (argparse's usage text is dropped).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    # Log records go to stderr (not oslo.log's default, stdout): stdout is
    # the command's output, e.g. --format json.
    novalet_conf.CONF.set_default("use_stderr", True)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            novalet_conf.parse_args(args, prog=prog, epilog=epilog,
                                    description=description, usage=usage)
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
        if code == 0:
            sys.stderr.write(captured.getvalue())
            return EXIT_OK
        line = _argparse_error(captured.getvalue())
        command = line.split(": error: ")[0] if ": error: " in line else prog
        print("%s (see %s --help)" % (line, command), file=sys.stderr)
        return EXIT_USAGE
    except cfg.Error as e:
        error(prog, str(e))
        return EXIT_USAGE
    sys.stderr.write(captured.getvalue())
    logging.setup(novalet_conf.CONF, "novalet")
    logs.install()
    try:
        objects.register_all()
    except exception.AppLoadError as e:
        error(prog, e.message)
        return EXIT_FAILED
    return None


def run(prog: str, func: Callable[..., int], *args: Any,
        failed: int = EXIT_FAILED) -> int:
    """``func(*args)``, its errors turned into one line on stderr and an exit
    code: 3 for an unreachable database or broker, 2 for a bad option value
    or a configuration that cannot work, ``failed`` (1) for any other novalet
    error (not found, refused, invalid) and anything unexpected."""
    try:
        return func(*args)
    except (exception.NovaletException, cfg.Error) as e:
        error(prog, getattr(e, "message", None) or str(e))
        code = exit_codes.for_error(e)
        return failed if code == EXIT_FAILED else code
    except Exception as e:
        LOG.debug("%s failed", prog, exc_info=True)
        error(prog, "unexpected error: %s: %s (run with --debug for the "
                    "traceback)" % (type(e).__name__, first_line(str(e))))
        return failed


def database_url(conf: cfg.ConfigOpts) -> str:
    """``[database] connection`` as it may be printed (no password, in the
    user part or the query: ``novalet.db.engine.masked_url``)."""
    from novalet.db import engine

    return engine.masked_url(conf.database.connection)


def database_file_missing(conf: cfg.ConfigOpts) -> bool:
    """Whether ``[database] connection`` names an SQLite file that does not
    exist (opening it would create an empty one)."""
    from sqlalchemy.engine import make_url

    try:
        url = make_url(conf.database.connection)
    except Exception:
        return False  # reaching it reports the bad URL
    path = url.database
    if url.get_backend_name() != "sqlite" or not path:
        return False
    return (path != ":memory:" and not path.startswith("file:")
            and not os.path.exists(path))


def check_database(conf: cfg.ConfigOpts, *, create: bool = False) -> None:
    """One attempt to reach ``[database] connection``; raises
    ``DatabaseUnavailable`` at once (oslo.db itself would retry
    ``[database] max_retries`` times, ``retry_interval`` apart, before
    failing: minutes for an admin command).

    Only a command that writes the schema (``create``: ``db sync``) may
    create an SQLite file; for any other one a missing file is
    ``SchemaMissing`` and nothing is created.
    """
    from novalet.db import engine as db_engine

    if not create and database_file_missing(conf):
        raise exception.SchemaMissing(url=database_url(conf))
    db_engine.check_connection(conf, 0)


def check_schema_present(conf: cfg.ConfigOpts) -> None:
    """Raise ``SchemaMissing`` when the database was never synced (the
    commands that read it would fail on the first missing table)."""
    from novalet.db import migration

    if migration.db_version() is None:
        raise exception.SchemaMissing(url=database_url(conf))


def admin_context(prog: str) -> Any:
    """Install the objects' indirection API (``[objects] indirection``,
    ``direct`` when unset) and return an admin context to call them with.
    What the calls need is reached once first: the database (``direct``,
    ``inprocess``: an outage is exit 3 at once, not after oslo.db's
    retries) or the broker (``rpc``: oslo.messaging would retry connecting
    for ever)."""
    CONF = novalet_conf.CONF
    indirection.configure(CONF, default="direct", binary=prog)
    if (CONF.objects.indirection or "direct") in ("direct", "inprocess"):
        check_database(CONF)
        check_schema_present(CONF)
    else:
        from novalet import rpc

        rpc.check_broker(CONF, 0)  # one round: the call itself would retry
    return novalet_context.get_admin_context()


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_UNREACHABLE", "EXIT_USAGE",
           "admin_context", "check_database", "check_schema_present",
           "database_file_missing", "database_url", "error", "first_line", "parse",
           "run", "sub_command"]
