"""novalet configuration: the global ``CONF``, every option group, ``parse_args``.

Each option group lives in its own module with ``opts``, ``register_opts(conf)``
and ``list_opts()``. They are registered here, on import of ``novalet.conf``,
and nowhere else. novalet uses oslo.config's global ``cfg.CONF`` because
oslo.messaging registers some of its groups there only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import oslo_messaging
from oslo_config import cfg
from oslo_log import log as logging
from oslo_messaging import opts as messaging_opts

import novalet  # noqa: F401  (selects the threading backend first)
from novalet.conf import (
    auth,
    compute,
    conductor,
    database,
    default,
    fake,
    libvirt,
    metrics,
    objects,
    servicegroup,
    upgrade_levels,
)

CONF = cfg.CONF

_MODULES = (default, database, objects, conductor, compute, fake, libvirt,
            servicegroup, upgrade_levels, metrics, auth)

DEFAULT_TRANSPORT_URL = "fake://"

#: How a program's ``--help`` description ends: what its options (all
#: oslo.config's and oslo.log's) are for.
OPTIONS_HELP = ("Its options say which configuration files to read "
                "(--config-file, --config-dir: oslo.config) and how to log "
                "(--debug, --log-file and the rest: oslo.log); everything "
                "else is set in the configuration files.")


def _register_library_defaults(conf: cfg.ConfigOpts) -> None:
    # oslo.messaging owns transport_url and rpc_response_timeout; it registers
    # them lazily. Registering its own (equal) option objects early lets us
    # set novalet's defaults; its later registration is then a no-op.
    oslo_messaging.set_transport_defaults("novalet")
    for group, group_opts in messaging_opts.list_opts():
        if group in (None, "oslo_messaging_rabbit"):
            conf.register_opts(group_opts, group=group)
    conf.set_default("transport_url", DEFAULT_TRANSPORT_URL)
    # Reconnect to a restarted broker every second rather than backing off
    # to 30 s: heartbeats must resume within two report intervals.
    conf.set_default("rabbit_retry_backoff", 0, group="oslo_messaging_rabbit")
    logging.register_options(conf)
    logging.set_defaults(default_log_levels=logging.get_default_log_levels() + [
        "alembic=WARN", "stevedore=WARN", "oslo_service=WARN",
        "cotyledon=WARN", "oslo_db=WARN"])


for _module in _MODULES:
    _module.register_opts(CONF)
_register_library_defaults(CONF)


def set_lib_defaults() -> None:
    """novalet's defaults for options other libraries own, set on the option
    objects themselves so that ``oslo-config-generator`` shows them too
    (entry point ``oslo.config.opts.defaults``)."""
    from oslo_db import options as db_options

    from novalet.rpc import internals

    # oslo.messaging offers no public setter for transport_url's default.
    cfg.set_defaults(internals.transport_opts(),
                     transport_url=DEFAULT_TRANSPORT_URL)
    cfg.set_defaults(db_options.database_opts,
                     connection=database.DEFAULT_CONNECTION)


def parse_args(argv: Sequence[str], *, prog: str | None = None,
               default_config_files: list[str] | None = None,
               epilog: str | None = None, description: str | None = None,
               usage: str | None = None) -> None:
    """Parse the command line and config files into ``CONF``.

    ``argv`` excludes the program name (pass ``sys.argv[1:]``). The
    ``--help`` text opens with ``usage`` (``%(prog)s`` is the program; by
    default argparse lists every option) and ``description`` (what the
    program does), and ends with ``epilog`` (the command's exit codes).
    """
    CONF(list(argv), project="novalet", prog=prog,
         default_config_files=default_config_files, epilog=epilog,
         description=description, usage=usage)


class CommandOpt(cfg.SubCommandOpt):
    """A command line's sub-command (``novalet-manage db ...``) listed in
    ``--help`` under ``title`` before the options (oslo.config's own
    sub-command puts it after the ~20 logging options oslo.log registers),
    and named ``metavar`` alike in the usage, the help and the error for a
    missing one. ``dest`` is the ``CONF`` attribute that holds the parsed
    sub-command's namespace, as with ``cfg.SubCommandOpt``."""

    def __init__(self, name: str, *, metavar: str, title: str,
                 handler: Callable[[Any], None], dest: str | None = None,
                 help: str | None = None) -> None:
        super().__init__(name, dest=dest, handler=handler, title=title,
                         help=help)
        self.metavar = metavar

    def _add_to_cli(self, parser: Any, group: Any = None) -> None:
        # oslo.config calls this (a private hook) to put the option on its
        # argparse parser. Without a title argparse keeps the sub-commands
        # among the positional arguments, the group it prints first; that
        # group takes this option's title. The sub-parsers' prog is the
        # program's name, not the custom usage line argparse would use.
        dest = self.dest if group is None else group.name + "_" + self.dest
        subparsers = parser.add_subparsers(dest=dest, metavar=self.metavar,
                                           help=self.help, prog=parser.prog)
        subparsers.required = True
        parser._positionals.title = self.title
        if self.handler is not None:
            self.handler(subparsers)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """All novalet options, for ``oslo-config-generator`` (namespace novalet)."""
    merged: dict[str, list[cfg.Opt]] = {}
    for module in _MODULES:
        for group, group_opts in module.list_opts().items():
            if module is database:
                continue  # oslo.db's own namespace lists these
            merged.setdefault(group, []).extend(group_opts)
    return sorted(merged.items())


__all__ = ["CONF", "CommandOpt", "parse_args", "list_opts"]
