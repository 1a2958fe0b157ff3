"""Recognising a signed request the broker delivers again, in the statement
that applies it: a heartbeat is applied once whichever time and to whichever
conductor the broker delivers it.

A row a non-idempotent write changes remembers the delivery keys
(``novalet.auth.delivery_key``: the verified principal and signed nonce) of
the last ``REMEMBERED`` requests applied to it, newest first, in one column
(``services.recent_deliveries``, 0006_recent_deliveries); the write's own
UPDATE skips a row that holds the request's key and adds the key to the rows
it changes. No statement, round trip or table is added to the write, and two
deliveries running at once on two conductors cannot both apply: the second
UPDATE waits for the first's row lock, then reads the committed row (with
its key) and skips it.

The bound: a row forgets a key once ``REMEMBERED`` later requests were
applied to it. A service beating every ``report_interval`` seconds keeps
each key for ``REMEMBERED`` intervals (160 s at the default 10 s, longer
than the ``[auth] timestamp_window`` either way, 120 s, in which a captured
request could be replayed to another conductor). Unsigned and local requests
have no key and are applied every time.

Release 3's conductors kept the keys in a table of their own
(``rpc_deliveries``, written in the heartbeat's transaction: three more
statements per heartbeat). While conductors of both releases serve one topic
during a rolling upgrade, neither sees the other's keys: a heartbeat
delivered again from one release's conductor to the other's may count twice,
until every conductor runs release 4.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from novalet.db import models

#: Characters of a delivery key a row keeps (128 of its 256 bits, in hex).
KEY_CHARS = 32
#: One remembered key as stored: ``;`` and its first ``KEY_CHARS``.
ENTRY_CHARS = KEY_CHARS + 1
#: How many keys a row remembers (the column holds that many entries).
REMEMBERED = models.Service.recent_deliveries.type.length // ENTRY_CHARS
#: The bound parameter that carries the request's entry.
PARAM = "delivery_entry"


def entry(context: Any) -> str | None:
    """The entry of the request ``context`` carries (``;`` and its key's
    first ``KEY_CHARS``); None for an unsigned or local request. Keys are
    hex, so an entry never holds a ``LIKE`` wildcard and matches only at the
    start of a stored one."""
    key = getattr(context, "delivery_key", None)
    return None if key is None else ";" + key[:KEY_CHARS]


def _param() -> Any:
    return sa.bindparam(PARAM, type_=sa.String())


def not_applied(column: Any) -> Any:
    """The rows whose ``column`` does not hold the request's entry."""
    return sa.not_(sa.func.coalesce(column, "").contains(_param()))


def remembered(column: Any) -> Any:
    """``column`` with the request's entry first, the oldest entry dropped
    when it holds ``REMEMBERED`` already."""
    return sa.func.substr(_param() + sa.func.coalesce(column, ""), 1,
                          REMEMBERED * ENTRY_CHARS)
