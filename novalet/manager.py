"""Base class of service managers: the RPC endpoints and periodic tasks of
one service, with the lifecycle hooks ``novalet.service.Service`` calls."""

from __future__ import annotations

from typing import Any

from oslo_config import cfg
from oslo_service import periodic_task


class Manager(periodic_task.PeriodicTasks):
    """Hooks in start order: ``init_host``, ``pre_start_hook`` (before the
    RPC server listens), ``post_start_hook``; ``cleanup_host`` at stop."""

    def __init__(self, conf: cfg.ConfigOpts, host: str) -> None:
        super().__init__(conf)
        self.conf = conf
        self.host = host
        self.service_ref: Any = None

    def init_host(self) -> None:  # noqa: B027 (optional hook)
        """Prepare the host before anything else runs."""

    def pre_start_hook(self) -> None:  # noqa: B027 (optional hook)
        """Runs after the service record exists, before RPC listens."""

    def post_start_hook(self) -> None:  # noqa: B027 (optional hook)
        """Runs once RPC listens."""

    def cleanup_host(self) -> None:  # noqa: B027 (optional hook)
        """Runs at stop."""
