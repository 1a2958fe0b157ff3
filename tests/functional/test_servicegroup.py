"""Service liveness for real: the db driver's heartbeat on every call path
(local on SQLite/PostgreSQL/MariaDB, in-process conductor, fake:// RPC, a
separate novalet-conductor over RabbitMQ), a conductor that goes away and
comes back, and the tooz driver on the shared Redis.

Timing: report_interval=1 and service_down_time=2 throughout; waits are
bounded generously and never asserted on."""

from __future__ import annotations

import logging
import os
import time
import types
import urllib.parse

import pytest
import redis

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from novalet import service as novalet_service
from novalet.objects import base as objects_base
from novalet.servicegroup import API
from novalet.servicegroup.drivers.tooz import ToozDriver, member_id
from tests.processes import wait_for

pytestmark = pytest.mark.timeout(180)

CONF = novalet_conf.CONF
DOWN_TIME = 2


@pytest.fixture
def fast(conf):
    conf("report_interval", 1)
    conf("service_down_time", DOWN_TIME)
    return conf


def create_service(ctxt, host="h1", topic="compute"):
    svc = objects.Service(ctxt, host=host, binary="novalet-compute", topic=topic)
    svc.create()
    return svc


def holder(svc):
    """What ``join`` is given: ``novalet.service.Service`` has these two."""
    return types.SimpleNamespace(service_ref=svc, binary=svc.binary)


def db_row(database, svc):
    rows = database.query("SELECT report_count, last_seen_up FROM services "
                          "WHERE id = :id", id=svc.id)
    return tuple(rows[0])


def logged(caplog, text):
    return [r for r in caplog.records if text in r.getMessage()]


# -- db driver ------------------------------------------------------------------

def test_db_heartbeat_keeps_a_service_up_until_it_leaves(path, fast):
    ctxt = context.get_admin_context()
    svc = create_service(ctxt)
    sg = API(CONF, initial_delay=0)
    sg.join("h1", "compute", holder(svc))
    try:
        first_count, first_seen = wait_for(
            lambda: (r := db_row(path.database, svc))[0] >= 1 and r,
            what="first heartbeat")
        assert first_seen is not None
        count, seen = wait_for(
            lambda: (r := db_row(path.database, svc))[0] >= first_count + 3 and r,
            what="three more heartbeats")
        assert seen > first_seen
        # The reporter keeps the count of the object it was given true, once
        # the call that wrote the row has answered; nothing is re-read
        # (last_seen_up lives in the database only).
        wait_for(lambda: svc.report_count >= count, what="the local count")
        assert not svc.obj_what_changed()
        fresh = objects.Service.get_by_id(ctxt, svc.id)
        assert sg.is_up(fresh)
    finally:
        sg.leave("h1", "compute")
    stopped_at = db_row(path.database, svc)
    time.sleep(DOWN_TIME + 1.5)  # MySQL keeps whole seconds: margin of one
    assert db_row(path.database, svc) == stopped_at
    fresh = objects.Service.get_by_id(ctxt, svc.id)
    assert not sg.is_up(fresh)
    assert [(s.id, up) for s, up in sg.get_all(ctxt, binary=svc.binary)] == [
        (svc.id, False)]


class LostConductor:
    """An indirection API whose every call times out, as a gone conductor's."""

    def __init__(self):
        self.calls = 0

    def _lost(self, *args, **kwargs):
        self.calls += 1
        raise exception.RPCTimeout(topic="conductor", method="object_action",
                                   timeout=1)

    object_action = object_class_action_versions = object_backport_versions = _lost


