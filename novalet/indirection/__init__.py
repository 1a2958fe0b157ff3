"""The pluggable indirection API: where remotable methods run.

``configure(conf)`` loads the implementation named by ``[objects]
indirection`` from the ``novalet.indirection`` entry point namespace
(``direct``, ``rpc``, ``inprocess`` or a third party's) and installs it for
every novalet object in this process. Every service entry point calls it
once, at start; nothing does at import.

Any choice but ``direct`` blocks this process from the database: a call
into ``novalet.db`` then raises ``DBNotAllowed`` (an in-process conductor
still reaches the database, from its own dispatching only).
"""

from __future__ import annotations

from typing import Any, cast

from oslo_config import cfg
from oslo_log import log as logging
from stevedore import driver as stevedore_driver

from novalet import db, exception
from novalet.indirection.base import IndirectionAPI
from novalet.objects import base as objects_base

LOG = logging.getLogger(__name__)

NAMESPACE = "novalet.indirection"

_current: IndirectionAPI | None = None


def load(name: str, conf: cfg.ConfigOpts) -> IndirectionAPI:
    """Construct the implementation registered as ``name``."""
    manager: stevedore_driver.DriverManager[Any]
    try:
        manager = stevedore_driver.DriverManager(
            NAMESPACE, name, invoke_on_load=True, invoke_args=(conf,))
    except exception.NovaletException:
        # The plugin was found and refused to start (``rpc`` cannot read
        # its ``[auth] key_file``): its own error says what to fix.
        raise
    except Exception as e:
        raise exception.ConfigurationError(
            reason="[objects] indirection=%r cannot be loaded from entry point "
                   "namespace %s: %s" % (name, NAMESPACE, e))
    api = manager.driver
    if not isinstance(api, IndirectionAPI):
        for method in ("object_action", "object_class_action_versions",
                       "object_backport_versions"):
            if not callable(getattr(api, method, None)):
                raise exception.ConfigurationError(
                    reason="indirection %r has no %s()" % (name, method))
    return cast(IndirectionAPI, api)


def configure(conf: cfg.ConfigOpts, *, default: str = "direct",
              binary: str | None = None) -> IndirectionAPI:
    """Install the indirection API ``[objects] indirection`` names (or
    ``default`` when unset) and return it."""
    global _current
    name = conf.objects.indirection or default
    api = load(name, conf)
    if _current is not None and callable(getattr(_current, "stop", None)):
        _current.stop()
    _current = api
    if getattr(api, "runs_locally", False):
        objects_base.set_indirection_api(None)
        db.allow_access()
    else:
        objects_base.set_indirection_api(api)
        db.block_access(binary or "this process (indirection=%s)" % name)
    if callable(getattr(api, "start", None)):
        api.start()
    LOG.debug("Remotable methods run via indirection %r", name)
    return api


def reset() -> None:
    """Back to no indirection and database access allowed (tests)."""
    global _current
    if _current is not None and callable(getattr(_current, "stop", None)):
        _current.stop()
    _current = None
    objects_base.set_indirection_api(None)
    db.allow_access()


def current() -> Any:
    return _current


__all__ = ["IndirectionAPI", "configure", "current", "load", "reset"]
