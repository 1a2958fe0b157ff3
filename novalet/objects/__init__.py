"""novalet's versioned objects.

Nothing is registered on import: ``register_all()`` loads the apps
(``novalet.app``: the core app ``novalet``, declared in ``novalet.novalet_app``,
then every installed app or those ``[DEFAULT] apps`` names), whose object
modules register their classes with ``NovaletObjectRegistry``. The core's
appear here as ``novalet.objects.Service`` and so on (the newest version of
each).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def register_all(apps: Sequence[str] | None = None) -> None:
    """Load the apps ``apps`` names (default ``[DEFAULT] apps``; empty:
    every installed app) and register their objects. Raises
    ``AppLoadError`` naming an app that cannot be loaded."""
    from novalet import app

    if apps is None:
        from novalet.conf import CONF

        apps = CONF.apps
    app.load(apps)


def __getattr__(name: str) -> Any:
    if name[:1].isupper():
        raise AttributeError(
            "novalet.objects.%s is not registered; call "
            "novalet.objects.register_all() first" % name)
    raise AttributeError(name)
