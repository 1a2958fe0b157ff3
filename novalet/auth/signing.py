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
(``[auth] timestamp_window`` behind it, ``[auth] max_clock_ahead`` ahead of
it), that it may verify that key for that principal, the topic and server
(its own), the signature itself, and last the nonce (``ReplayCache``: a
request seen once is refused again; accounted per verified principal, so
one principal's flood never refuses another's requests).
Only then is a ``Principal`` made; the RPC server puts it on the context.

Replies. A signed call asks for an authenticated reply by carrying
``novalet_reply: 1`` in its (signed) context. The server seals its answer
(``seal_reply``) with the key the request verified with, which only the
caller and the master key's holders have::

    {"novalet_reply": {"v": 1, "k": "ok" | "err", "b": JSON text,
                       "mac": base64}}

``mac`` is HMAC-SHA256 over a label, the request's nonce, the kind and the
body text exactly as it travels; the caller checks it (``open_reply``)
before it parses the body. A reply made for another request, by another
key, or changed on the way is refused (``ReplyRefused``).
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

from novalet import exception, logs
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


#: The context key of a call asking for an authenticated reply, and the key
#: of the sealed reply.
REPLY_FIELD = "novalet_reply"
REPLY_VERSION = 1
REPLY_OK, REPLY_ERROR = "ok", "err"
_REPLY_FIELDS = frozenset({"v", "k", "b", "mac"})


def _reply_mac(key: bytes, nonce: str, kind: str, body: str) -> bytes:
    return _mac(key, b"novalet-reply\0%s\0%s\0%s" % (
        nonce.encode(), kind.encode(), body.encode()))


def reply_nonce(context: Any) -> str | None:
    """The nonce of a signed request (a verified context as received) that
    asks for an authenticated reply; None when it does not ask."""
    if not isinstance(context, dict) or context.get(REPLY_FIELD) != REPLY_VERSION:
        return None
    fields = context.get(FIELD)
    if not isinstance(fields, dict) or not isinstance(fields.get("n"), str):
        return None
    return fields["n"]  # type: ignore[no-any-return]


def seal_reply(key: bytes, nonce: str, kind: str, body: str) -> dict[str, Any]:
    """The reply to the request signed with ``nonce``: ``body`` (JSON
    text: the result, or the serialized error for ``REPLY_ERROR``) and its
    MAC under ``key``."""
    return {REPLY_FIELD: {
        "v": REPLY_VERSION, "k": kind, "b": body,
        "mac": base64.b64encode(_reply_mac(key, nonce, kind, body)).decode()}}


def is_sealed(reply: Any) -> bool:
    """Whether ``reply`` has the form of a sealed reply (checked or not)."""
    return type(reply) is dict and set(reply) == {REPLY_FIELD}


def open_reply(key: bytes, nonce: str, reply: Any) -> tuple[str, str]:
    """(kind, body text) of a sealed reply to the request signed with
    ``nonce`` and ``key``. Raises ``ValueError`` naming what is wrong: not
    sealed, malformed, or a MAC that does not verify (made for another
    request or with another key, or changed)."""
    if not is_sealed(reply):
        raise ValueError("not authenticated (no MAC)")
    sealed = reply[REPLY_FIELD]
    if type(sealed) is not dict or set(sealed) != _REPLY_FIELDS:
        raise ValueError("malformed authenticated reply")
    kind, body, mac = sealed["k"], sealed["b"], sealed["mac"]
    if (sealed["v"] != REPLY_VERSION or kind not in (REPLY_OK, REPLY_ERROR)
            or type(body) is not str or type(mac) is not str
            or len(mac) > 100):
        raise ValueError("malformed authenticated reply")
    try:
        got = base64.b64decode(mac, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("malformed authenticated reply (MAC not base64)")
    if not hmac.compare_digest(got, _reply_mac(key, nonce, kind, body)):
        raise ValueError("bad MAC (not sent for this call by the server it "
                         "called, or changed on the way)")
    return kind, body


class Signer:
    """Signs requests with a ``KeyRing``; ``clock`` returns seconds."""

    def __init__(self, ring: keys_mod.KeyRing,
                 clock: Callable[[], float] = time.time) -> None:
        self.ring = ring
        self.clock = clock

    @property
    def principal(self) -> Principal:
        return self.ring.principal

    def key(self, topic: str, server: str | None) -> bytes:
        """The key a request to ``topic``/``server`` is signed with (and
        its reply sealed with)."""
        return self.ring.signing(topic, server)[2]

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


_FULL = ("signed before the oldest signature this process still remembers "
         "of %s (replay cache full)")


class _Nonces:
    """One principal's remembered nonces: nonce -> timestamp, a heap by
    timestamp, and the floor (what was forgotten before its time)."""

    __slots__ = ("seen", "heap", "floor")

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}
        self.heap: list[tuple[int, str]] = []
        self.floor = -1

    def expire(self, oldest_valid: int) -> int:
        """Drop the entries signed before ``oldest_valid``; how many."""
        heap, seen, dropped = self.heap, self.seen, 0
        while heap and heap[0][0] < oldest_valid:
            _, old = heapq.heappop(heap)
            seen.pop(old, None)
            dropped += 1
        return dropped

    def forget_oldest(self) -> None:
        """Forget the oldest entry before its time: the floor rises to it."""
        old_ts, old = heapq.heappop(self.heap)
        self.seen.pop(old, None)
        self.floor = max(self.floor, old_ts)


