"""A signature and every way a request can fail verification
(novalet.auth.signing): each refusal is a typed ``SignatureRefused`` raised
before anything in the request is used."""

from __future__ import annotations

import base64
import copy

import pytest

from novalet import exception
from novalet.auth import keys, principal, signing

NOW = 1_800_000_000.0


@pytest.fixture
def rings(tmp_path):
    master = str(tmp_path / "master.key")
    keys.init_master(master)
    keys.write_host_key(master, "hostb", str(tmp_path / "b.key"))
    return {"conductor": keys.KeyRing.from_files(master, None, "conductor"),
            "hostb": keys.KeyRing.from_files(None, str(tmp_path / "b.key"),
                                             "conductor")}


def _verifier(ring, *, topic="conductor", server="cond1", enforce=True,
              now=NOW, local=False, cache=1000):
    return signing.Verifier(ring, topic=topic, server=server,
                            window=lambda: 60.0, enforce=lambda: enforce,
                            replay=signing.ReplayCache(cache), local=local,
                            clock=lambda: now)


def _request(ring, *, method="object_action", version="1.1", topic="conductor",
             server=None, now=NOW, args=None, context=None):
    message = {"method": method, "version": version,
               "args": args if args is not None else {
                   "objinst": {"novalet_object.name": "ComputeNode",
                               "novalet_object.data": {"id": 1, "host": "hostb",
                                                       "memory_mb_used": 5}},
                   "objmethod": "save", "args": [], "kwargs": {}}}
    ctxt = context if context is not None else {"is_admin": True,
                                                "request_id": "req-1"}
    ctxt = signing.wire_form(ctxt)
    message["args"] = signing.wire_form(message["args"])
    ctxt[signing.FIELD] = signing.Signer(ring, clock=lambda: now).sign(
        method=method, version=version, namespace=None, topic=topic,
        server=server, args=message["args"], context=ctxt)
    # What an AMQP driver adds on the way is not signed.
    received = dict(ctxt, client_timeout=60)
    return message, received


def test_a_signed_request_verifies_as_its_signer(rings):
    verifier = _verifier(rings["conductor"])
    message, ctxt = _request(rings["hostb"])
    assert verifier.verify(message, ctxt) == principal.host("hostb")
    message, ctxt = _request(rings["conductor"])
    assert verifier.verify(message, ctxt) == principal.admin()


def test_a_replayed_request_is_refused(rings):
    verifier = _verifier(rings["conductor"])
    message, ctxt = _request(rings["hostb"])
    verifier.verify(copy.deepcopy(message), copy.deepcopy(ctxt))
    with pytest.raises(exception.SignatureRefused, match="replayed"):
        verifier.verify(message, ctxt)


