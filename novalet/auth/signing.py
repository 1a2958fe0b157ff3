"""Signing a request and verifying one, before anything in it is rebuilt.

A signed request carries, in its context under ``novalet_auth``::

    {"v": 1, "k": key id, "p": "admin" | "host:NAME", "ts": milliseconds,
     "n": nonce, "t": topic, "s": server or null, "sig": base64}

``sig`` is HMAC-SHA256, with the key ``KeyRing`` picks, over the canonical
JSON (sorted keys, no spaces, ASCII) of the method, the version and
namespace the message carries, the arguments exactly as they travel, the
rest of the context, and every other field above. The arguments travel as
the signer read them back from JSON, so both ends hash the same values.

The receiver (``Verifier.verify``) checks, cheapest first: the shape and
sizes of the field, the principal's form, the timestamp against its clock
(``[auth] timestamp_window`` either way), that it may verify that key for
that principal, the topic and server (its own), the signature itself, and
last the nonce (``ReplayCache``: a request seen once is refused again).
Only then is a ``Principal`` made; the RPC server puts it on the context.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from oslo_log import log as logging

from novalet import exception
from novalet.auth import keys as keys_mod
from novalet.auth import principal as principal_mod
from novalet.auth.principal import Principal

LOG = logging.getLogger(__name__)

#: The context key of the signature.
FIELD = "novalet_auth"
VERSION = 1

#: Context keys oslo.messaging adds on the way, after the signature was made
#: (its AMQP drivers: the caller's timeout; its OpenTelemetry tracing: the
#: trace headers); left out of what is signed (and ignored by the context).
TRANSPORT_KEYS = frozenset({"client_timeout", "msg_id", "reply_q",
                            "traceparent", "tracestate", "baggage"})

_FIELDS = frozenset({"v", "k", "p", "ts", "n", "t", "s", "sig"})
_MAX_TEXT = 300
_SIG_BYTES = hashlib.sha256().digest_size


def canonical(value: Any) -> bytes:
    """The bytes both ends hash: canonical JSON of ``value``."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"),
                      ensure_ascii=True, allow_nan=True).encode()


def wire_form(value: Any) -> Any:
    """``value`` as it reads after a JSON round trip (what a receiver gets
    over a real transport: tuples as lists, keys as strings, ...)."""
    from oslo_serialization import jsonutils

    return json.loads(jsonutils.dumps(value))


def _payload(message: dict[str, Any], context: dict[str, Any],
             fields: dict[str, Any]) -> bytes:
    return canonical({
        "m": message.get("method"), "v": message.get("version"),
        "ns": message.get("namespace"), "a": message.get("args", {}),
        "c": {k: v for k, v in context.items()
              if k != FIELD and k not in TRANSPORT_KEYS},
        "f": {k: v for k, v in fields.items() if k != "sig"}})


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, payload, hashlib.sha256).digest()