class ReplayCache:
    """The nonces of requests seen within the window, per verified
    principal, at most ``max_entries`` in all. When full, the oldest entry of
    the principal holding the most is forgotten and anything that principal
    signed at or before it is refused from then on (its floor), so a
    forgotten nonce cannot come back: a principal flooding the cache evicts
    its own entries only, never another's. Thread-safe."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._by_principal: dict[str, _Nonces] = {}
        self._size = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return self._size

    def floor(self, who: str = "") -> int:
        """The newest timestamp forgotten early of principal ``who``."""
        nonces = self._by_principal.get(who)
        return -1 if nonces is None else nonces.floor

    def check_and_add(self, nonce: str, ts: int, oldest_valid: int,
                      who: str = "") -> str | None:
        """Record ``nonce`` signed at ``ts`` by principal ``who``; returns
        why it is refused (seen before, or older than what was forgotten of
        ``who``), else None. Entries signed before ``oldest_valid`` are
        dropped."""
        with self._lock:
            mine = self._by_principal.get(who)
            if mine is None:
                mine = self._by_principal[who] = _Nonces()
            self._size -= mine.expire(oldest_valid)
            if nonce in mine.seen:
                return "replayed (this signature was used before)"
            if ts <= mine.floor:
                return _FULL % (who or "its signer")
            while self._size >= self.max_entries:
                self._evict(mine, oldest_valid)
            if ts <= mine.floor:
                return _FULL % (who or "its signer")
            mine.seen[nonce] = ts
            heapq.heappush(mine.heap, (ts, nonce))
            self._size += 1
            return None

    def _evict(self, mine: _Nonces, oldest_valid: int) -> None:
        """Make room for one entry of ``mine``: its own oldest when it holds
        at least its share, else the oldest of whoever holds the most
        (expired entries go first, without raising a floor)."""
        share = self.max_entries // max(1, len(self._by_principal))
        victim = mine
        if len(mine.seen) < share or not mine.seen:
            victim = max(self._by_principal.values(),
                         key=lambda n: len(n.seen))
        dropped = victim.expire(oldest_valid)
        self._size -= dropped
        if not dropped:
            victim.forget_oldest()
            self._size -= 1


class RefusalLog:
    """One warning per kind of refusal per ``interval`` seconds, with how
    many were not logged since: a flood of bad requests cannot flood the
    log."""

    def __init__(self, interval: float = 10.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._throttle = logs.Throttle(interval, 256, clock)

    def warn(self, kind: str, message: str, *args: Any) -> bool:
        quiet = self._throttle.admit(kind)
        if quiet is None:
            return False
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
                 refusals: RefusalLog | None = None,
                 future_window: Callable[[], float] | None = None) -> None:
        self.ring = ring
        self.local = local
        self.topic = topic
        self.server = server
        self.window = window
        #: Seconds a timestamp may be ahead of this clock (default: window).
        self.future_window = future_window or window
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
        return self.verify_keyed(message, context)[0]

    def verify_keyed(self, message: dict[str, Any], context: Any
                     ) -> tuple[Principal | None, bytes | None]:
        """``verify``, and the key the request verified with (None for an
        unsigned or local request): the key its reply is sealed with."""
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

    def _verify(self, message: Any, context: Any
                ) -> tuple[Principal | None, bytes | None]:
        if not isinstance(message, dict) or not isinstance(context, dict):
            raise exception.SignatureRefused(reason="malformed request")
        fields = context.get(FIELD)
        if fields is None:
            if self.local:
                return None, None
            if self.enforce():
                raise exception.SignatureRefused(
                    reason="unsigned ([auth] enforce is true on %s)"
                    % self.topic)
            self.unsigned_accepted += 1
            self.refusals.warn("unsigned", "Accepted an unsigned %s request "
                               "to %s ([auth] enforce is false)",
                               str(message.get("method"))[:64], self.topic)
            return principal_mod.UNSIGNED_PRINCIPAL, None
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
        ahead = int(self.future_window() * 1000)
        if ts > now + ahead:
            raise exception.SignatureRefused(
                reason="signature from the future (%.1fs ahead, at most %ss)"
                % ((ts - now) / 1000, ahead / 1000))
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
        why = self.replay.check_and_add(nonce, ts, now - window,
                                        principal.wire_name())
        if why is not None:
            raise exception.SignatureRefused(reason=why)
        return principal, key
