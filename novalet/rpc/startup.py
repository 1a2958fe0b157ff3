"""Start-up checks of a service's transport: the broker answers (through
oslo.messaging's own connection settings) and the keys ``[auth]`` needs
are there; what the URL names, with its passwords masked."""

from __future__ import annotations

import os
import time
from typing import Any
from urllib.parse import quote

import oslo_messaging as messaging
from oslo_config import cfg
from oslo_log import log as logging

from novalet import auth, exception
from novalet.logs import is_secret_name

LOG = logging.getLogger(__name__)


def url_host(hostname: str | None) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    name = hostname or ""
    return "[%s]" % name if ":" in name else name


def masked_transport_url(conf: cfg.ConfigOpts) -> str:
    """``transport_url`` as it may be printed or logged: every host's
    password and every secret query argument (``novalet.logs
    .is_secret_name``) replaced by ``***``; other query arguments kept."""
    try:
        url = messaging.TransportURL.parse(conf, conf.transport_url)
    except messaging.InvalidTransportURL:
        return "<invalid transport_url>"
    hosts = ",".join(
        "%s%s%s%s" % (quote(h.username or "", safe=""),
                      ":***" if h.password else "",
                      "@" if h.username else "", url_host(h.hostname))
        + (":%s" % h.port if h.port else "")
        for h in url.hosts)
    query = "&".join(
        "%s=%s" % (quote(key, safe=""),
                   "***" if is_secret_name(key) else quote(str(value), safe=""))
        for key, value in sorted((url.query or {}).items()))
    return "%s://%s/%s%s" % (url.transport, hosts,
                             quote(url.virtual_host or "", safe=""),
                             "?" + query if query else "")


#: The prefix of the topics ``check_broker`` casts to (nobody listens).
STARTUP_CHECK_TOPIC = "novalet-startup-check-"

#: Transports that run in this process: no broker to check.
IN_PROCESS_TRANSPORTS = ("fake",)


def is_in_process(conf: cfg.ConfigOpts) -> bool:
    """Whether ``transport_url`` names a transport inside this process
    (``fake://``: no broker, no other process can reach it)."""
    try:
        url = messaging.TransportURL.parse(conf, conf.transport_url)
    except messaging.InvalidTransportURL:
        return False
    return url.transport in IN_PROCESS_TRANSPORTS or url.transport is None


def check_auth(conf: cfg.ConfigOpts, binary: str, *, verifies_all: bool) -> None:
    """``novalet.auth.check_service`` for this process's transport."""
    auth.check_service(conf, binary, verifies_all=verifies_all,
                       in_process=is_in_process(conf))


def check_broker(conf: cfg.ConfigOpts, timeout: float) -> None:
    """Wait up to ``timeout`` seconds until ``transport_url``'s broker takes
    a message; raises ``BrokerUnavailable`` (the masked URL, the last error
    in one line, a hint when a TLS port is reached without ``ssl``).

    It goes through oslo.messaging itself, so it reaches the broker exactly
    as the service will: ``[oslo_messaging_rabbit]`` ``ssl``, ``ssl_ca_file``,
    ``ssl_cert_file``, ``ssl_key_file``, heartbeats, the login method and
    every host of the URL (the driver's failover order). A transport of its
    own sends one ``cast`` to a topic nobody listens on (the broker drops
    it), with the client's public ``retry`` bound instead of the driver's
    retry-forever default; the transport is closed again. The in-process
    ``fake://`` transport needs no broker.
    """
    url = messaging.TransportURL.parse(conf, conf.transport_url)
    if url.transport in IN_PROCESS_TRANSPORTS or url.transport is None:
        return
    masked = masked_transport_url(conf)
    transport = messaging.get_rpc_transport(conf)
    try:
        check_queue_manager(conf)
        # One round tries every host once (the driver fails over in order).
        client = messaging.get_rpc_client(
            transport, messaging.Target(
                topic=STARTUP_CHECK_TOPIC + os.urandom(6).hex()),
            retry=max(0, len(url.hosts) - 1))
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.cast({}, "novalet_startup_check")
                return
            except Exception as e:  # the driver's and kombu's own errors
                last = e
                LOG.debug("Broker %s not reachable yet", masked, exc_info=True)
            if time.monotonic() + 1.0 > deadline:
                raise exception.BrokerUnavailable(
                    url=masked, reason=_broker_reason(conf, url, last))
            time.sleep(1.0)
    finally:
        transport.cleanup()


def check_queue_manager(conf: cfg.ConfigOpts) -> None:
    """Raise ``ConfigurationError`` when ``[oslo_messaging_rabbit]
    use_queue_manager`` is on without ``[oslo_concurrency] lock_path``:
    oslo.messaging guards its per-host queue counter with a file lock
    there, and would fail with a traceback at the first call instead.
    (The rabbit driver's options exist once its transport was made.)"""
    rabbit = getattr(conf, "oslo_messaging_rabbit", None)
    if rabbit is None or not getattr(rabbit, "use_queue_manager", False):
        return
    from oslo_concurrency import lockutils

    if not lockutils.get_lock_path(conf):
        raise exception.ConfigurationError(
            reason="[oslo_messaging_rabbit] use_queue_manager = true needs "
                   "[oslo_concurrency] lock_path (a directory for the file "
                   "lock of its per-host queue counter)")


def _broker_reason(conf: cfg.ConfigOpts, url: Any, error: Exception) -> str:
    """The error's first line, and what to check for its usual causes."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    lowered = text.lower()
    rabbit = getattr(conf, "oslo_messaging_rabbit", None)
    if url.transport != "rabbit" or rabbit is None:
        return text
    if not rabbit.ssl and any(word in lowered for word in (
            "socket closed", "connection reset", "eof", "timed out",
            "closed the connection", "unexpectedly closed")):
        return text + (" (if that port speaks TLS, as production brokers do "
                       "on 5671, set [oslo_messaging_rabbit] ssl = true and "
                       "ssl_ca_file)")
    if rabbit.ssl and ("certificate" in lowered or "ssl" in lowered):
        return text + (" (check [oslo_messaging_rabbit] ssl_ca_file, "
                       "ssl_cert_file and ssl_key_file)")
    return text


