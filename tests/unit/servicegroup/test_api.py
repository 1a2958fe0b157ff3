"""The servicegroup API and drivers without a database: the interval rule,
loading by name, liveness arithmetic against a given database clock, and the
heartbeat loop's error handling."""

from __future__ import annotations

import datetime
import itertools
import logging
import threading
import time
from unittest import mock

import pytest
from oslo_config import cfg
from tooz import coordination

import novalet  # noqa: F401  (selects oslo.service's backend first)
from novalet import context, exception, objects
from novalet.conf import default as default_conf
from novalet.conf import servicegroup as servicegroup_conf
from novalet.servicegroup import API, api, load_driver
from novalet.servicegroup.drivers import base
from novalet.servicegroup.drivers import tooz as tooz_driver
from novalet.servicegroup.drivers.db import DbDriver
from novalet.servicegroup.drivers.tooz import ToozDriver

T0 = datetime.datetime(2001, 2, 3, 4, 5, 6, tzinfo=datetime.UTC)


@pytest.fixture
def conf() -> cfg.ConfigOpts:
    c = cfg.ConfigOpts()
    default_conf.register_opts(c)
    servicegroup_conf.register_opts(c)
    c([], project="novalet-test", default_config_files=[])
    return c


def service(**kw):
    values = dict(host="h1", binary="novalet-compute", topic="compute",
                  forced_down=False, last_seen_up=T0, report_count=3)
    values.update(kw)
    return objects.Service(context.get_admin_context(), **values)


