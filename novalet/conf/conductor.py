"""[conductor] options."""

from __future__ import annotations

import os

from oslo_config import cfg

group = cfg.OptGroup("conductor", title="Conductor service")

opts = [
    cfg.IntOpt("workers", default=os.cpu_count() or 1, min=1,
               sample_default="<number of CPUs>",
               help="Number of conductor worker processes."),
    cfg.StrOpt("topic", default="conductor",
               help="RPC topic the conductor listens on."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