def test_lost_conductor_is_logged_once_and_its_return_once(path, fast, caplog):
    caplog.set_level(logging.INFO, logger="novalet.servicegroup")
    ctxt = context.get_admin_context()
    svc = create_service(ctxt)
    sg = API(CONF, initial_delay=0)
    sg.join("h1", "compute", holder(svc))
    original = objects_base.get_indirection_api()
    try:
        wait_for(lambda: db_row(path.database, svc)[0] >= 1, what="first heartbeat")
        lost = LostConductor()
        objects_base.set_indirection_api(lost)
        try:
            wait_for(lambda: lost.calls >= 3, what="three failed heartbeats")
        finally:
            objects_base.set_indirection_api(original)
        before = db_row(path.database, svc)[0]
        wait_for(lambda: logged(caplog, "model server recovered"), what="recovery")
        wait_for(lambda: db_row(path.database, svc)[0] > before,
                 what="heartbeats after recovery")
    finally:
        sg.leave("h1", "compute")
    went = logged(caplog, "model server went away")
    back = logged(caplog, "model server recovered")
    assert len(went) == 1 and went[0].levelno == logging.ERROR
    assert went[0].exc_info is None
    assert len(back) == 1 and back[0].levelno == logging.INFO
    assert caplog.records.index(went[0]) < caplog.records.index(back[0])


def test_stopped_conductor_server_is_lost_and_found(sqlite_db, fast, caplog):
    """fake:// RPC to a conductor thread that is stopped, then restarted."""
    from novalet.conductor import manager as conductor_manager

    caplog.set_level(logging.INFO, logger="novalet.servicegroup")
    fast("topic", "conductor-%s" % os.urandom(4).hex(), "conductor")
    fast("transport_url", "fake://")
    fast("rpc_response_timeout", 1)
    rpc.init(CONF)

    def conductor():
        server = novalet_service.rpc_server(CONF.conductor.topic,
                            [conductor_manager.ConductorManager(CONF)],
                            server="test-conductor")
        server.start()
        return server

    server = conductor()
    fast("indirection", "rpc", "objects")
    indirection.configure(CONF)
    ctxt = context.get_admin_context()
    svc = create_service(ctxt)
    sg = API(CONF, initial_delay=0)
    sg.join("h1", "compute", holder(svc))
    try:
        wait_for(lambda: db_row(sqlite_db, svc)[0] >= 1, what="first heartbeat")
        server.stop()
        server.wait()
        wait_for(lambda: logged(caplog, "model server went away"), what="loss")
        time.sleep(2.5)  # more failed heartbeats: still one line
        server = conductor()
        wait_for(lambda: logged(caplog, "model server recovered"), what="recovery")
        at_recovery = svc.report_count
        wait_for(lambda: db_row(sqlite_db, svc)[0] > at_recovery,
                 what="heartbeats after recovery")
    finally:
        sg.leave("h1", "compute")
        server.stop()
        server.wait()
    assert len(logged(caplog, "model server went away")) == 1
    assert len(logged(caplog, "model server recovered")) == 1


def test_forced_down_and_stale_services_are_down(database, conf):
    ctxt = context.get_admin_context()
    sg = API(CONF)
    beating, forced, stale, new = (create_service(ctxt, host=h)
                                   for h in ("beating", "forced", "stale", "new"))
    for svc in (beating, forced, stale):
        svc.report_count += 1
        svc.save()
    database.query("UPDATE services SET last_seen_up = :t WHERE id = :id",
                   t="2001-01-01 00:00:00", id=stale.id)
    assert sg.is_up(objects.Service.get_by_id(ctxt, forced.id))
    forced.forced_down = True
    forced.save()
    pairs = sg.get_all(ctxt, binary="novalet-compute")
    assert [(s.host, up) for s, up in pairs] == [
        ("beating", True), ("forced", False), ("stale", False), ("new", False)]
    assert sg.get_all(ctxt, binary="novalet-conductor") == []


def test_many_reporters_in_one_process(sqlite_db, fast):
    ctxt = context.get_admin_context()
    hosts = ["fleet-%d" % i for i in range(5)]
    services = {h: create_service(ctxt, host=h) for h in hosts}
    sg = API(CONF, initial_delay=0)
    for host, svc in services.items():
        sg.join(host, "compute", holder(svc))
    try:
        with pytest.raises(exception.Conflict):
            sg.join(hosts[0], "compute", holder(services[hosts[0]]))
        wait_for(lambda: all(db_row(sqlite_db, s)[0] >= 2
                             for s in services.values()), what="fleet heartbeats")
        sg.leave(hosts[0], "compute")
        left_at = db_row(sqlite_db, services[hosts[0]])
        time.sleep(DOWN_TIME + 1.5)
        assert db_row(sqlite_db, services[hosts[0]]) == left_at
        ups = dict((s.host, up) for s, up in sg.get_all(ctxt))
        assert ups == {h: h != hosts[0] for h in hosts}
    finally:
        sg.stop()
    assert sg.driver.joined() == []


