"""A host writing into the conductor's log, as a separate process:
``python -m tests.integration.log_attacker CONFIG MODE`` with a host's
configuration (its own key, no master key). ``MODE``:

* ``forge``: caller text holding newlines in every field that reaches a log
  line: the method name of a refused request, the context's
  ``request_id``, ``global_request_id`` and user fields of a signed request
  the conductor refuses (``Forbidden``, logged with the caller's context),
  and a host name in the refused object.
* ``flood N``: N messages oslo.messaging cannot parse, published with kombu
  straight into the conductor's topic queue.

Prints one JSON object: what happened to each attempt (the class of the
error that refused it, or ``"done"``)."""

from __future__ import annotations

import json
import sys

import kombu
import oslo_messaging as messaging

import novalet  # noqa: F401  (the threading backend first)
from novalet import conf as novalet_conf
from novalet import context, indirection, objects, rpc
from tests.integration.auth_attacker import RESULTS, attempt

CONF = novalet_conf.CONF
FORGED = "\n2026-01-01 00:00:00.000 1 CRITICAL novalet FORGED-%s\r\x1b[2K"


def forge() -> None:
    raw = messaging.get_rpc_client(
        rpc.get_transport(), messaging.Target(topic=CONF.conductor.topic,
                                              version="1.0"),
        serializer=messaging.NoOpSerializer(), timeout=15)
    attempt("unsigned, method name", lambda: raw.call(
        {"request_id": "req-1" + FORGED % "RAWRID"},
        "x" + FORGED % "METHOD", objinst={}, objmethod="save",
        args=[], kwargs={}))
    ctxt = context.RequestContext(
        request_id="req-2" + FORGED % "RID",
        global_request_id="req-3" + FORGED % "GRID",
        user_id="u" + FORGED % "USER", project_id="p" + FORGED % "PROJECT",
        overwrite=False)
    attempt("signed, another host's service", lambda: objects.Service(
        ctxt, host="victim" + FORGED % "HOST", binary="novalet-compute",
        topic="compute").create())


def flood(count: int) -> None:
    url = CONF.transport_url.replace("rabbit://", "amqp://", 1)
    with kombu.Connection(url) as connection:
        producer = connection.Producer(serializer="raw")
        for i in range(count):
            # Not JSON / JSON without the envelope oslo.messaging expects.
            body = b"\xff not json %d" % i if i % 2 else b'{"oslo.version": 7}'
            producer.publish(body, routing_key=CONF.conductor.topic,
                             exchange="", content_type="application/json")
    RESULTS["flood"] = "done"


def main() -> None:
    novalet_conf.parse_args(["--config-file", sys.argv[1]])
    objects.register_all()
    rpc.init(CONF)
    indirection.configure(CONF)
    if sys.argv[2] == "forge":
        forge()
    else:
        flood(int(sys.argv[3]))
    print(json.dumps(RESULTS))


if __name__ == "__main__":
    main()
