"""VersionCaps: what ``auto`` and pins resolve to, for the core and for an
app, and that asking the peers never holds the lock other callers need."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from novalet import app, exception, upgrade
from novalet.objects import service as service_obj
from novalet.upgrade import releases

RELEASE_1 = releases.SERVICE_VERSION_HISTORY[1]


class Peers:
    """The answers of ``minimum_version``: a version, or an error; a call
    can be held until the test lets it go."""

    def __init__(self, version: int) -> None:
        self.version = version
        self.error: Exception | None = None
        self.hold: threading.Event | None = None
        self.entered = threading.Event()
        self.calls = 0

    def __call__(self, ctxt: Any) -> int:
        self.calls += 1
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30), "the test never released the call"
        if self.error is not None:
            raise self.error
        return self.version


def caps_for(peers: Peers, setting: str | None = "auto", **kwargs: Any,
             ) -> upgrade.VersionCaps:
    return upgrade.core_caps("novalet-conductor", "conductor_rpc", lambda: setting,
                             peers, **kwargs)


def test_auto_follows_the_oldest_service() -> None:
    peers = Peers(1)
    caps = caps_for(peers)
    assert caps.rpc_cap(None) == RELEASE_1["conductor_rpc"]
    assert caps.object_versions(None) == RELEASE_1["objects"]
    peers.version = releases.SERVICE_VERSION
    caps.invalidate()
    assert caps.rpc_cap(None) is None and caps.object_versions(None) is None


def test_unreachable_peers_mean_the_oldest_supported_release() -> None:
    peers = Peers(releases.SERVICE_VERSION)
    peers.error = exception.RPCTimeout(topic="conductor", method="m", timeout=1)
    caps = caps_for(peers)
    assert caps.object_versions(None) == releases.SERVICE_VERSION_HISTORY[
        releases.OLDEST_SUPPORTED_SERVICE_VERSION]["objects"]


def test_a_refresh_in_flight_does_not_block_other_callers() -> None:
    peers = Peers(1)
    caps = caps_for(peers)
    assert caps.object_versions(None) == RELEASE_1["objects"]
    # The caps expire; one caller asks the peers, who take their time.
    caps.invalidate()
    peers.version = releases.SERVICE_VERSION
    peers.hold, peers.entered = threading.Event(), threading.Event()
    refresher = threading.Thread(target=caps.object_versions, args=(None,))
    refresher.start()
    assert peers.entered.wait(10)
    # Meanwhile every other caller gets the previous caps at once.
    for _ in range(3):
        assert caps.object_versions(None) == RELEASE_1["objects"]
    assert peers.calls == 2 and refresher.is_alive()
    peers.hold.set()
    refresher.join(10)
    assert caps.object_versions(None) is None


def test_before_the_first_answer_callers_wait_for_it() -> None:
    peers = Peers(1)
    peers.hold = threading.Event()
    caps = caps_for(peers)
    first = threading.Thread(target=caps.object_versions, args=(None,))
    first.start()
    assert peers.entered.wait(10)
    answers: list[Any] = []
    second = threading.Thread(target=lambda: answers.append(caps.object_versions(None)))
    second.start()
    second.join(0.2)
    assert second.is_alive() and not answers  # waiting, not guessing
    peers.hold.set()
    first.join(10)
    second.join(10)
    assert answers == [RELEASE_1["objects"]] and peers.calls == 1


def test_a_first_answer_that_never_comes_falls_back_to_the_oldest_release(
        caplog: pytest.LogCaptureFixture) -> None:
    peers = Peers(releases.SERVICE_VERSION)
    peers.hold = threading.Event()
    caps = caps_for(peers, wait_bound=lambda: 0.1)
    first = threading.Thread(target=caps.object_versions, args=(None,))
    first.start()
    assert peers.entered.wait(10)
    with caplog.at_level(logging.WARNING):
        assert caps.object_versions(None) == releases.SERVICE_VERSION_HISTORY[
            releases.OLDEST_SUPPORTED_SERVICE_VERSION]["objects"]
    assert "still being resolved" in caplog.text
    peers.hold.set()
    first.join(10)
    assert caps.object_versions(None) is None  # the real answer wins


def test_the_log_names_the_services_holding_the_caps_down(
        caplog: pytest.LogCaptureFixture) -> None:
    asked = []

    def holders(ctxt: Any, version: int) -> list[str]:
        asked.append(version)
        return ["old-conductor (last heartbeat never)"]

    caps = caps_for(Peers(1), holders=holders)
    with caplog.at_level(logging.INFO):
        caps.object_versions(None)
    assert asked == [1]
    assert ("oldest novalet-conductor has service version 1 (held by "
            "old-conductor (last heartbeat never))") in caplog.text


def test_holders_are_not_asked_when_nothing_holds_the_caps_down() -> None:
    caps = caps_for(Peers(releases.SERVICE_VERSION),
                    holders=lambda ctxt, version: pytest.fail("asked"))
    assert caps.object_versions(None) is None


def test_services_at_skips_forced_down_and_other_versions() -> None:
    services = [service_obj.Service(host="a", version=1, forced_down=False,
                                    last_seen_up=None),
                service_obj.Service(host="b", version=1, forced_down=True,
                                    last_seen_up=None),
                service_obj.Service(host="c", version=2, forced_down=False,
                                    last_seen_up=None)]
    assert upgrade.services_at(services, 1) == ["a (last heartbeat never)"]


def test_pins() -> None:
    assert caps_for(Peers(1), "1").object_versions(None) == RELEASE_1["objects"]
    assert caps_for(Peers(1), "1.0").rpc_cap(None) == "1.0"
    with pytest.raises(exception.ConfigurationError):
        caps_for(Peers(1), "banana").rpc_cap(None)


# -- An app's caps: its objects, by the app's own releases -----------------

WIDGETS = {"1": {"Widget": "1.0"}, "2": {"Widget": "1.1", "WidgetList": "1.0"},
           "3": {"Widget": "1.2", "WidgetList": "1.1"}}


def app_caps_for(recorded: Any, setting: str | None = None) -> upgrade.VersionCaps:
    def app_releases(ctxt: Any) -> list[dict[str, str]]:
        if isinstance(recorded, Exception):
            raise recorded
        return list(recorded)

    return upgrade.app_caps(
        "novalet-conductor", app.App(name="widgets", releases=WIDGETS),
        lambda: setting, app_releases)


def test_app_caps_follow_the_oldest_conductor_running_the_app(caplog: Any) -> None:
    caplog.set_level(logging.INFO)
    recorded = [{"widgets": "3"}, {"widgets": "2", "novalet": "3"}, {"other": "1"},
                {"widgets": "4"}]
    caps = app_caps_for(recorded)
    assert caps.object_versions(None) == WIDGETS["2"]
    assert caps.scope() == {"Widget", "WidgetList"}
    assert ("Version cap for app widgets at novalet-conductor: objects of release 2 "
            "(auto: oldest novalet-conductor runs widgets release 2)") in caplog.text
    recorded[1] = {"widgets": "3"}
    caps.invalidate()
    assert caps.object_versions(None) is None


@pytest.mark.parametrize("recorded", [[], [{"other": "1"}], [{"widgets": "9"}]])
def test_app_caps_without_a_known_release_send_the_newest(recorded: Any) -> None:
    assert app_caps_for(recorded).object_versions(None) is None


def test_app_caps_with_unreachable_conductors_speak_the_app_s_first_release() -> None:
    caps = app_caps_for(exception.RPCTimeout(topic="conductor", method="m", timeout=1))
    assert caps.object_versions(None) == WIDGETS["1"]


def test_app_caps_of_conductors_that_record_no_apps_send_the_newest() -> None:
    """A conductor older than release 3 refuses the question (and serves no
    app whatever is sent): no caps."""
    refused = exception.MethodNotRemotable(objname="Service", method="get_app_releases")
    assert app_caps_for(refused).object_versions(None) is None


def test_app_pins() -> None:
    assert app_caps_for([{"widgets": "3"}], "1").object_versions(None) == WIDGETS["1"]
    assert app_caps_for([{"widgets": "1"}], "3").object_versions(None) is None
    with pytest.raises(exception.ConfigurationError, match="widgets:4"):
        app_caps_for([], "4").object_versions(None)


def test_app_caps_leave_other_namespaces_objects_alone() -> None:
    manifest = {"Widget": "1.2", "WidgetList": "1.1", "Service": "1.2"}
    assert upgrade.cap_manifest(manifest, {"Widget": "1.0"},
                                     {"Widget", "WidgetList"}) == {
        "Widget": "1.0", "Service": "1.2"}


@pytest.mark.parametrize("setting, version, known, seal", [
    ("auto", 3, 3, False),      # a release 3 conductor remains
    ("auto", 4, 4, True),       # every conductor seals
    ("auto", 5, 4, True),       # newer than this code: seals too
    ("auto", 0, None, False),   # none registered: not known
    ("3", 4, 3, False),         # a pin, whatever the peers run
    ("4", 3, 4, True),
    ("1.2", 4, None, False),    # an RPC pin: releases 3 and 4 speak it
])
def test_the_oldest_service_version_says_whether_the_peers_seal_replies(
        setting: str, version: int, known: int | None, seal: bool) -> None:
    caps = caps_for(Peers(version), setting)
    assert caps.oldest_service_version() is None  # not resolved yet
    assert not caps.peers_seal_replies()
    caps.rpc_cap(None)
    assert caps.oldest_service_version() == known
    assert caps.peers_seal_replies() is seal


def test_unreachable_peers_are_not_known_to_seal() -> None:
    peers = Peers(4)
    caps = caps_for(peers)
    caps.rpc_cap(None)
    assert caps.peers_seal_replies()
    peers.error = exception.RPCTimeout(topic="conductor", method="m", timeout=1)
    caps.invalidate()
    caps.rpc_cap(None)
    assert caps.oldest_service_version() is None
    assert not caps.peers_seal_replies()


def test_an_app_s_caps_say_nothing_of_sealing() -> None:
    caps = app_caps_for([], "1")
    assert caps.object_versions(None) == WIDGETS["1"]
    assert caps.oldest_service_version() is None


def test_cap_manifest_compares_versions_not_text() -> None:
    assert upgrade.cap_manifest({"A": "1.10", "B": "1.2"},
                                {"A": "1.9", "B": "1.10"}) == {"A": "1.9", "B": "1.2"}


def test_cap_manifest_without_caps_is_a_copy() -> None:
    manifest = {"A": "1.1"}
    capped = upgrade.cap_manifest(manifest, None)
    assert capped == manifest and capped is not manifest


def test_cap_manifest_keeps_what_its_scope_does_not_govern() -> None:
    # An object outside the scope first: it is kept, and the rest still capped.
    assert upgrade.cap_manifest(
        {"Service": "1.2", "Widget": "1.1", "Gadget": "1.0"},
        {"Widget": "1.0"}, {"Widget", "Gadget"}) == {"Service": "1.2",
                                                    "Widget": "1.0"}


@pytest.mark.parametrize("pin, release", [("1.0", "1"), ("1.1", "2"),
                                          ("1.2", None)])
def test_a_pin_to_an_rpc_version_speaks_the_newest_release_that_has_it(
        pin: str, release: str | None) -> None:
    caps = caps_for(Peers(1), pin)
    assert caps.rpc_cap(None) == pin
    assert caps.object_versions(None) == (
        None if release is None else releases.RELEASE_MAPPING[release]["objects"])


@pytest.mark.parametrize("pin", ["2.0", "banana", "0.9"])
def test_a_pin_no_release_speaks_is_refused_with_the_releases(pin: str) -> None:
    caps = caps_for(Peers(1), pin)
    with pytest.raises(exception.ConfigurationError) as info:
        caps.rpc_cap(None)
    assert info.value.kwargs["reason"] == (
        "[upgrade_levels] conductor=%r is not 'auto', a release (%s) or a "
        "known version" % (pin, ", ".join(releases.RELEASES)))


def test_auto_asks_the_peers_once_per_refresh_interval(caplog: Any) -> None:
    """The answer holds for the refresh interval; ``invalidate`` (SIGHUP)
    asks again. A new finding is logged even when the caps stay the same."""
    caplog.set_level(logging.INFO, "novalet.upgrade.caps")
    peers = Peers(releases.SERVICE_VERSION)
    caps = caps_for(peers, refresh_interval=lambda: 3600.0)
    for _ in range(3):
        assert caps.object_versions(None) is None
    assert peers.calls == 1
    caps.invalidate()
    peers.version = releases.SERVICE_VERSION + 1  # newer: the caps stay none
    assert caps.object_versions(None) is None
    assert peers.calls == 2
    lines = [r.getMessage() for r in caplog.records
             if r.getMessage().startswith("Version cap for novalet-conductor")]
    assert lines == [
        "Version cap for novalet-conductor: RPC newest, objects newest (auto: "
        "oldest novalet-conductor has service version %d)" % version
        for version in (releases.SERVICE_VERSION, releases.SERVICE_VERSION + 1)]