def wait_for(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in %ss" % timeout
        time.sleep(0.05)


# -- report_interval / service_down_time --------------------------------------

def test_down_time_not_above_report_interval_is_raised_with_one_warning(conf, caplog):
    conf.set_override("report_interval", 10)
    conf.set_override("service_down_time", 10)
    caplog.set_level(logging.WARNING, logger="novalet.servicegroup")
    API(conf, driver=DbDriver(conf))
    assert conf.service_down_time == 25
    API(conf, driver=DbDriver(conf))
    warnings = [r for r in caplog.records if "service_down_time" in r.getMessage()]
    assert len(warnings) == 1 and warnings[0].levelno == logging.WARNING


def test_valid_intervals_are_left_alone(conf, caplog):
    conf.set_override("report_interval", 10)
    conf.set_override("service_down_time", 11)
    caplog.set_level(logging.WARNING, logger="novalet.servicegroup")
    API(conf, driver=DbDriver(conf))
    assert conf.service_down_time == 11
    assert not caplog.records


def test_raised_down_time_is_the_one_is_up_uses(conf):
    conf.set_override("report_interval", 4)
    conf.set_override("service_down_time", 4)
    sg = API(conf, driver=DbDriver(conf))
    assert conf.service_down_time == 10
    svc = service()
    assert sg.driver.is_up(svc, db_time=T0 + datetime.timedelta(seconds=8))
    assert not sg.driver.is_up(svc, db_time=T0 + datetime.timedelta(seconds=11))


# -- loading -------------------------------------------------------------------

def test_drivers_load_by_name(conf):
    assert isinstance(API(conf).driver, DbDriver)
    conf.set_override("servicegroup_driver", "tooz")
    sg = API(conf, initial_delay=0)
    assert isinstance(sg.driver, ToozDriver) and sg.driver.initial_delay == 0
    assert load_driver("db", conf).initial_delay == base.DEFAULT_INITIAL_DELAY


def test_unknown_driver_is_a_configuration_error(conf):
    with pytest.raises(exception.ConfigurationError) as info:
        load_driver("carrier-pigeon", conf)
    assert api.NAMESPACE in str(info.value)


# -- db driver liveness ----------------------------------------------------------

def test_up_within_service_down_time_of_the_database_clock(conf):
    conf.set_override("service_down_time", 60)
    driver = DbDriver(conf)
    svc = service()
    # The caller's clock is years away; only the given database time counts.
    assert driver.is_up(svc, db_time=T0 + datetime.timedelta(seconds=30))
    assert driver.is_up(svc, db_time=T0 + datetime.timedelta(seconds=60))
    assert not driver.is_up(svc, db_time=T0 + datetime.timedelta(seconds=61))
    # A beat that landed after the clock was read is up too.
    assert driver.is_up(svc, db_time=T0 - datetime.timedelta(seconds=1))


def test_naive_and_aware_database_clocks_agree(conf):
    conf.set_override("service_down_time", 60)
    driver = DbDriver(conf)
    svc = service()
    naive = (T0 + datetime.timedelta(seconds=61)).replace(tzinfo=None)
    assert not driver.is_up(svc, db_time=naive)
    assert driver.is_up(svc, db_time=naive - datetime.timedelta(seconds=2))
    other_zone = datetime.timezone(datetime.timedelta(hours=5))
    assert driver.is_up(svc, db_time=(T0 + datetime.timedelta(seconds=59))
                        .astimezone(other_zone))


def test_is_up_asks_the_database_clock_once(conf):
    driver = DbDriver(conf)
    svc = service()
    with mock.patch.object(objects.Service, "get_db_time",
                           return_value=T0.replace(tzinfo=None)) as clock:
        assert driver.is_up(svc)
    clock.assert_called_once_with(svc.obj_context)
    # Over RPC the plain datetime result arrives as ISO 8601 text.
    with mock.patch.object(objects.Service, "get_db_time",
                           return_value="2001-02-03T04:06:06.000000"):
        assert driver.is_up(svc)
    with mock.patch.object(objects.Service, "get_db_time",
                           return_value="2001-02-03T04:06:07.000000"):
        assert not driver.is_up(svc)
    with mock.patch.object(objects.Service, "get_db_time",
                           return_value=T0 + datetime.timedelta(hours=1)):
        assert not driver.is_up(svc)


def test_forced_down_and_never_reported_are_down_without_asking(conf):
    driver = DbDriver(conf)
    with mock.patch.object(objects.Service, "get_db_time",
                           side_effect=AssertionError("clock read")):
        assert not driver.is_up(service(forced_down=True))
        assert not driver.is_up(service(last_seen_up=None, report_count=0))
        assert driver.are_up(None, [service(forced_down=True),
                                    service(last_seen_up=None)]) == [False, False]


def test_get_all_pairs_services_with_one_clock_reading(conf):
    conf.set_override("service_down_time", 60)
    sg = API(conf, driver=DbDriver(conf))
    services = [service(host="a"), service(host="b", forced_down=True),
                service(host="c", last_seen_up=T0 - datetime.timedelta(hours=1)),
                service(host="d", last_seen_up=None)]
    ctxt = context.get_admin_context()
    with mock.patch.object(objects.ServiceList, "get_all",
                           return_value=services) as listing, \
            mock.patch.object(objects.Service, "get_db_time",
                              return_value=T0) as clock:
        pairs = sg.get_all(ctxt, binary="novalet-compute")
    listing.assert_called_once_with(ctxt, binary="novalet-compute")
    clock.assert_called_once_with(ctxt)
    assert [(s.host, up) for s, up in pairs] == [
        ("a", True), ("b", False), ("c", False), ("d", False)]


# -- the heartbeat loop -----------------------------------------------------------

class FakeServiceRef:
    """Stands in for a Service object: counts beats (its own saves, or
    batched ones through ``fake_batches``), fails on demand."""

    binary = "novalet-compute"
    obj_context = None
    _ids = itertools.count(1)
    by_id: dict[int, FakeServiceRef] = {}

    def __init__(self, errors=()):
        self.id = next(self._ids)
        self.by_id[self.id] = self
        self.report_count = 0
        self.saved: list[int] = []
        self.errors = list(errors)
        self.lock = threading.Lock()

    def save(self):
        with self.lock:
            if self.errors:
                raise self.errors.pop(0)
            self.saved.append(self.report_count)

    def obj_reset_changes(self, fields=None):
        self.pending = set()

    pending: set[str] = set()

    def obj_what_changed(self):
        return set(self.pending)


@pytest.fixture(autouse=True)
def fake_batches(monkeypatch):
    """``ServiceList.report_heartbeats`` recording each call's ids, beating
    each fake as its ``save()`` would (the driver bumps the count after)."""
    objects.register_all()
    calls: list[list[int]] = []

    def report_heartbeats(ctxt, ids):
        calls.append(list(ids))
        for ref in (FakeServiceRef.by_id[i] for i in ids):
            with ref.lock:
                if ref.errors:
                    raise ref.errors.pop(0)
                ref.saved.append(ref.report_count + 1)
        return []

    monkeypatch.setattr(objects.ServiceList, "report_heartbeats",
                        report_heartbeats)
    return calls


class FakeService:
    binary = "novalet-compute"

    def __init__(self, ref):
        self.service_ref = ref


def messages(caplog, text):
    return [r for r in caplog.records if text in r.getMessage()]


def test_lost_model_server_logged_once_and_recovery_once(conf, caplog):
    caplog.set_level(logging.INFO, logger="novalet.servicegroup")
    ref = FakeServiceRef(errors=[
        exception.RPCTimeout(topic="conductor", method="object_action", timeout=1),
        exception.RPCUnavailable(topic="conductor", method="object_action",
                                 reason="no broker"),
        exception.DatabaseUnavailable(url="db", reason="gone")])
    reporter = DbDriver(conf)._make_reporter("h1", "compute", FakeService(ref))
    assert [reporter.run_once() for _ in range(5)] == [False, False, False, True, True]
    went, back = (messages(caplog, "model server went away"),
                  messages(caplog, "model server recovered"))
    assert len(went) == 1 and went[0].levelno == logging.ERROR
    assert went[0].exc_info is None
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert caplog.records.index(went[0]) < caplog.records.index(back[0])
    # Reporting kept bumping the same object: the count only grows.
    assert ref.saved == [4, 5]
    # A second outage is logged again (once).
    ref.errors.append(exception.RPCTimeout(topic="c", method="m", timeout=1))
    reporter.run_once()
    assert len(messages(caplog, "model server went away")) == 2


def test_unexpected_heartbeat_error_is_logged_and_the_loop_goes_on(conf, caplog):
    conf.set_override("report_interval", 1)
    caplog.set_level(logging.INFO, logger="novalet.servicegroup")
    ref = FakeServiceRef(errors=[ValueError("boom"), ValueError("boom")])
    driver = DbDriver(conf, initial_delay=0, batched=False)  # a timer of its own
    driver.join("h1", "compute", FakeService(ref))
    try:
        wait_for(lambda: len(ref.saved) >= 1)
    finally:
        driver.leave("h1", "compute")
    errors = messages(caplog, "Unexpected error in the heartbeat")
    assert len(errors) == 2 and all(r.exc_info for r in errors)
    assert not messages(caplog, "went away")


def test_reporters_are_per_host_and_topic_and_leave_stops_one(conf):
    conf.set_override("report_interval", 1)
    driver = DbDriver(conf, initial_delay=0)
    refs = {host: FakeServiceRef() for host in ("a", "b")}
    for host, ref in refs.items():
        driver.join(host, "compute", FakeService(ref))
    try:
        with pytest.raises(exception.Conflict):
            driver.join("a", "compute", FakeService(FakeServiceRef()))
        assert driver.joined() == [("a", "compute"), ("b", "compute")]
        wait_for(lambda: all(len(r.saved) >= 1 for r in refs.values()))
        driver.leave("a", "compute")
        after_leave = list(refs["a"].saved)
        wait_for(lambda: len(refs["b"].saved) >= 3)
        assert refs["a"].saved == after_leave
        assert driver.joined() == [("b", "compute")]
        driver.leave("nohost", "compute")  # not joined: nothing to do
    finally:
        driver.stop()
    assert driver.joined() == []


def test_a_record_with_unsent_changes_beats_with_a_save(conf, fake_batches):
    """Changes an older conductor could not take stay on the record; the
    batch leaves that record out and its beat is a save, which carries them."""
    conf.set_override("report_interval", 1)
    driver = DbDriver(conf, initial_delay=0)
    plain, pending = FakeServiceRef(), FakeServiceRef()
    pending.pending = {"started_at"}
    driver.join("a", "compute", FakeService(plain))
    driver.join("b", "compute", FakeService(pending))
    try:
        wait_for(lambda: pending.saved and plain.saved)
    finally:
        driver.stop()
    assert pending.saved[0] == 1  # its own save of report_count + 1
    assert all(pending.id not in call for call in fake_batches)
    assert any(plain.id in call for call in fake_batches)


def test_first_beat_waits_for_the_initial_delay(conf):
    conf.set_override("report_interval", 1)
    driver = DbDriver(conf)  # default initial delay: 5 s
    waiting, eager = FakeServiceRef(), FakeServiceRef()
    driver.join("waiting", "compute", FakeService(waiting))
    driver.join("eager", "compute", FakeService(eager), initial_delay=0)
    try:
        wait_for(lambda: len(eager.saved) >= 1)
        assert waiting.saved == []
    finally:
        driver.stop()
    assert waiting.saved == []


def test_join_without_a_record_is_refused(conf):
    with pytest.raises(exception.ObjectActionError):
        DbDriver(conf).join("h1", "compute", FakeService(None))


# -- tooz driver without a backend ---------------------------------------------------

class FakeCoordinator:
    """Records calls; ``heartbeat`` fails while ``down``."""

    def __init__(self):
        self.down = False
        self.members: set[bytes] = set()
        self.calls: list[str] = []

    def _result(self, value=None):
        return mock.Mock(get=mock.Mock(return_value=value))

    def start(self, start_heart=False):
        self.calls.append("start(start_heart=%s)" % start_heart)

    def stop(self):
        self.calls.append("stop")

    def heartbeat(self):
        if self.down:
            raise coordination.ToozConnectionError("connection refused")
        self.calls.append("heartbeat")

    def join_group(self, group):
        if b"me" in self.members:
            raise coordination.MemberAlreadyExist(group, b"me")
        self.members.add(b"me")
        self.calls.append("join")
        return self._result()

    def leave_group(self, group):
        self.members.discard(b"me")
        self.calls.append("leave")
        return self._result()


def test_tooz_reporter_beats_rejoins_and_logs_a_lost_backend(conf, caplog):
    caplog.set_level(logging.INFO, logger="novalet.servicegroup")
    conf.set_override("service_down_time", 7)
    fake = FakeCoordinator()
    with mock.patch.object(tooz_driver.coordination, "get_coordinator",
                           return_value=fake) as get:
        reporter = ToozDriver(conf, group_prefix="p")._make_reporter(
            "h1", "compute", FakeService(FakeServiceRef()))
    url, member = get.call_args.args
    assert member == b"novalet-compute:h1"
    assert get.call_args.kwargs == {"membership_timeout": 7}
    assert fake.calls == ["start(start_heart=False)", "join"]
    fake.members.clear()  # evicted by someone's get_members
    assert reporter.run_once()
    assert fake.calls[-2:] == ["heartbeat", "join"]
    fake.down = True
    assert not reporter.run_once() and not reporter.run_once()
    fake.down = False
    assert reporter.run_once()
    assert len(messages(caplog, "coordination backend went away")) == 1
    assert len(messages(caplog, "coordination backend recovered")) == 1
    reporter.stop()
    assert fake.calls[-2:] == ["leave", "stop"]
