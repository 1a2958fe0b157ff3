"""[fake] options for the fake virt driver (many simulated nodes)."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("fake", title="Fake virt driver")

opts: list[cfg.Opt] = [
    cfg.IntOpt("nodes", default=1, min=1,
               help="How many nodes the fake driver reports."),
    cfg.IntOpt("vcpus", default=16, min=1, help="vCPUs of each fake node."),
    cfg.IntOpt("memory_mb", default=32768, min=1,
               help="Memory of each fake node, in MiB."),
    cfg.IntOpt("local_gb", default=1024, min=1,
               help="Local disk of each fake node, in GiB."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
