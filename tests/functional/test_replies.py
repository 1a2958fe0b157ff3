"""Replies over RabbitMQ: a host's reply queue carries its host and binary,
and a call refuses a reply that was not sent for it by the server it called.

The forger here holds broker administrator rights (the test vhost's guest
user): it takes the call off the conductor topic itself and publishes
replies into the caller's reply queue through the default exchange, as
someone with those rights can. The caller is this process, signing as host
A with A's key, through the objects' rpc indirection."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import kombu
import pytest
from oslo_messaging._drivers import common as wire

from novalet import auth, context, exception, indirection, objects, rpc
from novalet import conf as novalet_conf
from novalet.auth import keys
from novalet.rpc import internals, replies
from tests import services
from tests.conftest import MASTER_KEY_FILE

HOST_A = "replies-a-" + os.urandom(3).hex()


class Forger:
    """Answers each call made to ``topic`` with what ``answer(request)``
    returns: ``(result, failure)`` as oslo.messaging puts them in a reply
    (``failure`` a serialized remote exception), published with the
    broker's admin user straight into the caller's reply queue."""

    def __init__(self, url: str, topic: str) -> None:
        self.conn = kombu.Connection(url.replace("rabbit://", "amqp://", 1))
        self.topic = topic
        exchange = kombu.Exchange(novalet_conf.CONF.control_exchange,
                                  type="topic", durable=False)
        self.queue = kombu.Queue(topic, exchange=exchange, routing_key=topic,
                                 durable=False)
        self.queue(self.conn.channel()).declare()
        self.requests: list[dict[str, Any]] = []
        self.answer: Callable[[dict[str, Any]], tuple[Any, Any]] = (
            lambda request: (None, None))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        with self.conn.clone() as conn:
            queue = self.queue(conn.channel())
            while not self._stop.is_set():
                message = queue.get(no_ack=True)
                if message is None:
                    self._stop.wait(0.02)
                    continue
                request = json.loads(message.payload["oslo.message"])
                self.requests.append(request)
                result, failure = self.answer(request)
                reply = {"result": result, "failure": failure, "ending": True,
                         "_msg_id": request["_msg_id"]}
                conn.Producer().publish(wire.serialize_msg(reply), exchange="",
                                        routing_key=request["_reply_q"])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self.conn.release()


@pytest.fixture
def as_host_a(conf: Any, rabbit_vhost: Any, tmp_path: Any) -> Any:
    """This process signs as host A (its key file) through the rpc
    indirection; the forger stands where the conductor would."""
    key_file = str(tmp_path / "a.key")
    keys.write_host_key(MASTER_KEY_FILE, HOST_A, key_file)
    topic = "conductor-%s" % os.urandom(4).hex()
    conf("host", HOST_A)
    conf("key_file", key_file, "auth")
    conf("master_key_file", None, "auth")
    conf("transport_url", rabbit_vhost.url)
    conf("topic", topic, "conductor")
    conf("rpc_response_timeout", 5)
    conf("conductor", "3", "upgrade_levels")  # no call to learn the cap
    objects.register_all()
    rpc.init(novalet_conf.CONF)
    assert auth.signer().principal == auth.principal.host(HOST_A)
    conf("indirection", "rpc", "objects")
    indirection.configure(novalet_conf.CONF)
    forger = Forger(rabbit_vhost.url, topic)
    try:
        yield forger
    finally:
        forger.close()


def _key_of_a() -> bytes:
    master = keys.read_file(MASTER_KEY_FILE, keys.MASTER)["keys"][0][1]
    return keys.host_key(master, HOST_A)


def _nonce(request: dict[str, Any]) -> str:
    return request["_context_" + auth.signing.FIELD]["n"]  # type: ignore[no-any-return]


def _failure(error: Exception) -> str:
    try:
        raise error
    except Exception:
        return internals.serialize_remote_exception(sys.exc_info())  # type: ignore[no-any-return]


def _node(ctxt: Any) -> Any:
    node = objects.ComputeNode(ctxt, id=7, host=HOST_A, memory_mb_used=100)
    node.obj_reset_changes()
    node.memory_mb_used = 200
    return node


def test_the_reply_queue_carries_the_host_and_binary(as_host_a: Any) -> None:
    key = _key_of_a()
    as_host_a.answer = lambda req: (auth.signing.seal_reply(
        key, _nonce(req), auth.signing.REPLY_OK, json.dumps(3)), None)
    ctxt = context.get_admin_context()
    assert rpc.Client(novalet_conf.CONF.conductor.topic, "1.0").call(
        ctxt, "anything") == 3
    name = internals.reply_queue_name(rpc.get_transport())
    (request,) = as_host_a.requests
    assert request["_reply_q"] == name
    prefix = replies.reply_queue_prefix(HOST_A, replies.binary_of(
        novalet_conf.CONF))
    assert name.startswith(prefix)
    # What follows is what oslo.messaging itself makes: reply_<uuid hex>.
    assert len(name) == len(prefix) + 32
    int(name[len(prefix):], 16)


def test_a_sealed_reply_for_the_call_is_applied(as_host_a: Any) -> None:
    """The positive control: the forger's path reaches the caller, and a
    reply sealed for this call with A's key is applied."""
    key = _key_of_a()
    as_host_a.answer = lambda req: (auth.signing.seal_reply(
        key, _nonce(req), auth.signing.REPLY_OK,
        json.dumps([{"memory_mb_used": 777}, None])), None)
    node = _node(context.get_admin_context())
    node.save()
    assert node.memory_mb_used == 777


