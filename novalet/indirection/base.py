"""The indirection API interface: where remotable methods run.

Three methods, as in oslo.versionedobjects' ``VersionedObjectIndirectionAPI``:
``object_action``, ``object_class_action_versions`` and
``object_backport_versions``. An implementation is a class registered in the
``novalet.indirection`` entry point namespace, constructed with the
configuration.
"""

from __future__ import annotations

import abc
from typing import Any

from oslo_config import cfg


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
                                     objnamespace: str = "novalet") -> Any:
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
