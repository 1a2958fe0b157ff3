"""``novalet-manage auth``: the keys requests are signed with, and a host's
broker user.

    auth init [--rotate]              write [auth] master_key_file (mode 0600)
    auth retire KEY_ID                drop an old master key after a rotation
    auth host-key HOST --output FILE  HOST's key file (mode 0600)
    auth rabbitmq HOST [--password P] [-n NODE]
                                      the rabbitmqctl commands of HOST's
                                      broker user, its vhost and its URL

``init`` refuses a master key file that exists (``--rotate`` adds a new
key that signs from then on, keeping the others for verification; reissue
every host key, then ``retire`` the old one). ``host-key`` needs the master
key file and nothing else: host keys are derived from it. ``rabbitmq``
prints commands, runs nothing: the vhost (``add_vhost`` changes nothing
when it exists), a user named after the host, allowed to publish only to
the conductor topic and to bind only its own compute queue, the admin
user's commands (as a comment: it exists already where conductors run), and
the host's ``transport_url`` with its credentials on every broker host. It
refuses (exit 2, a warning) when ``transport_url`` names no RabbitMQ broker
rather than print commands for vhost ``/``.
Exit codes as every command's: 1 refused (the file exists), 2 a bad host
name, a missing or unusable key file or option.
"""

from __future__ import annotations

import os
import re
import secrets
import shlex
import sys
from typing import Any
from urllib.parse import quote

import oslo_messaging as messaging

from novalet import auth, exception, rpc
from novalet import conf as novalet_conf
from novalet.rpc import replies

BINARY = "novalet-manage"


def _master_path() -> str:
    path = novalet_conf.CONF.auth.master_key_file
    if not path:
        raise exception.ConfigurationError(
            reason="[auth] master_key_file is not set: say where the master "
                   "key lives in the configuration")
    return str(path)


def _host(name: str) -> str:
    try:
        return auth.keys.canonical_host(name)
    except exception.InvalidHostName as e:
        raise exception.ConfigurationError(reason=e.message)


def init_master(args: Any) -> int:
    """Write a new master key file (``--rotate``: add a signing key)."""
    path = _master_path()
    if not args.rotate:
        if os.path.lexists(path):
            raise exception.Conflict(
                reason="%s exists already (novalet-manage auth init --rotate "
                       "adds a new key to it)" % path)
    key_id = auth.keys.init_master(path, rotate=args.rotate)
    print("%s master key %s in %s (mode 0600)" % (
        "Added" if args.rotate else "Wrote", key_id, path))
    if args.rotate:
        print("Copy it to every conductor and admin host, write every host "
              "key again (novalet-manage auth host-key), then retire the old "
              "key(s) with novalet-manage auth retire KEY_ID.")
    return 0


def retire_master(args: Any) -> int:
    """Remove an old key from the master key file."""
    path = _master_path()
    auth.keys.retire_master(path, args.key_id)
    print("Removed master key %s from %s" % (args.key_id, path))
    return 0


def host_key(args: Any) -> int:
    """Write HOST's key file, derived from the master key."""
    host = _host(args.auth_host)
    if os.path.lexists(args.output):
        raise exception.Conflict(reason="%s exists already" % args.output)
    key_ids = auth.keys.write_host_key(_master_path(), host, args.output)
    print("Wrote the key of %s (key %s) to %s (mode 0600): set [auth] "
          "key_file = %s on %s" % (host, ", ".join(key_ids), args.output,
                                   args.output, host))
    return 0


def rabbitmq_commands(conf: Any, host: str, password: str) -> list[str]:
    """The ``rabbitmqctl`` commands that give ``host`` its own broker user:
    it may declare, bind and consume its own compute queues and its own
    reply queues (``reply_<host>:...``, ``novalet.rpc.replies``: not
    another host's, whose names its own is no prefix of), and publish
    only to the conductor topic of the control exchange (and to the
    throwaway topics of the start-up broker check, which no queue of a
    host can bind).

    It also writes to the default exchange, as every oslo.messaging RPC
    server must to reply; that exchange reaches any queue by name, so the
    broker does not stop a host from putting a message into another's
    queue that way: the signature does (a compute verifies only requests
    made with its own key)."""
    url = messaging.TransportURL.parse(conf, conf.transport_url)
    vhost = url.virtual_host or "/"
    exchange = conf.control_exchange
    compute, conductor = conf.compute.topic, conf.conductor.topic
    esc = re.escape
    own = "%s|%s|%s\\.%s|%s_fanout|%s_fanout_.*|%s" % (
        esc(exchange), esc(compute), esc(compute), esc(host), esc(compute),
        esc(compute), replies.reply_queue_pattern(host))
    resources = "^(%s)$" % own
    # Replies go out through the default exchange (oslo.messaging's
    # direct_send): writing to it is needed to answer an admin's call.
    writes = "^(%s|amq\\.default)$" % own
    q = shlex.quote
    return [
        "rabbitmqctl add_user %s %s" % (q(host), q(password)),
        "rabbitmqctl set_permissions -p %s %s %s %s %s" % (
            q(vhost), q(host), q(resources), q(writes), q(resources)),
        "rabbitmqctl set_topic_permissions -p %s %s %s %s %s" % (
            q(vhost), q(host), q(exchange),
            q("^(%s|%s.*)$" % (esc(conductor), esc(rpc.STARTUP_CHECK_TOPIC))),
            q("^%s(\\.%s)?$" % (esc(compute), esc(host)))),
    ]


