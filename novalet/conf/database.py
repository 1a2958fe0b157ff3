"""[database] options: novalet only sets oslo.db's defaults."""

from __future__ import annotations

from oslo_config import cfg
from oslo_db import options as db_options

DEFAULT_CONNECTION = "sqlite:///$state_path/novalet.sqlite"


def register_opts(conf: cfg.ConfigOpts) -> None:
    db_options.set_defaults(conf, connection=DEFAULT_CONNECTION)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {"database": list(db_options.database_opts)}
