"""[metrics] options: the Prometheus endpoint (``/metrics``, ``/healthz``)."""

from __future__ import annotations

from oslo_config import cfg

group = cfg.OptGroup("metrics", title="Prometheus metrics and health")

opts = [
    cfg.HostAddressOpt("bind_host", default="127.0.0.1",
                       help="Address the metrics endpoint listens on."),
    cfg.PortOpt("bind_port", default=None,
                help="Port of the metrics endpoint (GET /metrics, GET "
                     "/healthz). Unset: no endpoint, no metrics. 0: any free "
                     "port (the one chosen is logged)."),
    cfg.IntOpt("fleet_refresh_interval", default=15, min=1,
               help="The conductor reads the fleet's services and version "
                    "caps from the database at most once per this many "
                    "seconds, however often it is scraped."),
    cfg.IntOpt("health_probe_interval", default=5, min=0,
               help="/healthz probes the broker and the database at most "
                    "once per this many seconds (0: at every request)."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_group(group)
    conf.register_opts(opts, group=group)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {group.name: opts}