def _ctl(node: str | None) -> str:
    return "rabbitmqctl -n %s" % shlex.quote(node) if node else "rabbitmqctl"


def host_transport_url(url: Any, host: str, password: str) -> str:
    """The ``transport_url`` of ``host``'s own broker user: its credentials
    on every broker host of ``url`` (URL-quoted; IPv6 hosts bracketed), so
    a failover never logs in as anyone else."""
    user = "%s:%s@" % (quote(host, safe=""), quote(password, safe=""))
    hosts = ",".join("%s%s:%s" % (user, rpc.url_host(h.hostname), h.port or 5672)
                     for h in url.hosts)
    return "rabbit://%s/%s" % (hosts, quote(url.virtual_host or "", safe=""))


def rabbitmq(args: Any) -> int:
    """Print the broker user commands of HOST."""
    host = _host(args.auth_host)
    conf = novalet_conf.CONF
    url = messaging.TransportURL.parse(conf, conf.transport_url)
    if url.transport != "rabbit" or not url.hosts:
        print("%s: warning: [DEFAULT] transport_url is %s, not a RabbitMQ "
              "broker: set the one the computes use in the configuration "
              "(its vhost and hosts are what the commands need); nothing "
              "printed" % (BINARY, "not set" if conf.transport_url ==
                           novalet_conf.DEFAULT_TRANSPORT_URL else
                           rpc.masked_transport_url(conf)), file=sys.stderr)
        return 2
    password = args.password or secrets.token_urlsafe(18)
    vhost = url.virtual_host or "/"
    ctl, q = _ctl(args.node), shlex.quote
    if len(url.hosts) > 1 and not args.node:
        print("# users, vhosts and permissions are the cluster's: run these "
              "on any one node, or add -n rabbit@NODE (--node)")
    print("%s add_vhost %s" % (ctl, q(vhost)))
    for line in rabbitmq_commands(conf, host, password):
        print(line.replace("rabbitmqctl", ctl, 1))
    admin = url.hosts[0].username or "ADMIN"
    print("# conductors and admin hosts, once: %s add_user %s '<password>'; "
          "%s set_permissions -p %s %s '.*' '.*' '.*'" % (
              ctl, q(admin), ctl, q(vhost), q(admin)))
    print("# on %s: transport_url = %s" % (
        host, host_transport_url(url, host, password)))
    return 0


def add_parsers(subparsers: Any) -> None:
    """Add ``auth`` and its actions to the ``novalet-manage`` parser."""
    parser = subparsers.add_parser(
        "auth", help="signing keys and broker users: init, retire, host-key, "
                     "rabbitmq")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    init = actions.add_parser("init", help="write the master key file "
                                           "([auth] master_key_file)")
    init.add_argument("--rotate", action="store_true",
                      help="add a new signing key to an existing file")
    init.set_defaults(func=init_master)
    retire = actions.add_parser("retire", help="remove an old master key")
    retire.add_argument("key_id", metavar="KEY_ID")
    retire.set_defaults(func=retire_master)
    key = actions.add_parser("host-key", help="write one host's key file")
    key.add_argument("auth_host", metavar="HOST",
                     help="the host ([DEFAULT] host)")
    key.add_argument("--output", required=True, metavar="FILE",
                     help="the file to write (must not exist)")
    key.set_defaults(func=host_key)
    rabbit = actions.add_parser(
        "rabbitmq", help="print the rabbitmqctl commands of a host's broker "
                         "user")
    rabbit.add_argument("auth_host", metavar="HOST")
    rabbit.add_argument("--password", default=None,
                        help="its password (default: a random one, printed)")
    rabbit.add_argument("-n", "--node", default=None, metavar="NODE",
                        help="the RabbitMQ node rabbitmqctl talks to (e.g. "
                             "rabbit@rabbit1), when not run on one")
    rabbit.set_defaults(func=rabbitmq)


__all__ = ["add_parsers", "host_transport_url", "rabbitmq_commands"]