FORGED = {
    "plain result": lambda key, req: (
        [{"memory_mb_used": 999}, None], None),
    "plain failure": lambda key, req: (
        None, _failure(exception.ServiceNotFound(service_id=7))),
    "sealed with another host's key": lambda key, req: (
        auth.signing.seal_reply(
            keys.host_key(b"k" * 32, HOST_A), _nonce(req),
            auth.signing.REPLY_OK, json.dumps([{"memory_mb_used": 999}, None])),
        None),
    "sealed for another call": lambda key, req: (
        auth.signing.seal_reply(
            key, "another-nonce", auth.signing.REPLY_OK,
            json.dumps([{"memory_mb_used": 999}, None])), None),
    "sealed error for another call": lambda key, req: (
        auth.signing.seal_reply(
            key, "another-nonce", auth.signing.REPLY_ERROR,
            _failure(exception.ServiceNotFound(service_id=7))), None),
    "sealed, body changed": lambda key, req: (
        {auth.signing.REPLY_FIELD: dict(auth.signing.seal_reply(
            key, _nonce(req), auth.signing.REPLY_OK,
            json.dumps([{}, None]))[auth.signing.REPLY_FIELD],
            b=json.dumps([{"memory_mb_used": 999}, None]))}, None),
    "malformed seal": lambda key, req: (
        {auth.signing.REPLY_FIELD: {"v": 1, "k": "ok", "b": 5, "mac": "x"}},
        None),
}


@pytest.mark.parametrize("forged", sorted(FORGED))
def test_a_forged_reply_is_refused_and_changes_nothing(
        as_host_a: Any, forged: str, caplog: Any) -> None:
    key = _key_of_a()
    as_host_a.answer = lambda req: FORGED[forged](key, req)
    node = _node(context.get_admin_context())
    with caplog.at_level(logging.WARNING, "novalet.auth.signing"):
        with pytest.raises(exception.ReplyRefused) as info:
            node.save()
    # A's object is as A made it: the forged updates were not applied,
    # its change still pending.
    assert node.memory_mb_used == 200
    assert "memory_mb_used" in node.obj_what_changed()
    assert info.value.kwargs["method"] == "object_action"
    assert "Refused the reply to %s.object_action" % (
        novalet_conf.CONF.conductor.topic) in caplog.text
    # A forged "your service is gone" is no ServiceNotFound to A either.
    with pytest.raises(exception.ReplyRefused):
        objects.Service.get_by_id(context.get_admin_context(), 7)


