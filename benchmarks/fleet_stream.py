"""The cheap load generator of ``fleet.py --mode stream``: each simulated
compute a signed request stream of its own, sent straight over kombu. Not a
benchmark itself (no ``__main__``).

A fleet of one compute per process sends, per beat, one
``ServiceList.report_heartbeats([its id])`` call signed with its host key.
Made with novalet's own client that costs the load generators more than
the conductor (objects, serializer, a reply waiter per call). Here each
compute's request is prepared ahead: novalet's real client path is run
once per host with the transport's send captured (the message, its
context, and what the host's ``Signer.sign`` was asked); at each beat only
a new signature (``Signer.sign`` with the same arguments: a fresh
timestamp and nonce), new message ids and oslo.messaging's AMQP envelope
are made, and the bytes are published to the conductor's topic with kombu.
Replies come back on one reply queue per process, matched by message id.
The conductor sees exactly what novalet's client would send (it verifies
every signature and records every beat); what is left out is the compute's
own client-side work.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import random
import sys
import threading
import time
import uuid
from concurrent import futures
from typing import Any

from fleet_worker import BINARY, TOPIC, HostSigners, Recorder


class _Captured(Exception):
    """The send novalet's client was about to make, not made."""

    def __init__(self, target: Any, ctxt: dict[str, Any], message: dict[str, Any]) -> None:
        super().__init__("captured")
        self.target, self.ctxt, self.message = target, ctxt, message


class Prepared:
    """One host's beat: the message and context as novalet's client sends
    them, the arguments of its signature."""

    def __init__(self, host: str, captured: _Captured, signer: Any,
                 sign_kwargs: dict[str, Any]) -> None:
        from novalet.auth import signing

        self.host = host
        self.signer = signer
        self.sign_kwargs = sign_kwargs
        self.message = captured.message
        self.ctxt = {k: v for k, v in captured.ctxt.items() if k != signing.FIELD}
        self.routing_key = (captured.target.topic if not captured.target.server
                            else "%s.%s" % (captured.target.topic, captured.target.server))

    def body(self, reply_q: str, msg_id: str) -> dict[str, Any]:
        """oslo.messaging's envelope of this beat, freshly signed."""
        from oslo_messaging._drivers import amqp as rpc_amqp
        from oslo_messaging._drivers import common as rpc_common

        from novalet.auth import signing

        ctxt = dict(self.ctxt)
        ctxt[signing.FIELD] = self.signer.sign(**self.sign_kwargs)
        msg = dict(self.message, _msg_id=msg_id, _reply_q=reply_q, _timeout=None)
        rpc_amqp._add_unique_id(msg)
        rpc_amqp.pack_context(msg, ctxt)
        return rpc_common.serialize_msg(msg)  # type: ignore[no-any-return]


