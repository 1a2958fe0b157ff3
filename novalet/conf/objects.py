"""[objects] options: how remotable methods reach the database."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("objects", title="Versioned objects")

opts: list[cfg.Opt] = [
    cfg.StrOpt("indirection", default=None,
               sample_default="direct (conductor, manage), rpc (compute)",
               help="How remotable methods run: 'direct' (in this process, "
                    "against the database), 'rpc' (in the conductor, over "
                    "oslo.messaging) or 'inprocess' (a conductor inside this "
                    "process). Any name in the 'novalet.indirection' entry "
                    "point namespace works. Unset, each command picks its "
                    "own default."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
