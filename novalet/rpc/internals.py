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
"""

from __future__ import annotations

from typing import Any

from oslo_messaging import transport as _transport
from oslo_messaging._drivers import common as _wire

serialize_remote_exception = _wire.serialize_remote_exception
deserialize_remote_exception = _wire.deserialize_remote_exception


def transport_opts() -> list[Any]:
    """oslo.messaging's own ``[DEFAULT]`` transport option objects."""
    return _transport._transport_opts  # type: ignore[no-any-return]


__all__ = ["deserialize_remote_exception", "serialize_remote_exception",
           "transport_opts"]
