"""[servicegroup] options for the tooz servicegroup driver."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("servicegroup", title="Service group membership")

opts: list[cfg.Opt] = [
    cfg.StrOpt("backend_url", default="redis://127.0.0.1:6379",
               help="tooz coordination backend used when "
                    "servicegroup_driver is 'tooz'."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
