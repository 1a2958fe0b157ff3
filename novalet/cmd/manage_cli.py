"""Command-line plumbing of the admin commands (``novalet-manage``,
``novalet-status``): sub-command registration that can run again in one
process, parsing whose errors are one line, and running a command so that
failures are one line on stderr, never a traceback.

Exit codes: 0 done; 2 a bad argument, an unknown record or a refused action
(argparse's own code for a bad command line); 1 anything unexpected (the
traceback is logged at DEBUG: run with ``--debug`` to see it).
"""

from __future__ import annotations

import contextlib
import io
import sys
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from oslo_config import cfg
from oslo_log import log as logging

from novalet import conf as novalet_conf
from novalet import context as novalet_context
from novalet import exception, indirection, objects

LOG = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


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


def parse(argv: Sequence[str] | None, prog: str) -> int | None:
    """Parse the command line and config files into ``CONF``, then set up
    logging and register the objects.

    Returns None when the command should run, else its exit code: 0 after
    ``--help`` or ``--version``, 2 after a bad command line or config file,
    reported as one line on stderr (argparse's usage text is dropped).
    """
    args = list(sys.argv[1:] if argv is None else argv)
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            novalet_conf.parse_args(args, prog=prog)
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
    try:
        objects.register_all()
    except exception.AppLoadError as e:
        error(prog, e.message)
        return EXIT_FAILED
    return None


def run(prog: str, func: Callable[..., int], *args: Any) -> int:
    """``func(*args)``, its errors turned into one line on stderr: exit 2
    for a novalet error (not found, refused, invalid) or a bad option value,
    1 for anything else."""
    try:
        return func(*args)
    except exception.NovaletException as e:
        error(prog, e.message)
        return EXIT_USAGE
    except cfg.Error as e:
        error(prog, str(e))
        return EXIT_USAGE
    except Exception as e:
        LOG.debug("%s failed", prog, exc_info=True)
        error(prog, "unexpected error: %s: %s (run with --debug for the "
                    "traceback)" % (type(e).__name__, first_line(str(e))))
        return EXIT_FAILED


def admin_context(prog: str) -> Any:
    """Install the objects' indirection API (``[objects] indirection``,
    ``direct`` when unset) and return an admin context to call them with."""
    indirection.configure(novalet_conf.CONF, default="direct", binary=prog)
    return novalet_context.get_admin_context()


__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "admin_context", "error",
           "first_line", "parse", "run", "sub_command"]