def _counting_batches(monkeypatch):
    """Record the ids of every ``ServiceList.report_heartbeats`` call made
    from this process (whatever path it then takes)."""
    calls: list[list[int]] = []
    real = objects.ServiceList.report_heartbeats

    def report_heartbeats(ctxt, ids):
        calls.append(list(ids))
        return real(ctxt, ids)

    monkeypatch.setattr(objects.ServiceList, "report_heartbeats", report_heartbeats)
    return calls


def _join_and_beat(database, services, beats, initial_delay=0.0):
    """Join ``services`` to one servicegroup API, wait until each has
    ``beats`` heartbeats in ``database``, stop it; returns the API."""
    sg = API(CONF, initial_delay=initial_delay)
    for svc in services:
        sg.join(svc.host, "compute", holder(svc))
    try:
        wait_for(lambda: all(db_row(database, s)[0] >= beats for s in services),
                 what="%d beats each" % beats)
    finally:
        sg.stop()
    return sg


def test_beats_of_one_process_share_calls(path, fast, monkeypatch):
    calls = _counting_batches(monkeypatch)
    ctxt = context.get_admin_context()
    services = [create_service(ctxt, host="batch-%d" % i) for i in range(3)]
    # Joined within milliseconds, first beats due 0.5 s later: the same tick
    # takes all three, whenever the timer thread first runs.
    sg = _join_and_beat(path.database, services, 3, initial_delay=0.5)
    ids = sorted(s.id for s in services)
    # Joined together, due together: one call carries all three.
    assert sorted(calls[0]) == ids
    assert all(sorted(c) == ids for c in calls[:3])
    assert all(up for s, up in sg.get_all(ctxt) if s.id in ids)


def test_deleted_record_registers_again_from_a_batch(path, fast):
    ctxt = context.get_admin_context()
    keep, doomed = create_service(ctxt, host="keep"), create_service(ctxt, host="doomed")
    doomed_holder = holder(doomed)
    sg = API(CONF, initial_delay=0)
    sg.join("keep", "compute", holder(keep))
    sg.join("doomed", "compute", doomed_holder)
    try:
        wait_for(lambda: db_row(path.database, doomed)[0] >= 1, what="first beat")
        doomed.destroy()
        new = wait_for(lambda: (r := path.database.query(
            "SELECT id, report_count FROM services WHERE host = 'doomed' "
            "AND deleted = 0")) and r[0][1] >= 2 and r[0], what="a new record")
        assert new[0] != doomed.id and doomed_holder.service_ref.id == new[0]
        # The deleted row is left as it was; the other service kept beating.
        assert path.database.query("SELECT deleted FROM services WHERE id = :i",
                                   i=doomed.id)[0][0] == doomed.id
        assert db_row(path.database, keep)[0] >= 2
    finally:
        sg.stop()


def test_conductor_without_batches_gets_one_save_per_service(
        sqlite_db, fast, monkeypatch, caplog):
    """A release 1 conductor refuses report_heartbeats (not remotable there):
    the driver falls back to Service.save() and says so once."""
    caplog.set_level(logging.INFO, logger="novalet.servicegroup")

    def refuse(ctxt, ids):
        raise exception.MethodNotRemotable(objname="ServiceList",
                                           method="report_heartbeats")

    monkeypatch.setattr(objects.ServiceList, "report_heartbeats", refuse)
    ctxt = context.get_admin_context()
    services = [create_service(ctxt, host="old-%d" % i) for i in range(2)]
    sg = _join_and_beat(sqlite_db, services, 3)
    refused = logged(caplog, "does not take batched heartbeats")
    assert len(refused) == 1 and "Traceback" not in refused[0].getMessage()
    assert all(up for s, up in sg.get_all(ctxt) if s.host.startswith("old-"))


