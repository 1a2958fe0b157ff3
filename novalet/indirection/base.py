"""The indirection API interface: where remotable methods run.

Three methods, as in oslo.versionedobjects' ``VersionedObjectIndirectionAPI``:
``object_action``, ``object_class_action_versions`` and
``object_backport_versions``. An implementation is a class registered in the
``novalet.indirection`` entry point namespace, constructed with the
configuration. ``ConductorIndirectionAPI`` is the base of those that call a
conductor, wiring the version negotiation in once.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

from oslo_config import cfg

from novalet import app, upgrade
from novalet.app import CORE
from novalet.objects import versions


class IndirectionAPI(abc.ABC):
    """Base of indirection API implementations."""

    #: True when remotable methods should simply run in this process (the
    #: objects then get no indirection API at all) and this process may use
    #: the database.
    runs_locally: bool = False

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @abc.abstractmethod
    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        """Run ``objinst.objmethod(*args, **kwargs)``; return
        ``(updates, result)``."""

    @abc.abstractmethod
    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any,
                                     objnamespace: str = CORE) -> Any:
        """Run class method ``objname.objmethod`` of the app
        ``objnamespace``; objects in the result come back at
        ``object_versions``."""

    @abc.abstractmethod
    def object_backport_versions(self, context: Any, objinst: Any,
                                 object_versions: dict[str, str]) -> Any:
        """Return ``objinst`` backported to ``object_versions``."""

    def start(self) -> None:  # noqa: B027 (optional hook)
        """Called once when the API is installed."""

    def stop(self) -> None:  # noqa: B027 (optional hook)
        """Called when the API is replaced or the process stops."""


class ConductorIndirectionAPI(IndirectionAPI):
    """Base of the implementations that call a conductor (``rpc``,
    ``inprocess``): each gives its conductor ``client`` (the calls of
    ``ConductorAPI``), and every remotable call goes through one
    ``upgrade.Negotiator`` over it, which lowers what is sent to the
    conductors' caps (``self.caps``: the core's) and reads what comes back.
    ``on_change`` gets each new RPC cap."""

    def __init__(self, conf: cfg.ConfigOpts, client: upgrade.ConductorClient,
                 on_change: Callable[[str | None], None] | None = None) -> None:
        super().__init__(conf)
        self.negotiator = upgrade.for_conductors(conf, client, versions,
                                                 on_change=on_change)
        self.caps = self.negotiator.caps

    def object_action(self, context: Any, objinst: Any, objmethod: str,
                      args: Any, kwargs: Any) -> tuple[dict[str, Any], Any]:
        return self.negotiator.object_action(context, objinst, objmethod,
                                             args, kwargs)

    def object_class_action_versions(self, context: Any, objname: str,
                                     objmethod: str,
                                     object_versions: dict[str, str],
                                     args: Any, kwargs: Any,
                                     objnamespace: str = app.CORE) -> Any:
        return self.negotiator.object_class_action(
            context, objname, objmethod, object_versions, args, kwargs,
            namespace=objnamespace)

    def invalidate_caps(self) -> None:
        """Re-read the conductors' versions at the next call (SIGHUP)."""
        self.negotiator.invalidate()
