"""[compute] options."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("compute", title="Compute agent")

opts = [
    cfg.StrOpt("virt_driver", default="fake", choices=["fake", "libvirt"],
               help="Virt driver the compute agent reads its host through."),
    cfg.StrOpt("topic", default="compute",
               help="RPC topic compute agents listen on (server=host)."),
    cfg.FloatOpt("cpu_allocation_ratio", default=4.0, min=0.0, mutable=True,
                 help="vCPUs that may be claimed per physical CPU (not "
                      "reserved); must be greater than 0."),
    cfg.FloatOpt("ram_allocation_ratio", default=1.0, min=0.0, mutable=True,
                 help="Memory that may be claimed per MiB of host memory "
                      "(not reserved); must be greater than 0."),
    cfg.FloatOpt("disk_allocation_ratio", default=1.0, min=0.0, mutable=True,
                 help="Disk that may be claimed per GiB of local disk (not "
                      "reserved); must be greater than 0."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
