"""How the callers of this process's RPC servers were verified
(``novalet_rpc_requests_total{caller}``: admin, host, unsigned, local,
refused; bounded whatever a caller sends)."""

from __future__ import annotations

from typing import Any

from novalet import rpc
from novalet.metrics import registry


def verified(principal: Any) -> None:
    """One request whose caller verified as ``principal`` (None: local)."""
    m = registry.current
    if m is not None:
        m.child(m.rpc_requests,
                "local" if principal is None else principal.kind).inc()


def refused() -> None:
    """One request refused before dispatch (its signature)."""
    m = registry.current
    if m is not None:
        m.child(m.rpc_requests, "refused").inc()


class ServerObserver(rpc.Observer):
    """What a novalet RPC server reports of each request (``rpc.Server``'s
    ``observer``)."""

    def verified(self, principal: Any) -> None:
        verified(principal)

    def refused(self) -> None:
        refused()


#: The one observer every novalet server uses.
OBSERVER = ServerObserver()
