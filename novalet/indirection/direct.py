"""``direct``: remotable methods run in this process against the database.

Installing it leaves the objects without an indirection API, so
``@remotable`` calls the method itself. Its three methods, called
explicitly, dispatch through the conductor's dispatcher in this process (no
serialization), with the same remotable-only rule.
"""

from __future__ import annotations

from typing import Any

from oslo_config import cfg

from novalet.app import CORE
from novalet.conductor import manager
from novalet.indirection import base


class DirectIndirectionAPI(base.IndirectionAPI):
    runs_locally = True

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        super().__init__(conf)
        self.manager = manager.ConductorManager(conf)

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        return self.manager.object_action(context, objinst, objmethod, args,
                                          kwargs)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any,
                                     objnamespace: str = CORE) -> Any:
        return self.manager.object_class_action_versions(
            context, objname, objmethod, object_versions, args, kwargs,
            objnamespace=objnamespace)

    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        return self.manager.object_backport_versions(context, objinst,
                                                     object_versions)
