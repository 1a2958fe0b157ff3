"""The core app: novalet's own objects, tables and releases, declared as
any other app is (entry point ``novalet.apps``: ``novalet``). Its releases
are the objects of the core's release map (``novalet.upgrade.releases``);
its errors (``novalet.exception``) cross RPC as any app's declared ones do."""

from __future__ import annotations

from novalet import app
from novalet.upgrade import releases

APP = app.App(
    name="novalet",
    object_modules=[
        "novalet.objects.pci_device_pool",
        "novalet.objects.monitor_metric",
        "novalet.objects.service",
        "novalet.objects.compute_node",
        "novalet.objects.instance",
        "novalet.objects.migration",
    ],
    migrations="novalet.db:migrations",
    releases=releases.object_versions_by_release(),
    exceptions=["novalet.exception"],
)