# -- tooz driver ------------------------------------------------------------------

@pytest.fixture
def tooz_backend(redis_url, conf):
    """A private tooz namespace on the shared Redis, deleted afterwards."""
    namespace = "novalet-test-%s" % os.urandom(6).hex()
    conf("backend_url", "%s?namespace=%s" % (redis_url, namespace), "servicegroup")
    yield namespace
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=namespace + "*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def outsider(redis_url, namespace, member, group):
    """A member in another process that joins and never beats again."""
    from tooz import coordination

    url = "%s?%s" % (redis_url, urllib.parse.urlencode(
        {"namespace": namespace, "membership_timeout": DOWN_TIME}))
    coord = coordination.get_coordinator(url, member)
    coord.start(start_heart=False)
    coord.join_group(group).get()
    return coord


def test_tooz_membership_heartbeats_and_writes_no_row(sqlite_db, fast, tooz_backend):
    fast("servicegroup_driver", "tooz")
    ctxt = context.get_admin_context()
    svc = create_service(ctxt)
    sg = API(CONF, initial_delay=0)
    assert isinstance(sg.driver, ToozDriver)
    sg.join("h1", "compute", holder(svc))
    try:
        assert sg.is_up(svc)
        # Membership expires DOWN_TIME after the last beat: still up later
        # only because the reporter keeps beating.
        time.sleep(2 * DOWN_TIME + 1)
        assert sg.is_up(svc)
        assert [(s.id, up) for s, up in sg.get_all(ctxt)] == [(svc.id, True)]
        assert db_row(sqlite_db, svc) == (0, None)
        assert svc.report_count == 0 and svc.last_seen_up is None
        assert not svc.obj_what_changed()
        svc.forced_down = True
        assert not sg.is_up(svc)
        svc.forced_down = False
        sg.leave("h1", "compute")
        assert not sg.is_up(svc)
    finally:
        sg.stop()


def test_tooz_member_whose_beats_stop_goes_down(sqlite_db, fast, tooz_backend,
                                                redis_url):
    driver = ToozDriver(CONF, initial_delay=0,
                        group_prefix="test-%s" % os.urandom(4).hex())
    sg = API(CONF, driver=driver)
    ctxt = context.get_admin_context()
    alive, crashed = create_service(ctxt, "alive"), create_service(ctxt, "crashed")
    sg.join("alive", "compute", holder(alive))
    coord = outsider(redis_url, tooz_backend,
                     member_id("novalet-compute", "crashed"),
                     driver.group_id("compute"))
    try:
        assert sg.is_up(crashed) and sg.is_up(alive)
        wait_for(lambda: not sg.is_up(crashed), timeout=DOWN_TIME + 10,
                 what="the silent member expiring")
        assert sg.is_up(alive)
        assert driver.members("compute") == {member_id("novalet-compute", "alive")}
        assert driver.members("no-such-topic") == set()
    finally:
        coord.stop()
        sg.stop()


def test_tooz_member_evicted_from_its_group_joins_again(sqlite_db, conf,
                                                        tooz_backend, redis_url):
    from tooz import coordination

    # No timer beat during the test: the beat is run by hand, so the
    # eviction cannot race with it.
    conf("report_interval", 60)
    conf("service_down_time", 150)
    driver = ToozDriver(CONF, initial_delay=60,
                        group_prefix="test-%s" % os.urandom(4).hex())
    sg = API(CONF, driver=driver)
    svc = create_service(context.get_admin_context())
    sg.join("h1", "compute", holder(svc))
    try:
        assert sg.is_up(svc)
        # Another client using the same member id takes it out of the group
        # and deletes its heartbeat key when it stops.
        evictor = coordination.get_coordinator(
            "%s?namespace=%s" % (redis_url, tooz_backend),
            member_id("novalet-compute", "h1"))
        evictor.start(start_heart=False)
        evictor.leave_group(driver.group_id("compute")).get()
        evictor.stop()
        assert not sg.is_up(svc)
        assert driver.reporter("h1", "compute").run_once()
        assert sg.is_up(svc)
    finally:
        sg.stop()
