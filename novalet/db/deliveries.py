"""The ``rpc_deliveries`` table: the signed requests a transaction applied,
so a request the broker delivers twice is applied once."""

from __future__ import annotations

import datetime
from typing import Any

import sqlalchemy as sa
from oslo_config import cfg
from oslo_log import log as logging

from novalet.db import models

LOG = logging.getLogger(__name__)


def first_delivery(context: Any, now: datetime.datetime) -> bool:
    """Record the signed request this transaction applies; False when it
    was applied already (the broker delivered it again, to this or another
    conductor, after a connection was lost before its acknowledgement).
    Unsigned and local requests are not recorded. Two deliveries running at
    once both pass the check; the second's insert then fails and its whole
    transaction is undone. Keys are kept for twice ``[auth]
    timestamp_window``; older ones are deleted here."""
    key = getattr(context, "delivery_key", None)
    if key is None:
        return True
    table = models.RPC_DELIVERIES
    try:
        window = int(cfg.CONF.auth.timestamp_window)
    except (cfg.NoSuchOptError, cfg.NoSuchGroupError):
        window = 60
    session = context.session
    session.execute(sa.delete(table).where(
        table.c.seen_at < now - datetime.timedelta(seconds=2 * window)))
    if session.execute(sa.select(table.c.delivery_key).where(
            table.c.delivery_key == key)).first():
        LOG.info("A request delivered again was applied already: not again")
        return False
    session.execute(sa.insert(table).values(delivery_key=key, seen_at=now))
    return True
