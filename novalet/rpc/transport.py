"""The process's one oslo.messaging transport (``[DEFAULT] transport_url``)."""

from __future__ import annotations

import threading
from typing import Any

import oslo_messaging as messaging
from oslo_config import cfg

from novalet import auth, exception
from novalet.rpc import errors, replies
from novalet.rpc.startup import IN_PROCESS_TRANSPORTS

_lock = threading.Lock()
_transport: Any = None
_transport_name: str | None = None


def init(conf: cfg.ConfigOpts) -> None:
    """Create the process's transport from ``conf.transport_url`` (its reply
    queue named after ``conf.host``: ``novalet.rpc.replies``) and read
    its keys (``novalet.auth.configure``: raises ``AuthKeyError`` or
    ``ConfigurationError`` for a key file that cannot be used)."""
    global _transport, _transport_name
    auth.configure(conf)
    with _lock:
        if _transport is None:
            _transport = messaging.get_rpc_transport(
                conf, allowed_remote_exmods=errors.ALLOWED_EXMODS)
            # Before any call makes it: the reply queue carries the host.
            replies.name_reply_queues(_transport, conf)
            _transport_name = messaging.TransportURL.parse(
                conf, conf.transport_url).transport


def cleanup() -> None:
    """Close the transport (at stop, and between tests)."""
    global _transport
    with _lock:
        transport, _transport = _transport, None
    auth.reset()
    if transport is not None:
        transport.cleanup()


def in_process() -> bool:
    """Whether the process's transport runs in this process (``fake://``)."""
    return _transport_name in IN_PROCESS_TRANSPORTS


def get_transport() -> Any:
    if _transport is None:
        raise exception.ConfigurationError(
            reason="novalet.rpc.init(conf) was not called")
    return _transport
