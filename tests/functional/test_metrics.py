"""Metrics in one process: the in-process conductor's calls, the endpoint
over HTTP, the fleet collector and the database counters, all scraped and
parsed with prometheus_client's parser."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, servicegroup, upgrade
from novalet.metrics import endpoint, fleet, health, registry
from tests.scrape import delta, get, label_values, scrape, value

CALLS = "novalet_conductor_calls_total"


@pytest.fixture
def metrics_on(conf):
    conf("bind_port", 0, "metrics")
    assert registry.current is None
    endpoint.setup(novalet_conf.CONF)
    yield registry.current
    endpoint.cleanup()
    registry.disable()


def _serve(checks=(), collectors=()):
    return endpoint.serve(novalet_conf.CONF, checks=checks, collectors=collectors)


def test_off_unless_bind_port_is_set(conf):
    assert endpoint.setup(novalet_conf.CONF) is None
    assert registry.current is None
    assert endpoint.serve(novalet_conf.CONF) is None


def test_inprocess_calls_are_counted_exactly(metrics_on, sqlite_db, conf):
    conf("indirection", "inprocess", "objects")
    indirection.configure(novalet_conf.CONF)
    ctxt = context.get_admin_context()
    ep = _serve()
    before = scrape(ep.url)
    svc = objects.Service(ctxt, host="h1", binary="novalet-compute", topic="compute")
    svc.create()
    for _ in range(3):
        objects.Service.get_by_host_and_binary(ctxt, "h1", "novalet-compute")
    with pytest.raises(exception.ServiceNotFound):
        objects.Service.get_by_host_and_binary(ctxt, "nope", "novalet-compute")
    api = indirection.current()
    for name in ("Evil1", "Evil2"):
        with pytest.raises(exception.UnknownObject):
            api.object_class_action_versions(ctxt, name, "drop_tables",
                                             {name: "1.0"}, [], {})
    with pytest.raises(exception.MethodNotRemotable):
        api.object_action(ctxt, svc, "_from_db_object", [], {})
    after = scrape(ep.url)

    def moved(**labels):
        return delta(before, after, CALLS, **labels)

    assert moved(object="Service", method="create", outcome="ok") == 1
    assert moved(object="Service", method="get_by_host_and_binary", outcome="ok") == 3
    assert moved(object="Service", method="get_by_host_and_binary", outcome="error") == 1
    assert moved(object="unknown", method="unknown", outcome="refused") == 2
    assert moved(object="Service", method="unknown", outcome="refused") == 1
    assert delta(before, after, "novalet_conductor_call_duration_seconds_count",
                 object="Service", method="get_by_host_and_binary") == 4
    assert value(after, "novalet_conductor_calls_in_flight") == 0
    assert not {"Evil1", "Evil2", "drop_tables", "_from_db_object"} & (
        label_values(after, "object") | label_values(after, "method"))
    assert value(after, "process_resident_memory_bytes") > 0


def test_endpoint_answers_health_and_nothing_else(metrics_on):
    reasons = [None]
    ep = _serve(checks=[lambda: reasons[0]])
    assert get(ep.url + "/healthz") == (200, "ok\n")
    reasons[0] = "database unreachable: gone"
    assert get(ep.url + "/healthz") == (503, "database unreachable: gone\n")

    def broken():
        raise RuntimeError("boom\nsecond line")

    assert health.Health([broken]).status() == (
        False, "health check failed: boom second line")
    assert get(ep.url + "/nope")[0] == 404
    import urllib.request

    request = urllib.request.Request(ep.url + "/metrics", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(request, timeout=10)
    assert e.value.code == 405


class CountingAPI:
    def __init__(self, api):
        self.api = api
        self.reads = 0

    def get_all(self, ctxt):
        self.reads += 1
        return self.api.get_all(ctxt)


def test_fleet_states_read_at_most_once_per_interval(metrics_on, sqlite_db, conf):
    conf("fleet_refresh_interval", 3600, "metrics")
    ctxt = context.get_admin_context()
    made = {}
    for host in ("up", "down", "disabled", "forced"):
        made[host] = objects.Service(ctxt, host=host, binary="novalet-compute",
                                     topic="compute")
        made[host].create()
    objects.ServiceList.report_heartbeats(ctxt, [made["up"].id, made["disabled"].id])
    made["disabled"].disabled = True
    made["disabled"].save()
    made["forced"].forced_down = True
    made["forced"].save()
    api = CountingAPI(servicegroup.API(novalet_conf.CONF))
    ep = _serve(collectors=[fleet.FleetCollector(novalet_conf.CONF, api)])
    for _ in range(5):
        samples = scrape(ep.url)
    assert api.reads == 1
    for state in ("up", "down", "disabled", "forced_down"):
        assert value(samples, "novalet_services", binary="novalet-compute",
                     state=state) == 1, state
    assert value(samples, "novalet_version_cap_info", binary="novalet-compute",
                 rpc="newest", objects="newest") == 1
    assert value(samples, "novalet_service_version_minimum",
                 binary="novalet-compute") == upgrade.SERVICE_VERSION
    assert value(samples, "novalet_fleet_read_timestamp_seconds") > 0


def test_an_engine_made_before_metrics_are_on_counts_its_errors(sqlite_db, conf):
    """The database layer imports no metrics: turning them on hooks them
    into the engines made already, and into later ones, once each."""
    from oslo_db import exception as db_exc

    from novalet.db import engine as db_engine

    ctxt = context.get_admin_context()
    objects.ServiceList.get_all(ctxt)  # the engine exists, metrics are off
    conf("bind_port", 0, "metrics")
    assert registry.current is None
    try:
        endpoint.setup(novalet_conf.CONF)
        endpoint.setup(novalet_conf.CONF)  # a second setup counts nothing twice
        ep = _serve()
        before = scrape(ep.url)
        with pytest.raises(db_exc.DBNonExistentTable):
            with db_engine.get_engine().connect() as connection:
                connection.execute(sa.text("SELECT * FROM no_such_table"))
        after = scrape(ep.url)
        assert delta(before, after, "novalet_database_errors_total",
                     error="operational") == 1
    finally:
        endpoint.cleanup()
        registry.disable()


def test_database_disconnect_and_reconnect_counted(metrics_on, postgresql_db):
    from novalet.db import engine as db_engine

    ctxt = context.get_admin_context()
    ep = _serve()
    objects.ServiceList.get_all(ctxt)  # a pooled connection exists
    before = scrape(ep.url)
    # Our test database's connections only (a private database of this run).
    with sa.create_engine(postgresql_db.admin_url, poolclass=sa.pool.NullPool,
                          isolation_level="AUTOCOMMIT").connect() as admin:
        admin.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = :n AND pid <> pg_backend_pid()"),
            {"n": postgresql_db.name})
    objects.ServiceList.get_all(ctxt)  # pre-ping fails, a new connection serves
    after = scrape(ep.url)
    assert delta(before, after, "novalet_database_reconnects_total") >= 1
    assert delta(before, after, "novalet_database_errors_total",
                 error="disconnect") >= 1
    db_engine.dispose()
