"""The only module that reaches into oslo.messaging's private parts, for
what its public API does not offer; tests/unit/test_rpc_internals.py and
tests/functional/test_rpc_errors.py compare each with the library's own
output, so an upgrade that changes them fails loudly.

* ``serialize_remote_exception`` / ``deserialize_remote_exception``
  (``oslo_messaging._drivers.common``): how its drivers put an error on the
  wire and rebuild it in the caller (``novalet.rpc.errors.as_received``).
* ``transport_opts()`` (``oslo_messaging.transport._transport_opts``): the
  option objects of ``transport_url`` and its siblings, whose defaults
  novalet sets (the library has a public setter for ``control_exchange``
  only).
* ``name_reply_queues(transport, prefix)`` (the AMQP drivers'
  ``_get_reply_queue_name``, which makes the name of the one reply queue a
  transport's calls share: ``reply_<uuid>``, or
  ``reply_<hostname>:<processname>:<n>`` with ``[oslo_messaging_rabbit]
  use_queue_manager``): novalet puts ``prefix`` (the host and the binary)
  in front of what the library makes, so a host's broker user may be
  granted its own reply queues only (``novalet-manage auth rabbitmq``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from oslo_messaging import transport as _transport
from oslo_messaging._drivers import common as _wire

serialize_remote_exception = _wire.serialize_remote_exception
deserialize_remote_exception = _wire.deserialize_remote_exception


def transport_opts() -> list[Any]:
    """oslo.messaging's own ``[DEFAULT]`` transport option objects."""
    return _transport._transport_opts  # type: ignore[no-any-return]


#: What oslo.messaging's reply queue names start with.
REPLY_PREFIX = "reply_"

#: The longest queue name RabbitMQ takes (bytes).
MAX_QUEUE_NAME = 255


def name_reply_queues(transport: Any, prefix: str) -> bool:
    """Make ``transport``'s driver name its reply queue ``prefix`` + what
    the library would have put after ``reply_`` (a digest of it, as long
    as fits, when the whole would pass RabbitMQ's 255 bytes: still stable
    for the queue manager). Returns False for a driver that makes no reply queue (e.g.
    ``fake://``). ``prefix`` starts with ``reply_``."""
    driver: Any = getattr(transport, "_driver", None)
    make = getattr(driver, "_get_reply_queue_name", None)
    if make is None:
        return False
    original = getattr(make, "novalet_original", make)

    def named() -> str:
        made = original()
        rest = made[len(REPLY_PREFIX):] if made.startswith(REPLY_PREFIX) else made
        if len((prefix + rest).encode()) > MAX_QUEUE_NAME:
            room = max(8, MAX_QUEUE_NAME - len(prefix.encode()))
            rest = hashlib.sha256(rest.encode()).hexdigest()[:min(32, room)]
        return prefix + rest

    named.novalet_original = original  # type: ignore[attr-defined]
    driver._get_reply_queue_name = named
    return True


def reply_queue_name(transport: Any) -> str | None:
    """The reply queue ``transport``'s calls use now (None: none yet, or a
    driver without one)."""
    driver = getattr(transport, "_driver", None)
    return getattr(driver, "_reply_q", None)


__all__ = ["MAX_QUEUE_NAME", "REPLY_PREFIX", "deserialize_remote_exception",
           "name_reply_queues", "reply_queue_name", "serialize_remote_exception",
           "transport_opts"]
