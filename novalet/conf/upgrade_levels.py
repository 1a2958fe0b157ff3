"""[upgrade_levels] options: RPC version caps during rolling upgrades."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("upgrade_levels", title="RPC version caps")

opts = [
    cfg.StrOpt("conductor", default="auto", mutable=True,
               help="Highest conductor RPC API version to send: 'auto' (from "
                    "the oldest running conductor), a release name, or a "
                    "version such as '1.0'."),
    cfg.StrOpt("compute", default="auto", mutable=True,
               help="Highest compute RPC API version to send: 'auto' (from "
                    "the oldest running compute), a release name, or a "
                    "version such as '1.0'."),
    cfg.DictOpt("apps", default={}, mutable=True,
                help="Per app, the objects of which release to send to the "
                     "conductors, as app:release pairs (e.g. "
                     "'leases:1'); an app not named here is 'auto': the "
                     "oldest release of it that a running conductor "
                     "records."),
    cfg.IntOpt("refresh_interval", default=60, min=1, mutable=True,
               help="Seconds an 'auto' cap is kept before the services' "
                    "versions are read again (SIGHUP re-reads at once)."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
