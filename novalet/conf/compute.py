"""[compute] options."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("compute", title="Compute agent")

opts = [
    cfg.StrOpt("virt_driver", default="fake", choices=["fake", "libvirt"],
               help="Virt driver the compute agent reads its host through."),
    cfg.StrOpt("topic", default="compute",
               help="RPC topic compute agents listen on (server=host)."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
