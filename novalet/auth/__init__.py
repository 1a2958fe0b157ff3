"""The verified caller: who sends each RPC request, checked by its receiver.

Every request a process sends is signed when it holds a key (``[auth]
key_file``: as its host; ``[auth] master_key_file``: as the admin); the
receiving RPC server verifies the signature before any object in it is
rebuilt and puts the verified ``Principal`` on the request context
(``RequestContext.principal``), never one read from the wire. Writes are
then scoped to the principal's host where the rows are written
(``novalet.db.scope``). See ``keys`` (key files and derivation), ``signing``
(the signature and its checks) and ``principal``.

``configure(conf)`` reads the key files once per process (``novalet.rpc.init``
calls it); ``reset()`` forgets them (``novalet.rpc.cleanup``).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from oslo_config import cfg

from novalet.auth import keys, principal, signing
from novalet.auth.principal import Principal

_lock = threading.Lock()
_ring: keys.KeyRing | None = None
_signer: signing.Signer | None = None
_replay: signing.ReplayCache | None = None
_configured = False


def configure(conf: cfg.ConfigOpts) -> None:
    """Read ``[auth] master_key_file`` and ``key_file`` (once until
    ``reset``). Raises ``AuthKeyError`` for a file that cannot be used, and
    ``ConfigurationError`` when ``key_file`` names another host than
    ``[DEFAULT] host``."""
    global _ring, _signer, _replay, _configured
    with _lock:
        if _configured:
            return
        ring = keys.KeyRing.from_files(conf.auth.master_key_file,
                                       conf.auth.key_file,
                                       conf.conductor.topic)
        if ring is not None and ring.host is not None and ring.host != conf.host:
            from novalet import exception

            raise exception.ConfigurationError(
                reason="[auth] key_file %s is the key of host %s, but [DEFAULT] "
                       "host is %r" % (conf.auth.key_file, ring.host, conf.host))
        _ring = ring
        _signer = signing.Signer(ring) if ring is not None else None
        _replay = signing.ReplayCache(conf.auth.replay_cache_size)
        _configured = True


def reset() -> None:
    global _ring, _signer, _replay, _configured
    with _lock:
        _ring = _signer = _replay = None
        _configured = False


def signer() -> signing.Signer | None:
    """This process's signer (None: it holds no key and does not sign)."""
    return _signer


def verifier(conf: cfg.ConfigOpts, *, topic: str, server: str | None,
             in_process: bool) -> signing.Verifier:
    """A verifier for an RPC server on ``topic``/``server``; ``in_process``
    (``fake://``): unsigned requests come from this process, local callers
    (no principal), never refused."""
    if not _configured:
        configure(conf)
    replay = _replay or signing.ReplayCache(conf.auth.replay_cache_size)
    return signing.Verifier(
        _ring, topic=topic, server=server,
        window=lambda: float(conf.auth.timestamp_window),
        future_window=lambda: float(min(conf.auth.max_clock_ahead,
                                        conf.auth.timestamp_window)),
        enforce=lambda: bool(conf.auth.enforce), replay=replay,
        local=in_process)


def can_sign() -> bool:
    return _signer is not None


def check_service(conf: cfg.ConfigOpts, binary: str, *, verifies_all: bool,
                  in_process: bool) -> None:
    """Raise ``ConfigurationError`` (or ``AuthKeyError``) when a service
    cannot work with its keys: a key file it cannot use, a host key of
    another host, or, on a real transport with ``[auth] enforce`` true, a
    conductor (``verifies_all``) without the master key or a compute
    without a key to sign with."""
    from novalet import exception

    configure(conf)
    if in_process or not conf.auth.enforce:
        return
    if verifies_all and not conf.auth.master_key_file:
        raise exception.ConfigurationError(
            reason="[auth] enforce is true, so %s verifies every request: it "
                   "needs [auth] master_key_file (novalet-manage auth init)"
                   % binary)
    if not verifies_all and not (conf.auth.key_file
                                 or conf.auth.master_key_file):
        raise exception.ConfigurationError(
            reason="[auth] enforce is true, so %s must sign its requests: set "
                   "[auth] key_file (novalet-manage auth host-key %s --output "
                   "FILE)" % (binary, conf.host))


__all__ = ["Principal", "can_sign", "check_service", "configure", "keys", "principal", "reset",
           "signer", "signing", "verifier"]


def delivery_key(principal: Any, context: Any) -> str | None:
    """What names one signed request whichever time and to whichever server
    the broker delivers it: a digest of its verified principal and signed
    nonce (None for an unsigned or local request). A non-idempotent write
    records it, so a message the broker delivers twice (a connection lost
    before its acknowledgement) is not applied twice."""
    if principal is None or not isinstance(context, dict):
        return None
    fields = context.get(signing.FIELD)
    if not isinstance(fields, dict) or not isinstance(fields.get("n"), str):
        return None
    return hashlib.sha256(("%s\0%s" % (principal.wire_name(), fields["n"]))
                          .encode()).hexdigest()