def _flip(value):
    """``value`` with one character changed."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    text = str(value)
    return text[:-1] + ("x" if text[-1:] != "x" else "y")


@pytest.mark.parametrize("where", [
    ("message", "method"), ("message", "version"),
    ("args", "objmethod"), ("objinst", "host"), ("objinst", "memory_mb_used"),
    ("objinst", "id"), ("context", "request_id"), ("context", "is_admin"),
    ("field", "p"), ("field", "ts"), ("field", "n"), ("field", "k"),
    ("field", "t"),
])
def test_one_changed_byte_is_refused(rings, where):
    verifier = _verifier(rings["conductor"])
    message, ctxt = _request(rings["hostb"])
    part, key = where
    target = {"message": message, "args": message["args"],
              "objinst": message["args"]["objinst"]["novalet_object.data"],
              "context": ctxt, "field": ctxt[signing.FIELD]}[part]
    target[key] = _flip(target[key])
    with pytest.raises(exception.SignatureRefused):
        verifier.verify(message, ctxt)


def test_an_added_context_entry_or_argument_is_refused(rings):
    verifier = _verifier(rings["conductor"])
    message, ctxt = _request(rings["hostb"])
    ctxt["roles"] = ["admin"]
    with pytest.raises(exception.SignatureRefused, match="bad signature"):
        verifier.verify(message, ctxt)
    message, ctxt = _request(rings["hostb"])
    message["args"]["object_versions"] = {"ComputeNode": "1.1"}
    with pytest.raises(exception.SignatureRefused, match="bad signature"):
        verifier.verify(message, ctxt)


def test_a_signature_for_another_server_is_refused(rings):
    # Signed by the admin for compute hosta, replayed at compute hostb.
    message, ctxt = _request(rings["conductor"], topic="compute",
                             server="hosta", method="terminate_instance")
    at_b = _verifier(rings["hostb"], topic="compute", server="hostb")
    with pytest.raises(exception.SignatureRefused, match="another server"):
        at_b.verify(message, ctxt)
    # ... or at the conductor.
    with pytest.raises(exception.SignatureRefused, match="another server"):
        _verifier(rings["conductor"]).verify(message, ctxt)
    # And claiming it was for hostb breaks the signature.
    ctxt[signing.FIELD]["s"] = "hostb"
    with pytest.raises(exception.SignatureRefused, match="unknown key|bad"):
        at_b.verify(message, ctxt)


def test_stale_and_future_signatures_are_refused(rings):
    verifier = _verifier(rings["conductor"])
    for skew, reason in ((-61, "stale"), (61, "future")):
        message, ctxt = _request(rings["hostb"], now=NOW + skew)
        with pytest.raises(exception.SignatureRefused, match=reason):
            verifier.verify(message, ctxt)
    message, ctxt = _request(rings["hostb"], now=NOW - 59)
    assert verifier.verify(message, ctxt) == principal.host("hostb")


def test_unsigned_requests(rings):
    message, ctxt = _request(rings["hostb"])
    del ctxt[signing.FIELD]
    with pytest.raises(exception.SignatureRefused, match="unsigned"):
        _verifier(rings["conductor"]).verify(message, ctxt)
    assert _verifier(rings["conductor"], enforce=False).verify(
        message, ctxt) == principal.UNSIGNED_PRINCIPAL
    # On the in-process transport: a caller of this process.
    assert _verifier(None, local=True).verify(message, ctxt) is None


@pytest.mark.parametrize("field, value, reason", [
    (None, "not a dict", "malformed"),
    (None, ["v", "k"], "malformed"),
    ("sig", "%%%not base64%%%", "not base64"),
    ("sig", base64.b64encode(b"x" * 31).decode(), "wrong length"),
    ("sig", "A" * 5000, "field sig"),
    ("sig", None, "field sig"),
    ("sig", 12345, "field sig"),
    ("k", "no-such-key", "unknown key"),
    ("k", "", "field k"),
    ("k", ["list"], "field k"),
    ("p", "host:HostB", "principal"),
    ("p", "host:hostb ", "principal"),
    ("p", "host:hostb\x00", "principal"),
    ("p", "host:host\u0431", "principal"),
    ("p", "root", "principal"),
    ("p", "host:", "principal"),
    ("ts", "1800000000000", "field ts"),
    ("ts", 1.8e12, "field ts"),
    ("ts", True, "field ts"),
    ("v", 2, "version"),
    ("v", True, "version"),
    ("n", "x" * 1000, "field n"),
    ("t", None, "field t"),
    ("s", 7, "field s"),
])
def test_malformed_signatures_are_refused(rings, field, value, reason):
    verifier = _verifier(rings["conductor"])
    message, ctxt = _request(rings["hostb"])
    if field is None:
        ctxt[signing.FIELD] = value
    else:
        ctxt[signing.FIELD][field] = value
    with pytest.raises(exception.SignatureRefused, match=reason):
        verifier.verify(message, ctxt)


def test_extra_or_missing_signature_fields_are_refused(rings):
    verifier = _verifier(rings["conductor"])
    for change in ("extra", "missing"):
        message, ctxt = _request(rings["hostb"])
        if change == "extra":
            ctxt[signing.FIELD]["principal"] = "admin"
        else:
            del ctxt[signing.FIELD]["n"]
        with pytest.raises(exception.SignatureRefused, match="malformed"):
            verifier.verify(message, ctxt)


def test_a_host_cannot_sign_as_another_host_or_the_admin(rings):
    verifier = _verifier(rings["conductor"])
    for claim in ("host:hosta", "admin"):
        message, ctxt = _request(rings["hostb"])
        ctxt[signing.FIELD]["p"] = claim
        with pytest.raises(exception.SignatureRefused, match="bad signature"):
            verifier.verify(message, ctxt)


def test_refusals_before_the_signature_never_touch_the_replay_cache(rings):
    verifier = _verifier(rings["conductor"])
    for _ in range(20):
        message, ctxt = _request(rings["hostb"])
        ctxt[signing.FIELD]["sig"] = base64.b64encode(b"\0" * 32).decode()
        with pytest.raises(exception.SignatureRefused):
            verifier.verify(message, ctxt)
    assert len(verifier.replay) == 0


def test_a_full_replay_cache_forgets_the_oldest_and_refuses_older():
    cache = signing.ReplayCache(3)
    for i in range(3):
        assert cache.check_and_add("n%d" % i, 1000 + i, 0) is None
    assert cache.check_and_add("n3", 1003, 0) is None  # forgets n0 (1000)
    assert cache.floor() == 1000 and len(cache) == 3
    assert "replay cache" in cache.check_and_add("n0", 1000, 0)
    assert "replayed" in cache.check_and_add("n3", 1003, 0)
    # Expired entries go first, without raising the floor.
    assert cache.check_and_add("n4", 5000, 2000) is None
    assert len(cache) == 1 and cache.floor() == 1000


def test_a_flood_of_refusals_logs_one_line_per_interval(caplog):
    now = [0.0]
    log = signing.RefusalLog(interval=10, clock=lambda: now[0])
    assert log.warn("refused", "refused %s", "a")
    for _ in range(50):
        assert not log.warn("refused", "refused %s", "b")
    now[0] = 10.5
    assert log.warn("refused", "refused %s", "c")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["refused a", "refused c (50 more like it not logged in "
                     "the last 10s)"]


def test_the_replay_cache_keeps_what_was_signed_at_the_window_edge():
    cache = signing.ReplayCache(10)
    assert cache.check_and_add("edge", 2000, 0) is None
    assert cache.check_and_add("edge", 2000, 2000) == \
        "replayed (this signature was used before)"
    assert cache.check_and_add("later", 2001, 2001) is None
    assert len(cache) == 1  # "edge", signed before the window, is gone


def test_the_replay_cache_says_why_it_refuses():
    cache = signing.ReplayCache(1)
    assert cache.check_and_add("a", 1000, 0) is None
    # (Per principal: the text names whose signatures were forgotten.)
    assert cache.check_and_add("b", 1000, 0) == (
        "signed before the oldest signature this process still remembers "
        "of its signer (replay cache full)")
    assert cache.check_and_add("c", 999, 0) == (
        "signed before the oldest signature this process still remembers "
        "of its signer (replay cache full)")


def test_refusals_are_quiet_for_exactly_one_interval(caplog):
    now = [100.0]
    log = signing.RefusalLog(interval=10, clock=lambda: now[0])
    assert log.warn("kind", "refused")
    now[0] = 105.0
    assert not log.warn("kind", "refused")
    now[0] = 110.0  # one interval after the last line
    assert log.warn("kind", "refused")


def test_the_refusal_log_forgets_its_kinds_past_256():
    log = signing.RefusalLog(interval=10, clock=lambda: 0.0)
    for i in range(256):
        assert log.warn("kind-%d" % i, "refused")
    assert not log.warn("kind-0", "refused")  # 256 kinds: still remembered
    assert log.warn("kind-256", "refused")
    assert log.warn("kind-0", "refused")  # 257: forgotten, logged again


def test_what_is_signed_is_written_down_byte_for_byte():
    """Both ends of a rolling upgrade hash the same bytes only while the
    canonical form stays as documented: sorted keys, no spaces, ASCII,
    NaN allowed; method, version, namespace, arguments, context (without
    the signature and the transport's keys) and the signature fields but
    ``sig``."""
    assert signing.canonical({"b": [1.5, "\u00e9"], "a": float("nan")}) == \
        b'{"a":NaN,"b":[1.5,"\\u00e9"]}'
    payload = signing._payload(
        {"method": "object_action", "version": "1.2", "namespace": None,
         "args": {"x": 1}},
        {"user": "u", signing.FIELD: {"sig": "s"}, "msg_id": "m"},
        {"v": 1, "n": "nonce", "sig": "s"})
    assert payload == (b'{"a":{"x":1},"c":{"user":"u"},"f":{"n":"nonce","v":1},'
                       b'"m":"object_action","ns":null,"v":"1.2"}')


def test_a_principal_names_one_host_in_at_most_300_characters():
    assert signing.parse_principal("host:h1").host == "h1"
    with pytest.raises(exception.SignatureRefused) as info:
        signing.parse_principal("host:a:b")
    assert info.value.kwargs["reason"] == \
        "malformed signature (principal 'host:a:b')"
    long_name = "x" * 100
    with pytest.raises(exception.SignatureRefused) as info:
        signing.parse_principal(long_name)
    assert info.value.kwargs["reason"] == \
        "malformed signature (principal %r)" % long_name[:80]
    assert signing._text({"k": "x" * 300}, "k") == "x" * 300
    with pytest.raises(exception.SignatureRefused) as info:
        signing._text({"k": "x" * 301}, "k")
    assert info.value.kwargs["reason"] == "malformed signature (field k)"


def test_a_reply_is_sealed_with_the_key_the_request_verified_with(rings):
    """Both ends hold the same key: the one the caller signed with is the
    one the verifier returns; a reply sealed with it for the request's nonce
    opens, anything else is refused."""
    message, ctxt = _request(rings["hostb"], context={
        "is_admin": True, "request_id": "req-1",
        signing.REPLY_FIELD: signing.REPLY_VERSION})  # signed with it
    assert signing.reply_nonce(ctxt) == ctxt[signing.FIELD]["n"]
    who, key = _verifier(rings["conductor"]).verify_keyed(message, ctxt)
    assert who == principal.host("hostb")
    assert key == signing.Signer(rings["hostb"]).key("conductor", None)
    nonce = ctxt[signing.FIELD]["n"]
    sealed = signing.seal_reply(key, nonce, signing.REPLY_OK, '[{"a": 1}, null]')
    assert signing.open_reply(key, nonce, signing.wire_form(sealed)) == (
        signing.REPLY_OK, '[{"a": 1}, null]')
    other_key = signing.Signer(rings["conductor"]).key("conductor", None)
    refused = {
        "another request": (key, "nonce-2", sealed),
        "another key": (other_key, nonce, sealed),
        "no seal": (key, nonce, [{"a": 1}, None]),
        "kind changed": (key, nonce, {signing.REPLY_FIELD: dict(
            sealed[signing.REPLY_FIELD], k=signing.REPLY_ERROR)}),
        "body changed": (key, nonce, {signing.REPLY_FIELD: dict(
            sealed[signing.REPLY_FIELD], b='[{"a": 2}, null]')}),
        "extra field": (key, nonce, {signing.REPLY_FIELD: dict(
            sealed[signing.REPLY_FIELD], x=1)}),
        "mac not base64": (key, nonce, {signing.REPLY_FIELD: dict(
            sealed[signing.REPLY_FIELD], mac="**")}),
        "body not text": (key, nonce, {signing.REPLY_FIELD: dict(
            sealed[signing.REPLY_FIELD], b=[1])}),
    }
    for label, (k, n, reply) in refused.items():
        with pytest.raises(ValueError):
            signing.open_reply(k, n, reply)
            pytest.fail(label)


def test_only_a_signed_request_that_asks_gets_a_sealed_reply(rings):
    message, ctxt = _request(rings["hostb"])
    assert signing.reply_nonce(ctxt) is None  # did not ask
    ctxt[signing.REPLY_FIELD] = 2
    assert signing.reply_nonce(ctxt) is None  # a version this code lacks
    assert signing.reply_nonce({signing.REPLY_FIELD: 1}) is None  # unsigned
    assert _verifier(None, enforce=False).verify_keyed(
        {"method": "m"}, {}) == (principal.UNSIGNED_PRINCIPAL, None)


def _sealed_fields(**changed):
    key, nonce = b"k" * 32, "nonce-1"
    sealed = signing.seal_reply(key, nonce, signing.REPLY_OK, "[1, null]")
    return key, nonce, {signing.REPLY_FIELD: dict(sealed[signing.REPLY_FIELD],
                                                  **changed)}


@pytest.mark.parametrize("changed, why", [
    ({"v": 2}, "malformed authenticated reply"),
    ({"k": "maybe"}, "malformed authenticated reply"),
    ({"b": ["[1, null]"]}, "malformed authenticated reply"),
    ({"mac": 5}, "malformed authenticated reply"),
    ({"mac": "A" * 101}, "malformed authenticated reply"),
    ({"mac": "!!not base64!!"}, "malformed authenticated reply (MAC not base64)"),
    ({"mac": None}, "malformed authenticated reply"),
])
def test_a_malformed_seal_is_named_as_such(changed, why):
    key, nonce, reply = _sealed_fields(**changed)
    with pytest.raises(ValueError) as info:
        signing.open_reply(key, nonce, reply)
    assert str(info.value) == why


def test_a_mac_with_stray_characters_is_not_base64():
    """Characters outside base64 inside an otherwise valid MAC: refused as
    such, not decoded around (``b64decode`` without ``validate`` skips
    them)."""
    key, nonce, reply = _sealed_fields()
    mac = reply[signing.REPLY_FIELD]["mac"]
    reply[signing.REPLY_FIELD]["mac"] = mac[:10] + "*" + mac[10:]
    with pytest.raises(ValueError) as info:
        signing.open_reply(key, nonce, reply)
    assert str(info.value) == "malformed authenticated reply (MAC not base64)"
    # A MAC of exactly 100 characters is not refused for its length.
    reply[signing.REPLY_FIELD]["mac"] = "A" * 100
    with pytest.raises(ValueError, match="bad MAC"):
        signing.open_reply(key, nonce, reply)


@pytest.mark.parametrize("message, context", [
    ({"method": "m"}, ["not", "a", "dict"]),
    (["not", "a", "dict"], {}),
    ("text", "text"),
])
def test_a_request_that_is_not_two_dicts_is_malformed(rings, message, context):
    with pytest.raises(exception.SignatureRefused) as info:
        _verifier(rings["conductor"]).verify_keyed(message, context)
    assert info.value.kwargs["reason"] == "malformed request"
