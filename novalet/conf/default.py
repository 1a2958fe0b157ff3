"""[DEFAULT] options: identity, state, liveness and periodic timing."""

from __future__ import annotations

import os
import socket

from oslo_config import cfg
from oslo_utils import netutils


def _default_state_path() -> str:
    if os.geteuid() == 0:
        return "/var/lib/novalet"
    return os.path.join(os.path.expanduser("~"), ".local", "share", "novalet")


opts = [
    cfg.StrOpt("host", default=socket.gethostname(),
               sample_default="<current_hostname>",
               help="Name of this host; the key of its Service and compute "
                    "node records and its RPC server name."),
    cfg.StrOpt("state_path", default=_default_state_path(),
               sample_default="~/.local/share/novalet (root: /var/lib/novalet)",
               help="Directory where novalet keeps its state, including the "
                    "default SQLite database."),
    cfg.StrOpt("instances_path", default="$state_path/instances",
               help="Directory holding instance disks; the libvirt driver "
                    "reports the disk of the filesystem it is on."),
    cfg.IntOpt("report_interval", default=10, min=1, mutable=True,
               help="Seconds between two heartbeats of a service."),
    cfg.IntOpt("service_down_time", default=60, min=1, mutable=True,
               help="A service is down after this many seconds without a "
                    "heartbeat. Must be larger than report_interval."),
    cfg.StrOpt("servicegroup_driver", default="db", choices=["db", "tooz"],
               help="How services report liveness: 'db' (a heartbeat row "
                    "written through the conductor) or 'tooz' (group "
                    "membership in [servicegroup] backend_url)."),
    cfg.IntOpt("update_resources_interval", default=60, min=1, mutable=True,
               help="Seconds between two runs of the resource tracker."),
    cfg.IntOpt("periodic_fuzzy_delay", default=60, min=0,
               help="Periodic tasks start after a random delay of up to "
                    "this many seconds, so hosts do not all report at once."),
    cfg.IntOpt("startup_timeout", default=60, min=0,
               help="Seconds a service keeps retrying the message broker and "
                    "the database at start before it exits with an error."),
    cfg.ListOpt("apps", default=[], sample_default="<every installed app>",
                help="The apps (entry point group novalet.apps) whose "
                     "objects this service loads and serves, by name; empty: "
                     "every installed app. The app novalet is always loaded."),
    cfg.IntOpt("periodic_interval_max", default=60, min=1,
               help="Longest sleep between two runs of the periodic task "
                    "loop."),
    cfg.IntOpt("periodic_task_stop_timeout", default=30, min=0,
               help="Seconds a stopping service waits for a periodic task "
                    "that is running (the resource audit) before it closes "
                    "what the task uses (the virt driver's connection); "
                    "past it, a warning and the stop goes on."),
    # oslo.utils finds the source address of the default route: a UDP
    # socket's connect() picks a route and sends nothing.
    cfg.IPOpt("my_ip", default=netutils.get_my_ipv4(),
              sample_default="<address of the default route>",
              help="IP address of this host; the compute agent writes it as "
                   "its nodes' host_ip. 127.0.0.1 when there is no default "
                   "route."),
    cfg.IntOpt("reserved_host_memory_mb", default=0, min=0,
               help="Memory (MiB) kept for the host itself: counted in every "
                    "node's memory_mb_used and left out of what instances "
                    "may claim, before the allocation ratio."),
    cfg.IntOpt("reserved_host_disk_mb", default=0, min=0,
               help="Local disk (MiB) kept for the host itself: counted, in "
                    "whole GiB rounded up, in every node's local_gb_used and "
                    "left out of what instances may claim."),
    cfg.IntOpt("reserved_host_cpus", default=0, min=0,
               help="Host CPUs kept for the host itself: counted in every "
                    "node's vcpus_used and left out of what instances may "
                    "claim, before the allocation ratio."),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    conf.register_opts(opts)


def list_opts() -> dict[str, list[cfg.Opt]]:
    return {"DEFAULT": opts}