def prepare(ctxt: Any, refs: list[Any], signers: HostSigners) -> list[Prepared]:
    """Each host's beat, captured from novalet's own client path."""
    from novalet import objects
    from novalet.rpc import transport

    messaging_transport = transport.get_transport()
    asked: dict[str, Any] = {}

    def capture(target: Any, ctxt: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        raise _Captured(target, ctxt, message)

    prepared = []
    messaging_transport._send = capture  # the instance's, for these calls only
    try:
        for ref in refs:
            signer = signers._signers[ref.host]
            sign = signer.sign

            def recording(sign: Any = sign, **kwargs: Any) -> Any:
                asked.update(kwargs)
                return sign(**kwargs)

            signer.sign = recording
            try:
                with signers.as_host(ref.host):
                    objects.ServiceList.report_heartbeats(ctxt, [ref.id])
            except _Captured as captured:
                prepared.append(Prepared(ref.host, captured, signer, dict(asked)))
            else:
                raise RuntimeError("report_heartbeats sent nothing to capture")
            finally:
                signer.sign = sign
    finally:
        del messaging_transport._send
    return prepared


class Stream:
    """This process's computes: a sender thread (beats in due order) and a
    reply consumer, on two kombu connections."""

    def __init__(self, url: str, exchange: str, beats: list[Prepared], interval: float,
                 recorder: Recorder, rnd: random.Random) -> None:
        import kombu

        self.url, self.exchange, self.beats = url, exchange, beats
        self.interval, self.recorder = interval, recorder
        self.reply_q = "reply_fleet_stream_%s" % uuid.uuid4().hex
        self.pending: dict[str, tuple[float, float, str]] = {}  # msg_id: due, wall, host
        self.lock = threading.Lock()
        self.stopping = threading.Event()  # the consumer's
        self.sending = threading.Event()  # cleared: the sender stops
        self.sending.set()
        self.ready = threading.Event()
        start = time.monotonic()
        self.due = [(start + rnd.uniform(0, interval), i) for i in range(len(beats))]
        heapq.heapify(self.due)
        self._kombu = kombu
        self.threads = [threading.Thread(target=self._consume, daemon=True),
                        threading.Thread(target=self._send, daemon=True)]

    def start(self) -> None:
        self.threads[0].start()
        if not self.ready.wait(60):
            raise RuntimeError("the reply queue was not declared")
        self.threads[1].start()

    def _consume(self) -> None:
        kombu = self._kombu
        with kombu.Connection(self.url.replace("rabbit://", "amqp://", 1)) as conn:
            queue = kombu.Queue(self.reply_q, durable=False, auto_delete=True)
            with conn.Consumer(queue, callbacks=[self._on_reply], no_ack=True,
                               accept=["json"]):
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        conn.drain_events(timeout=0.5)
                    except TimeoutError:
                        continue

    def _on_reply(self, body: dict[str, Any], message: Any) -> None:
        end = time.monotonic()
        reply = json.loads(body["oslo.message"])
        with self.lock:
            sent = self.pending.pop(reply.get("_msg_id"), None)
        if sent is None or not reply.get("ending", True):
            return
        due, wall, host = sent
        self.recorder.beats.append((wall, end - due, reply.get("failure") is None, host))

    def _send(self) -> None:
        kombu = self._kombu
        with kombu.Connection(self.url.replace("rabbit://", "amqp://", 1)) as conn:
            producer = conn.Producer(serializer="json")
            while self.sending.is_set():
                due, i = self.due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    time.sleep(min(wait, 0.5))
                    continue
                heapq.heapreplace(self.due, (due + self.interval, i))
                beat, msg_id = self.beats[i], uuid.uuid4().hex
                with self.lock:
                    self.pending[msg_id] = (due, time.time() - (time.monotonic() - due),
                                            beat.host)
                producer.publish(beat.body(self.reply_q, msg_id), exchange=self.exchange,
                                 routing_key=beat.routing_key, expiration=60)

    def unanswered(self, older_than: float) -> None:
        """Beats with no reply after ``older_than`` seconds: failed."""
        now = time.monotonic()
        with self.lock:
            late = [k for k, (due, _, _) in self.pending.items() if now - due > older_than]
            for key in late:
                due, wall, host = self.pending.pop(key)
                self.recorder.beats.append((wall, now - due, False, host))

    def stop(self) -> None:
        """Stop sending, take the replies still due (up to 10 s: a reply
        queue deleted under a conductor's reply costs it a thread for a
        minute), then stop consuming."""
        self.sending.clear()
        self.threads[1].join(10)
        deadline = time.monotonic() + 10
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.1)
        self.stopping.set()
        self.threads[0].join(10)


def worker(args: argparse.Namespace) -> int:
    """``fleet.py --worker --mode stream``: fleet.py's worker protocol
    (``created``, ``go``, ``joined``, the window, the summary)."""
    from oslo_config import cfg

    from novalet import conf as novalet_conf
    from novalet import context, indirection, objects

    conf = novalet_conf.CONF
    novalet_conf.parse_args(["--config-file", args.config], default_config_files=[])
    conf.set_override("indirection", "rpc", "objects")
    objects.register_all()
    indirection.configure(conf, binary=BINARY)
    ctxt, rnd, recorder = context.get_admin_context(), random.Random(args.index), Recorder()
    hosts = ["%s-w%d-%05d" % (args.prefix, args.index, i) for i in range(args.count)]
    signers = HostSigners(args.keys, conf.conductor.topic)
    for host in hosts:
        signers.load(host)

    def create(host: str) -> Any:
        with signers.as_host(host):  # each compute creates its own record
            ref = objects.Service(ctxt, host=host, binary=BINARY, topic=TOPIC)
            ref.create()
        return ref

    with futures.ThreadPoolExecutor(8) as pool:
        refs = list(pool.map(create, hosts))
    beats = prepare(ctxt, refs, signers)
    print("created", flush=True)
    if not sys.stdin.readline():
        os._exit(1)  # the run was interrupted
    stream = Stream(conf.transport_url, cfg.CONF.control_exchange, beats,
                    conf.report_interval, recorder, rnd)
    stream.start()
    print("joined %d threads" % threading.active_count(), flush=True)
    window = sys.stdin.readline().split()
    if window:
        time.sleep(max(0.0, min(5.0, float(window[1]) + 5.0 - time.time())))
        stream.unanswered(5.0)  # no reply in 5 s: failed
        print(json.dumps(recorder.summary(float(window[0]), float(window[1]))), flush=True)
    threading.Timer(30, os._exit, (3,)).start()  # a bound on stopping
    stream.stop()
    os._exit(0)
