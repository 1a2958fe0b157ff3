"""novalet configuration: the global ``CONF``, every option group, ``parse_args``.

Each option group lives in its own module with ``opts``, ``register_opts(conf)``
and ``list_opts()``. They are registered here, on import of ``novalet.conf``,
and nowhere else. novalet uses oslo.config's global ``cfg.CONF`` because
oslo.messaging registers some of its groups there only.
"""

from __future__ import annotations

from collections.abc import Sequence

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
               epilog: str | None = None) -> None:
    """Parse the command line and config files into ``CONF``.

    ``argv`` excludes the program name (pass ``sys.argv[1:]``); ``epilog``
    ends the ``--help`` text (the command's exit codes).
    """
    CONF(list(argv), project="novalet", prog=prog,
         default_config_files=default_config_files, epilog=epilog)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """All novalet options, for ``oslo-config-generator`` (namespace novalet)."""
    merged: dict[str, list[cfg.Opt]] = {}
    for module in _MODULES:
        for group, group_opts in module.list_opts().items():
            if module is database:
                continue  # oslo.db's own namespace lists these
            merged.setdefault(group, []).extend(group_opts)
    return sorted(merged.items())


__all__ = ["CONF", "parse_args", "list_opts"]