def test_while_the_roll_lasts_a_plain_reply_is_accepted_and_logged(
        as_host_a: Any, conf: Any, caplog: Any) -> None:
    """``[auth] require_reply_auth = false`` while the caps say a release
    3 conductor may answer (the fixture pins them to release 3; ``auto``
    finds it by its service version): an unsealed reply is accepted
    whoever sent it (the exposure the option keeps open), logged; a sealed
    one is still checked."""
    conf("require_reply_auth", False, "auth")
    as_host_a.answer = lambda req: ([{"memory_mb_used": 555}, None], None)
    node = _node(context.get_admin_context())
    with caplog.at_level(logging.WARNING, "novalet.auth.signing"):
        node.save()
    assert node.memory_mb_used == 555
    assert "Accepted an unauthenticated reply" in caplog.text
    key = _key_of_a()
    as_host_a.answer = lambda req: FORGED["sealed for another call"](key, req)
    with pytest.raises(exception.ReplyRefused):
        _node(context.get_admin_context()).save()


@pytest.mark.parametrize("setting", ["4", "auto"])
def test_once_the_caps_say_every_conductor_seals_a_plain_reply_is_refused(
        as_host_a: Any, conf: Any, setting: str) -> None:
    """The roll is over when the caps say so, whatever the option: pinned
    to release 4, or ``auto`` finding every conductor at service version 4
    (its answer sealed), an unsealed reply is forged and refused."""
    conf("require_reply_auth", False, "auth")
    conf("conductor", setting, "upgrade_levels")
    indirection.configure(novalet_conf.CONF)
    key = _key_of_a()

    def answer(req: dict[str, Any]) -> tuple[Any, Any]:
        if req["method"] == "object_class_action_versions":
            # auto asks the conductors' lowest service version: 4, sealed.
            return auth.signing.seal_reply(
                key, _nonce(req), auth.signing.REPLY_OK, json.dumps(4)), None
        return [{"memory_mb_used": 555}, None], None

    as_host_a.answer = answer
    node = _node(context.get_admin_context())
    with pytest.raises(exception.ReplyRefused):
        node.save()
    assert node.memory_mb_used == 200
    assert "memory_mb_used" in node.obj_what_changed()
    methods = [r["method"] for r in as_host_a.requests]
    assert methods[-1] == "object_action"
    assert ("object_class_action_versions" in methods) == (setting == "auto")


_NAME = """
import sys
from novalet import conf
conf.parse_args(["--config-file", sys.argv[1]], prog=sys.argv[2])
import oslo_messaging as messaging
from novalet.rpc import replies
transport = messaging.get_rpc_transport(conf.CONF)
replies.name_reply_queues(transport, conf.CONF)
print(transport._driver._get_reply_queue_name())
"""


def test_one_config_for_every_binary_cannot_make_two_the_same_name(
        tmp_path: Any) -> None:
    """With the queue manager and one configuration file (one processname
    for every binary), oslo.messaging's own names of a conductor and a
    compute started apart (other process groups) are the same; novalet's
    differ by the binary."""
    suffix = uuid.uuid4().hex[:8]
    config = tmp_path / "one.conf"
    config.write_text(
        "[DEFAULT]\nhost = h-%s\ntransport_url = rabbit://guest:guest@%s:5672/\n"
        "[oslo_messaging_rabbit]\nuse_queue_manager = true\n"
        "hostname = qm-%s\nprocessname = novalet-compute\n"
        "[oslo_concurrency]\nlock_path = %s\n"
        % (suffix, services.RABBIT_HOST, suffix, tmp_path))
    names = []
    try:
        for binary in ("novalet-conductor", "novalet-compute"):
            made = subprocess.run(
                [sys.executable, "-c", _NAME, str(config), binary],
                capture_output=True, text=True, timeout=60,
                start_new_session=True)
            assert made.returncode == 0, made.stderr[-2000:]
            names.append(made.stdout.strip().splitlines()[-1])
    finally:
        for leftover in ("/dev/shm/qm-%s_novalet-compute_qmanager" % suffix,):
            if os.path.exists(leftover):
                os.unlink(leftover)
    library = "qm-%s:novalet-compute:1" % suffix
    assert names == ["reply_h-%s:novalet-conductor:%s" % (suffix, library),
                     "reply_h-%s:novalet-compute:%s" % (suffix, library)]
