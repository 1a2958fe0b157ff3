"""Host B attacking host A, as a separate process: ``python -m
tests.integration.auth_attacker CONFIG JSON_IN`` with host B's configuration
(its own key, its own broker user, no master key). ``JSON_IN`` names host A's
records. Prints one JSON object: attack name -> what happened (the error
class that refused it, or ``"done"``)."""

from __future__ import annotations

import copy
import datetime
import json
import sys
import time
import uuid
from typing import Any

import kombu
import oslo_messaging as messaging

import novalet  # noqa: F401  (the threading backend first)
from novalet import auth, context, indirection, objects, rpc
from novalet import conf as novalet_conf
from novalet.auth import signing
from novalet.objects import base as objects_base

CONF = novalet_conf.CONF
RESULTS: dict[str, str] = {}


def attempt(name: str, action: Any) -> None:
    try:
        action()
    except Exception as e:  # what refused it, by class
        RESULTS[name] = type(e).__name__.removesuffix("_Remote")
    else:
        RESULTS[name] = "done"


def _raw(target: dict[str, Any] | None = None) -> Any:
    """oslo.messaging's own client: sends a context dict as it is."""
    return messaging.get_rpc_client(
        rpc.get_transport(), messaging.Target(
            **(target or {"topic": CONF.conductor.topic}), version="1.2"),
        serializer=messaging.NoOpSerializer(), timeout=15)


