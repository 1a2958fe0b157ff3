"""Heartbeat metrics, fed by the servicegroup reporters of this process."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from novalet.metrics import registry


def counted(ok: bool) -> None:
    """One service's heartbeat worked (``ok``) or failed."""
    m = registry.current
    if m is not None:
        m.child(m.heartbeats, "ok" if ok else "failed").inc()
        if ok:
            m.heartbeat_last_ok.set(time.time())


@contextlib.contextmanager
def timer() -> Iterator[None]:
    """Time one heartbeat call (of one or several services), however it ends."""
    start = time.monotonic()
    try:
        yield
    finally:
        m = registry.current
        if m is not None:
            m.heartbeat_duration.observe(time.monotonic() - start)
