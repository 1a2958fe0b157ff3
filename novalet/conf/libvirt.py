"""[libvirt] options for the libvirt virt driver."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("libvirt", title="libvirt virt driver")

opts: list[cfg.Opt] = [
    cfg.StrOpt("connection_uri", default="qemu:///system",
               help="libvirt connection URI; 'test:///default' is libvirt's "
                    "built-in test host."),
    cfg.StrOpt("virt_type", default=None,
               help="Domain type of spawned guests; unset, taken from the "
                    "connection (kvm/qemu for QEMU, test for test://)."),
    cfg.IntOpt("shutdown_timeout", default=60, min=0, mutable=True,
               help="Seconds a clean shutdown (terminate with "
                    "clean_shutdown) waits for the guest to power off after "
                    "the ACPI request before it is destroyed; 0 destroys at "
                    "once. A caller's terminate call waits this long on top "
                    "of rpc_response_timeout."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