def _signed(method: str, args: dict[str, Any], *, clock: Any = None,
            version: str = "1.2", server: str | None = None,
            topic: str | None = None,
            context_extra: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """A request signed with B's key, exactly as its client would."""
    signer = auth.signer()
    assert signer is not None
    if clock is not None:
        signer = signing.Signer(signer.ring, clock=clock)
    ctxt = signing.wire_form(dict(context.get_admin_context().to_wire(),
                                  **(context_extra or {})))
    args = signing.wire_form(args)
    ctxt[signing.FIELD] = signer.sign(
        method=method, version=version, namespace=None,
        topic=topic or CONF.conductor.topic, server=server, args=args,
        context=ctxt)
    return ctxt, args


def _get_by_id(service_id: int) -> dict[str, Any]:
    return {"objname": "Service", "objmethod": "get_by_id",
            "object_versions": {"Service": "1.1"}, "args": [service_id],
            "kwargs": {}}


def takeover(ctxt: Any, world: dict[str, Any]) -> None:
    """Host A's instance through a migration B makes itself, and usage
    pushed onto A's node through migrations (issue 22)."""
    me, host_a = CONF.host, world["host_a"]

    def migration(instance: str, source: str, dest: str, **sizes: Any) -> Any:
        return lambda: objects.Migration(
            ctxt, instance_uuid=instance, source_compute=source,
            dest_compute=dest, source_node=world["node_a_name"],
            dest_node=world["node_a_name"], status="migrating",
            **sizes).create()

    def instance(**changes: Any) -> Any:
        def run() -> None:
            inst = objects.Instance.get_by_uuid(ctxt, world["instance_a"])
            for name, value in changes.items():
                setattr(inst, name, value)
            inst.save()
        return run

    def change(migration_id: int, **changes: Any) -> Any:
        def run() -> None:
            mig = objects.Migration.get_by_id(ctxt, migration_id)
            for name, value in changes.items():
                setattr(mig, name, value)
            mig.save()
        return run

    attempt("takeover: create a migration of A's instance to B",
            migration(world["instance_a"], host_a, me))
    attempt("takeover: save A's instance",
            instance(vm_state="error", task_state="migrating"))
    attempt("takeover: move A's instance to B", instance(host=me))
    attempt("takeover: destroy A's instance", lambda: objects.Instance
            .get_by_uuid(ctxt, world["instance_a"]).destroy())
    attempt("takeover: destroy A's migration", lambda: objects.Migration
            .get_by_id(ctxt, world["migration_a"]).destroy())
    attempt("usage: create a migration onto A", migration(
        world["instance_b"], me, host_a, new_vcpus=64, new_memory_mb=65536))
    attempt("usage: grow a migration onto A", change(
        world["migration_ba"], new_vcpus=64, new_memory_mb=65536))
    attempt("usage: point a migration at A's other node", change(
        world["migration_ba"], dest_node="other"))
    attempt("usage: revive a finished migration onto A", change(
        world["migration_done"], status="migrating"))
    attempt("usage: destroy a migration onto A", lambda: objects.Migration
            .get_by_id(ctxt, world["migration_ba"]).destroy())


def main(config: str, world_file: str) -> int:
    novalet_conf.parse_args(["--config-file", config])
    objects.register_all()
    indirection.configure(CONF, default="rpc", binary="auth-attacker")
    with open(world_file) as f:
        world = json.load(f)
    ctxt = context.get_admin_context()  # claims admin: believed for nothing
    me = auth.signer().principal  # type: ignore[union-attr]
    RESULTS["signs as"] = str(me)

    # -- host A's rows, directly --------------------------------------------
    def save_node(**changes: Any) -> Any:
        def run() -> None:
            node = objects.ComputeNode.get_by_id(ctxt, world["node_a"])
            for name, value in changes.items():
                setattr(node, name, value)
            node.save()
        return run

    attempt("save A's node", save_node(memory_mb_used=999999))
    attempt("save A's node as B's", save_node(host=CONF.host,
                                              memory_mb_used=999999))
    attempt("destroy A's node", lambda: objects.ComputeNode.get_by_id(
        ctxt, world["node_a"]).destroy())
    attempt("destroy A's service", lambda: objects.Service.get_by_id(
        ctxt, world["service_a"]).destroy())

    def create_node(host: str) -> Any:
        return lambda: objects.ComputeNode(
            ctxt, host=host, hypervisor_hostname="stolen", vcpus=1,
            memory_mb=1, local_gb=1, hypervisor_type="fake",
            hypervisor_version=1, cpu_info="{}").create()

    attempt("create a node of A", create_node(world["host_a"]))
    # Names that only look like A's, as primitives (past this client's
    # own field checks), to create a node and to save B's own as A's.
    template = objects.ComputeNode(
        ctxt, host=CONF.host, hypervisor_hostname="lookalike", vcpus=1,
        memory_mb=1, local_gb=1, hypervisor_type="fake", hypervisor_version=1,
        cpu_info="{}").obj_to_primitive()
    client = rpc.Client(CONF.conductor.topic, "1.2", timeout=15,
                        entities=objects_base.NovaletObjectSerializer())
    for label, host in (("case", world["host_a"].upper()),
                        ("whitespace", world["host_a"] + "\t"),
                        ("NUL", world["host_a"] + "\0"),
                        ("look-alike", world["host_a"].replace("a", "\u0430"))):
        primitive = copy.deepcopy(template)
        primitive["novalet_object.data"]["host"] = host
        primitive["novalet_object.changes"] = sorted(
            primitive["novalet_object.data"])
        attempt("create a node of A (%s)" % label, lambda p=primitive: client.call(
            ctxt, "object_action", objinst=p, objmethod="create", args=[],
            kwargs={}))
    attempt("heartbeat for A", lambda: objects.ServiceList.report_heartbeats(
        ctxt, [world["service_a"]]))

    def steal_instance() -> None:
        inst = objects.Instance.get_by_uuid(ctxt, world["instance_a"])
        inst.host = CONF.host
        inst.save()

    attempt("steal A's instance", steal_instance)
    attempt("destroy A's instance", lambda: objects.Instance.get_by_uuid(
        ctxt, world["instance_a"]).destroy())

    def future_heartbeat() -> None:
        svc = objects.Service.get_by_id(ctxt, world["service_a"])
        svc.last_seen_up = datetime.datetime(2100, 1, 1,
                                             tzinfo=datetime.UTC)
        svc.save()

    attempt("set A's last_seen_up", future_heartbeat)

    # -- nested in list objects, through class methods ------------------------
    node_a = objects.ComputeNode.get_by_id(ctxt, world["node_a"])
    node_a.memory_mb_used = 999999
    nodes = objects.ComputeNodeList(ctxt, objects=[node_a])
    attempt("save a list holding A's node", lambda: client.call(
        ctxt, "object_action", objinst=nodes, objmethod="save", args=[],
        kwargs={}))
    attempt("A's node as an argument", lambda: client.call(
        ctxt, "object_action", objinst=node_a, objmethod="save",
        args=[nodes], kwargs={}))

    class Claims:
        def to_dict(self) -> dict[str, Any]:
            return {"is_admin": True, "roles": ["admin"], "principal": "admin",
                    "novalet_auth_principal": "admin"}

    attempt("context claiming admin", lambda: client.call(
        Claims(), "object_action", objinst=node_a, objmethod="save", args=[],
        kwargs={}))

    # -- the signature ----------------------------------------------------------
    raw = _raw()
    request = _get_by_id(world["service_a"])
    attempt("unsigned", lambda: raw.call({"is_admin": True},
                                         "object_class_action_versions",
                                         **request))
    signed_ctxt, signed_args = _signed("object_class_action_versions", request)
    attempt("signed, sent once", lambda: raw.call(
        copy.deepcopy(signed_ctxt), "object_class_action_versions",
        **signed_args))
    attempt("replayed", lambda: raw.call(
        copy.deepcopy(signed_ctxt), "object_class_action_versions",
        **signed_args))
    changed = copy.deepcopy(signed_args)
    changed["args"] = [world["service_a"] + 1]
    attempt("one byte changed", lambda: raw.call(
        copy.deepcopy(signed_ctxt), "object_class_action_versions", **changed))
    for label, kwargs in (("another method", {"method":
                                              "object_backport_versions"}),
                          ("another version", {"version": "1.0"}),
                          ("another server", {"server": world["host_a"],
                                              "topic": CONF.compute.topic})):
        method = kwargs.pop("method", "object_class_action_versions")
        made_ctxt, made_args = _signed(method, request, **kwargs)
        attempt("signed for " + label, lambda c=made_ctxt, a=made_args: raw.call(
            c, "object_class_action_versions", **a))
    for label, offset in (("stale", -600), ("future", 600)):
        made_ctxt, made_args = _signed(
            "object_class_action_versions", request,
            clock=lambda o=offset: time.time() + o)
        attempt(label + " timestamp", lambda c=made_ctxt, a=made_args: raw.call(
            c, "object_class_action_versions", **a))
    for label, field, value in (
            ("not base64", "sig", "%%%"), ("oversized", "sig", "A" * 100000),
            ("wrong type", "ts", "soon"), ("unknown key id", "k", "k-none"),
            ("claims host A", "p", "host:" + world["host_a"]),
            ("claims admin", "p", "admin"),
            ("claims host A in capitals", "p", "host:" + world["host_a"].upper()),
            ("claims host A with a space", "p", "host:" + world["host_a"] + " "),
            ("claims host A with a NUL", "p", "host:" + world["host_a"] + "\0"),
            ("claims a look-alike of A", "p",
             "host:" + world["host_a"].replace("a", "\u0430"))):
        made_ctxt, made_args = _signed("object_class_action_versions", request)
        made_ctxt[signing.FIELD][field] = value
        attempt("malformed: " + label, lambda c=made_ctxt, a=made_args: raw.call(
            c, "object_class_action_versions", **a))
    attempt("signature not a dict", lambda: raw.call(
        {signing.FIELD: "x" * 5000}, "object_class_action_versions", **request))

    # -- the broker: B's own user ------------------------------------------------
    url = messaging.TransportURL.parse(CONF, CONF.transport_url)
    host = url.hosts[0]
    broker = kombu.Connection(
        hostname=host.hostname, port=host.port, userid=host.username,
        password=host.password, virtual_host=url.virtual_host,
        transport_options={"confirm_publish": True})
    exchange = kombu.Exchange(CONF.control_exchange, type="topic",
                              durable=False)

    def publish(routing_key: str) -> Any:
        def run() -> None:
            with broker.clone() as conn:
                producer = conn.Producer()
                producer.publish({"oslo.message": "{}"}, exchange=exchange,
                                 routing_key=routing_key, declare=[exchange])
        return run

    def bind(queue: str, routing_key: str) -> Any:
        def run() -> None:
            with broker.clone() as conn:
                kombu.Queue(queue, exchange=exchange, routing_key=routing_key,
                            durable=False)(conn.channel()).declare()
        return run

    attempt("broker: publish to compute." + world["host_a"],
            publish("%s.%s" % (CONF.compute.topic, world["host_a"])))
    attempt("broker: consume the conductor queue",
            bind(CONF.conductor.topic, CONF.conductor.topic))
    attempt("broker: bind its queue to the conductor topic",
            bind("%s.%s" % (CONF.compute.topic, CONF.host), CONF.conductor.topic))
    attempt("broker: publish to the conductor", publish(CONF.conductor.topic))
    def reply_queue(action: str, queue: str) -> Any:
        """What B's broker user may do to a reply queue (A's real one)."""
        def run() -> None:
            with broker.clone() as conn:
                channel = conn.channel()
                if action == "declare":
                    channel.queue_declare(queue, auto_delete=True)
                elif action == "consume":
                    channel.basic_consume(queue, callback=lambda m: None)
                else:
                    channel.queue_bind(queue, CONF.control_exchange,
                                       routing_key=CONF.conductor.topic)
        return run

    for action in ("declare", "consume", "bind"):
        attempt("broker: %s A's reply queue" % action,
                reply_queue(action, world["reply_a"]))
    attempt("broker: declare a reply queue of A",
            reply_queue("declare", "reply_%s:novalet-compute:x" % world["host_a"]))
    attempt("broker: declare its own reply queue",
            reply_queue("declare", "reply_%s:novalet-compute:x" % CONF.host))
    attempt("broker: consume A's queue", bind(
        "%s.%s" % (CONF.compute.topic, world["host_a"]),
        "%s.%s" % (CONF.compute.topic, world["host_a"])))

    def into_a_queue() -> None:
        """terminate_instance put straight into A's queue through the
        default exchange (which the broker allows: every RPC server replies
        through it), signed with B's key, and unsigned."""
        from oslo_messaging._drivers import common as wire

        instance = objects.Instance.get_by_uuid(ctxt, world["instance_a"])
        for signed in (True, False):
            args = {"instance": instance.obj_to_primitive(),
                    "clean_shutdown": False}
            ctxt_wire, args = (_signed("terminate_instance", args,
                                       version="1.1", server=world["host_a"],
                                       topic=CONF.compute.topic) if signed
                               else ({"is_admin": True}, args))
            msg = {"method": "terminate_instance", "args": args,
                   "version": "1.1", "_unique_id": uuid.uuid4().hex}
            msg.update(("_context_%s" % k, v) for k, v in ctxt_wire.items())
            with broker.clone() as conn:
                conn.Producer().publish(
                    wire.serialize_msg(msg), exchange="",
                    routing_key="%s.%s" % (CONF.compute.topic,
                                           world["host_a"]))

    attempt("broker: into A's queue by the default exchange", into_a_queue)

    takeover(ctxt, world)

    # -- after all that, B still works as a caller --------------------------------
    attempt("read after the attacks", lambda: objects.Service.get_by_id(
        ctxt, world["service_a"]))

    # -- last: a flood of casts dated as far ahead as accepted, to fill the
    # conductor's replay cache (B's own later requests may be refused) ------
    def flood() -> None:
        """``world["flood"]`` casts dated 4.5 s ahead of now, then a few
        dated now: older than the flood's oldest, which it forgot."""
        raw = _raw()
        request = _get_by_id(world["service_a"])
        base = time.time()
        for count, ahead in ((world["flood"], 4.5), (20, 0.0)):
            for _ in range(count):
                made_ctxt, made_args = _signed(
                    "object_class_action_versions", request,
                    clock=lambda a=ahead: base + a)
                raw.cast(made_ctxt, "object_class_action_versions",
                         **made_args)

    attempt("flood of future-dated casts", flood)
    print(json.dumps(RESULTS))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
