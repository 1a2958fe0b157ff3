"""The replay defences hold per principal (novalet.auth.signing): a flood of
signed requests from host B, dated as far ahead as it may, fills only B's
share of the replay cache; host A's and the admin's requests are accepted
meanwhile, and their own replays are still refused."""

from __future__ import annotations

import copy

import pytest

from novalet import auth, exception
from novalet.auth import keys, principal, signing
from tests.unit.auth.test_signing import NOW, _request

CACHE = 1000


@pytest.fixture
def rings(tmp_path):
    master = str(tmp_path / "master.key")
    keys.init_master(master)
    found = {"conductor": keys.KeyRing.from_files(master, None, "conductor")}
    for host in ("hosta", "hostb"):
        keys.write_host_key(master, host, str(tmp_path / (host + ".key")))
        found[host] = keys.KeyRing.from_files(
            None, str(tmp_path / (host + ".key")), "conductor")
    return found


def _verifier(ring, clock, *, ahead=5.0):
    return signing.Verifier(ring, topic="conductor", server="cond1",
                            window=lambda: 60.0, future_window=lambda: ahead,
                            enforce=lambda: True,
                            replay=signing.ReplayCache(CACHE),
                            clock=lambda: clock[0])


def test_a_flood_from_one_host_never_refuses_another(rings):
    clock = [NOW]
    verifier = _verifier(rings["conductor"], clock)
    # A's request before the flood, kept to replay later.
    earlier = _request(rings["hosta"], now=NOW)
    assert verifier.verify(*copy.deepcopy(earlier)) == principal.host("hosta")
    # B: three times the cache, dated as far ahead as accepted, then later.
    for i in range(3 * CACHE):
        clock[0] = NOW + i / 1000
        message, ctxt = _request(rings["hostb"], now=clock[0] + 4.9)
        assert verifier.verify(message, ctxt) == principal.host("hostb")
    assert len(verifier.replay) <= CACHE
    # A's and the admin's fresh requests, signed now, are accepted.
    for signer, who in ((rings["hosta"], principal.host("hosta")),
                        (rings["conductor"], principal.admin())):
        for _ in range(3):
            message, ctxt = _request(signer, now=clock[0])
            assert verifier.verify(message, ctxt) == who
    # A's replay is still refused: its entries were not forgotten.
    with pytest.raises(exception.SignatureRefused, match="replayed"):
        verifier.verify(*earlier)
    # B paid for its flood: what it signed before its forgotten entries.
    message, ctxt = _request(rings["hostb"], now=NOW + 1)
    with pytest.raises(exception.SignatureRefused, match="replay cache full"):
        verifier.verify(message, ctxt)


def test_timestamps_ahead_are_bounded_tightly(rings):
    clock = [NOW]
    verifier = _verifier(rings["conductor"], clock, ahead=5.0)
    message, ctxt = _request(rings["hostb"], now=NOW + 6)
    with pytest.raises(exception.SignatureRefused, match="future"):
        verifier.verify(message, ctxt)
    message, ctxt = _request(rings["hostb"], now=NOW + 4)
    assert verifier.verify(message, ctxt) == principal.host("hostb")
    # Behind: the whole window, as before.
    message, ctxt = _request(rings["hostb"], now=NOW - 59)
    assert verifier.verify(message, ctxt) == principal.host("hostb")


def test_the_bound_ahead_is_the_auth_option(conf):
    conf("max_clock_ahead", 3, "auth")
    verifier = auth.verifier(conf.CONF, topic="conductor", server=None,
                             in_process=False)
    assert verifier.future_window() == 3.0
    conf("timestamp_window", 2, "auth")
    assert verifier.future_window() == 2.0


def test_the_largest_holder_pays_when_the_cache_is_full():
    cache = signing.ReplayCache(10)
    for i in range(3):
        assert cache.check_and_add("a%d" % i, 1000 + i, 0, "host:a") is None
    for i in range(50):
        assert cache.check_and_add("b%d" % i, 2000 + i, 0, "host:b") is None
    assert len(cache) == 10
    # A keeps all of its own; B forgot its oldest and refuses older.
    assert cache.floor("host:a") == -1
    assert cache.floor("host:b") == 2042
    for i in range(3):
        assert "replayed" in cache.check_and_add("a%d" % i, 1000 + i, 0,
                                                 "host:a")
    # A newcomer takes room from the largest holder, not from A.
    assert cache.check_and_add("c0", 500, 0, "host:c") is None
    assert cache.floor("host:a") == -1 and cache.floor("host:c") == -1
    assert cache.floor("host:b") == 2043


def test_a_request_replayed_to_another_process_is_bounded_by_the_window(rings):
    """Each process remembers its own nonces: a captured request replayed to
    another conductor process is accepted there once (stated in the verified caller's page;
    a heartbeat's delivery key refuses it in the database), but never later
    than ``timestamp_window`` after its timestamp, nor dated further ahead
    than ``max_clock_ahead``: the exposure lasts at most the window plus
    the bound ahead after signing."""
    clock = [NOW]
    one, other = (_verifier(rings["conductor"], clock) for _ in range(2))
    ahead = _request(rings["hostb"], now=NOW + 5)
    assert one.verify(*copy.deepcopy(ahead)) == principal.host("hostb")
    with pytest.raises(exception.SignatureRefused, match="replayed"):
        one.verify(*copy.deepcopy(ahead))
    clock[0] = NOW + 65  # 60 s after its timestamp: still inside
    assert other.verify(*copy.deepcopy(ahead)) == principal.host("hostb")
    clock[0] = NOW + 65.001
    late = _verifier(rings["conductor"], clock)
    with pytest.raises(exception.SignatureRefused, match="stale"):
        late.verify(*ahead)