class Signer:
    """Signs requests with a ``KeyRing``; ``clock`` returns seconds."""

    def __init__(self, ring: keys_mod.KeyRing,
                 clock: Callable[[], float] = time.time) -> None:
        self.ring = ring
        self.clock = clock

    @property
    def principal(self) -> Principal:
        return self.ring.principal

    def sign(self, *, method: str, version: str | None,
             namespace: str | None, topic: str, server: str | None,
             args: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
        """The signature field for this request (``args`` and ``context``
        in their wire form). Raises ``InvalidHostName`` for an admin request
        to a server whose name is not canonical."""
        principal, key_id, key = self.ring.signing(topic, server)
        fields = {"v": VERSION, "k": key_id, "p": principal.wire_name(),
                  "ts": int(self.clock() * 1000),
                  "n": secrets.token_urlsafe(16), "t": topic, "s": server}
        message = {"method": method, "version": version,
                   "namespace": namespace, "args": args}
        fields["sig"] = base64.b64encode(
            _mac(key, _payload(message, context, fields))).decode()
        return fields


class ReplayCache:
    """The nonces of requests seen within the window, bounded: when full,
    the oldest are forgotten and anything signed at or before them is
    refused from then on (``floor``), so a forgotten nonce cannot come back.
    Thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._seen: dict[str, int] = {}
        self._heap: list[tuple[int, str]] = []
        self.floor = -1
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, nonce: str, ts: int, oldest_valid: int) -> str | None:
        """Record ``nonce`` signed at ``ts``; returns why it is refused
        (seen before, or older than what was forgotten), else None.
        Entries signed before ``oldest_valid`` are dropped."""
        with self._lock:
            heap, seen = self._heap, self._seen
            while heap and heap[0][0] < oldest_valid:
                _, old = heapq.heappop(heap)
                seen.pop(old, None)
            if nonce in seen:
                return "replayed (this signature was used before)"
            if ts <= self.floor:
                return "signed before the oldest signature this process " \
                       "still remembers (replay cache full)"
            while len(seen) >= self.max_entries:
                old_ts, old = heapq.heappop(heap)
                seen.pop(old, None)
                self.floor = max(self.floor, old_ts)
            if ts <= self.floor:
                return "signed before the oldest signature this process " \
                       "still remembers (replay cache full)"
            seen[nonce] = ts
            heapq.heappush(heap, (ts, nonce))
            return None


class RefusalLog:
    """One warning per kind of refusal per ``interval`` seconds, with how
    many were not logged since: a flood of bad requests cannot flood the
    log."""

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[str, float] = {}
        self._quiet: dict[str, int] = {}
        self._lock = threading.Lock()

    def warn(self, kind: str, message: str, *args: Any) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._last) > 256:
                self._last.clear()
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._quiet[kind] = self._quiet.get(kind, 0) + 1
                return False
            self._last[kind] = now
            quiet = self._quiet.pop(kind, 0)
        if quiet:
            message += " (%d more like it not logged in the last %ds)" % (
                quiet, self.interval)
        LOG.warning(message, *args)
        return True


def _text(fields: dict[str, Any], name: str, *, nullable: bool = False) -> Any:
    value = fields[name]
    if value is None and nullable:
        return None
    if type(value) is not str or not value or len(value) > _MAX_TEXT:
        raise exception.SignatureRefused(
            reason="malformed signature (field %s)" % name)
    return value


def parse_principal(text: str) -> Principal:
    """``admin`` or ``host:NAME`` (canonical) as a ``Principal``; raises
    ``SignatureRefused``."""
    if text == principal_mod.ADMIN:
        return principal_mod.admin()
    kind, _, name = text.partition(":")
    if kind == principal_mod.HOST and keys_mod.is_canonical_host(name):
        return principal_mod.host(name)
    raise exception.SignatureRefused(
        reason="malformed signature (principal %r)" % text[:80])


class Verifier:
    """Verifies the requests one RPC server receives (its ``topic`` and
    ``server`` name). ``ring`` None: this process holds no key and can verify
    nothing (unsigned requests only, when not enforced)."""

    def __init__(self, ring: keys_mod.KeyRing | None, *, topic: str,
                 server: str | None, window: Callable[[], float],
                 enforce: Callable[[], bool], replay: ReplayCache,
                 local: bool = False, clock: Callable[[], float] = time.time,
                 refusals: RefusalLog | None = None) -> None:
        self.ring = ring
        self.local = local
        self.topic = topic
        self.server = server
        self.window = window
        self.enforce = enforce
        self.replay = replay
        self.clock = clock
        self.refusals = refusals or RefusalLog()
        self.unsigned_accepted = 0
        self.refused = 0

    def verify(self, message: dict[str, Any], context: Any) -> Principal | None:
        """The verified principal of a received request (``message``: its
        method, version, namespace and args; ``context``: its context dict,
        as received). Unsigned: refused when enforced, else
        ``UNSIGNED_PRINCIPAL``, or None (a local caller) when this server
        runs on an in-process transport (``local``). Raises
        ``SignatureRefused``; nothing is rebuilt before."""
        try:
            return self._verify(message, context)
        except exception.SignatureRefused as e:
            refused = e
        self.refused += 1
        reason = str(refused.kwargs.get("reason", refused.message))
        # One line per kind of refusal (its first words) and interval.
        self.refusals.warn(
            "refused: " + " ".join(reason.split()[:2]),
            "Refused a %s request to %s: %s",
            str(message.get("method"))[:64] if isinstance(message, dict)
            else "malformed", self.topic, reason)
        raise refused

    def _verify(self, message: Any, context: Any) -> Principal | None:
        if not isinstance(message, dict) or not isinstance(context, dict):
            raise exception.SignatureRefused(reason="malformed request")
        fields = context.get(FIELD)
        if fields is None:
            if self.local:
                return None
            if self.enforce():
                raise exception.SignatureRefused(
                    reason="unsigned ([auth] enforce is true on %s)"
                    % self.topic)
            self.unsigned_accepted += 1
            self.refusals.warn("unsigned", "Accepted an unsigned %s request "
                               "to %s ([auth] enforce is false)",
                               str(message.get("method"))[:64], self.topic)
            return principal_mod.UNSIGNED_PRINCIPAL
        if type(fields) is not dict or set(fields) != _FIELDS:
            raise exception.SignatureRefused(reason="malformed signature")
        if fields["v"] != VERSION or type(fields["v"]) is not int:
            raise exception.SignatureRefused(
                reason="unknown signature version %r" % (fields["v"],))
        key_id = _text(fields, "k")
        principal = parse_principal(_text(fields, "p"))
        nonce = _text(fields, "n")
        topic = _text(fields, "t")
        server = _text(fields, "s", nullable=True)
        ts = fields["ts"]
        if type(ts) is not int:
            raise exception.SignatureRefused(
                reason="malformed signature (field ts)")
        now = int(self.clock() * 1000)
        window = int(self.window() * 1000)
        if ts < now - window:
            raise exception.SignatureRefused(
                reason="stale signature (%.1fs old, the window is %ds)"
                % ((now - ts) / 1000, window // 1000))
        if ts > now + window:
            raise exception.SignatureRefused(
                reason="signature from the future (%.1fs ahead)"
                % ((ts - now) / 1000))
        if topic != self.topic or server not in (None, self.server):
            raise exception.SignatureRefused(
                reason="signed for another server (%s/%s)" % (topic, server))
        key = None
        if self.ring is not None:
            try:
                key = self.ring.verifying(key_id, principal, topic, server)
            except exception.InvalidHostName:
                key = None
        if key is None:
            raise exception.SignatureRefused(
                reason="unknown key %r for %s" % (key_id[:64], principal))
        try:
            sig = base64.b64decode(_text(fields, "sig"), validate=True)
        except (binascii.Error, ValueError):
            raise exception.SignatureRefused(
                reason="malformed signature (not base64)")
        if len(sig) != _SIG_BYTES:
            raise exception.SignatureRefused(
                reason="malformed signature (wrong length)")
        if not hmac.compare_digest(sig, _mac(key, _payload(message, context,
                                                           fields))):
            raise exception.SignatureRefused(
                reason="bad signature (the request was changed, or signed "
                       "with another key)")
        why = self.replay.check_and_add(nonce, ts, now - window)
        if why is not None:
            raise exception.SignatureRefused(reason=why)
        return principal
