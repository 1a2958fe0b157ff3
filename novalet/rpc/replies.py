"""Reply queues named after their host: one rule for the name a process's
transport gives its reply queue and for the pattern a host's broker user is
granted (``novalet-manage auth rabbitmq``).

A reply queue is ``reply_<host>:<binary>:<what oslo.messaging makes>``:
a random ``<uuid>``, or ``<hostname>:<processname>:<n>`` with
``[oslo_messaging_rabbit] use_queue_manager`` (its counter lives in
``/dev/shm`` per hostname and processname, so with one configuration file
for every binary a conductor and a compute of one host could count to the
same name; the binary in front keeps theirs apart). A canonical host name
holds no ``:`` (``novalet.auth.keys``), so ``reply_compute-1:`` never
starts a queue of ``compute-10``.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Any

from novalet.rpc import internals

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def binary_of(conf: Any) -> str:
    """The program this process runs as (``conf.prog``, which every
    ``novalet-*`` entry point sets; else its script's name), in the
    characters a queue name keeps readable."""
    prog = getattr(conf, "prog", None) or os.path.basename(sys.argv[0])
    return _UNSAFE.sub("-", str(prog))[:64] or "novalet"


def reply_queue_prefix(host: str, binary: str) -> str:
    """What every reply queue of ``binary`` on ``host`` starts with."""
    return "%s%s:%s:" % (internals.REPLY_PREFIX, host, binary)


def reply_queue_pattern(host: str) -> str:
    """The regular expression (unanchored: the caller anchors it) of every
    reply queue of ``host``, whatever its binary."""
    return "%s%s:.*" % (re.escape(internals.REPLY_PREFIX), re.escape(host))


def name_reply_queues(transport: Any, conf: Any) -> bool:
    """Make ``transport`` name its reply queue after ``conf.host`` and this
    process's binary (False: its driver makes none, e.g. ``fake://``)."""
    return internals.name_reply_queues(
        transport, reply_queue_prefix(conf.host, binary_of(conf)))


__all__ = ["binary_of", "name_reply_queues", "reply_queue_pattern",
           "reply_queue_prefix"]
