"""The core app: novalet's own objects, tables and releases, declared as
any other app is (entry point ``novalet.apps``: ``novalet``). Its releases
are the objects of the core's release map (``novalet.upgrade.releases``);
its errors (``novalet.exception``) cross RPC as any app's declared ones do;
its host-scoped tables are declared as any app's are."""

from __future__ import annotations

from novalet import app
from novalet.db import scope
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
    # A host writes its own services, nodes and instances (and, by the
    # core's own rules, moves an instance along a migration it is an end
    # of); it writes no migration but through those rules. The map lives
    # with those rules, in novalet.db.scope.
    host_scoped=scope.CORE_HOST_SCOPED,
)
