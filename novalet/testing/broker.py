"""What the ``rpc`` path of ``novalet.testing`` makes on the broker, and
its removal after the test.

The path's conductor listens on a topic of the test's own,
``novalet-testing-<uuid>``, published through an exchange of the same name
(``control_exchange``, also the test's own): oslo.messaging's rabbit driver
declares the queues ``T`` and ``T.<server>`` bound to it, the fanout
exchange ``T_fanout`` and its queue ``T_fanout_<id>``, and the caller's
reply queue ``reply_<host>:<binary>:<id>``. ``delete(url, topic, server)`` deletes the
named ones with plain AMQP (no management plugin needed): the queues, then
the two exchanges. The fanout and reply queues, whose names the driver
draws at random, are made to expire one second after their last use
(``[oslo_messaging_rabbit] rabbit_transient_queues_ttl``, see
``transient_ttl``).
"""

from __future__ import annotations

from typing import Any

#: Seconds an unused fanout or reply queue of a test lives on the broker.
TRANSIENT_TTL = 1


def transient_ttl(conf: Any, overrides: Any) -> None:
    """Make the test's fanout and reply queues expire ``TRANSIENT_TTL``
    seconds after their last use; ``overrides`` is the test's
    ``novalet_conf`` (cleared after it). After ``novalet.rpc.init`` (which
    registers the rabbit driver's options) and before any connection is
    made (the server's start, the first call); nothing on other drivers."""
    if ("oslo_messaging_rabbit" not in conf or "rabbit_transient_queues_ttl"
            not in conf.oslo_messaging_rabbit):
        return  # not the rabbit driver
    overrides("rabbit_transient_queues_ttl", TRANSIENT_TTL,
              "oslo_messaging_rabbit")


def _kombu_url(conf: Any, url: str) -> str | None:
    """The first broker host of an oslo.messaging rabbit URL, as kombu
    takes it (None for another driver)."""
    import oslo_messaging as messaging

    parsed = messaging.TransportURL.parse(conf, url)
    if parsed.transport != "rabbit" or not parsed.hosts:
        return None
    host = parsed.hosts[0]
    from urllib import parse

    credentials = ""
    if host.username:
        credentials = parse.quote(host.username, safe="")
        if host.password:
            credentials += ":" + parse.quote(host.password, safe="")
        credentials += "@"
    vhost = parse.quote(parsed.virtual_host or "/", safe="")
    return "amqp://%s%s:%s/%s" % (credentials, host.hostname,
                                  host.port or 5672, vhost)


def delete(conf: Any, url: str, topic: str, server: str) -> list[str]:
    """Delete the queues ``topic`` and ``topic.server`` and the exchanges
    ``topic`` and ``topic_fanout`` on the broker of ``url``; returns what
    it deleted (one that is gone already is skipped). Nothing for a
    transport other than RabbitMQ."""
    import amqp.exceptions
    import kombu

    kombu_url = _kombu_url(conf, url)
    if kombu_url is None:
        return []
    ssl = bool(getattr(conf.oslo_messaging_rabbit, "ssl", False))
    deleted = []
    with kombu.Connection(kombu_url, ssl=ssl, connect_timeout=10) as connection:
        for kind, name in (("queue", topic), ("queue", "%s.%s" % (topic, server)),
                           ("exchange", topic),
                           ("exchange", "%s_fanout" % topic)):
            channel = connection.channel()
            try:
                if kind == "queue":
                    channel.queue_delete(name)
                else:
                    channel.exchange_delete(name)
                deleted.append("%s %s" % (kind, name))
            except amqp.exceptions.NotFound:
                pass  # gone already (the broker closed this channel)
            finally:
                try:
                    channel.close()
                except Exception:  # closed by the broker's refusal
                    pass
    return deleted
