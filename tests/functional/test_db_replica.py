"""``[database] slave_connection``: fleet-wide listings read from the
replica, everything that feeds a write from the primary. The "replica" here
is a second database holding other rows, so where each read came from shows
in what it returns."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from novalet import conf as novalet_conf
from novalet import context, objects
from novalet.db import engine as db_engine
from novalet.db import migration
from tests import conftest as root
from tests import services


@pytest.fixture(params=["sqlite", "postgresql"])
def primary_and_replica(request, conf, _database_registry, tmp_path):
    primary = _database_registry(request.param)
    root.use_database(conf, primary)
    try:
        replica = services.provision_database(request.param, str(tmp_path))
    except services.ServiceUnavailable as e:
        root.service_unavailable(str(e))
    try:
        conf("connection", replica.url, "database")
        db_engine.configure(novalet_conf.CONF)
        migration.db_sync()
        conf("connection", primary.url, "database")
        conf("slave_connection", replica.url, "database")
        db_engine.configure(novalet_conf.CONF)
        yield primary, replica
    finally:
        db_engine.dispose()
        replica.drop()


def _insert_rows(db, host):
    with db.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO services (uuid, host, \"binary\", topic, report_count,"
            " disabled, forced_down, version, deleted) VALUES (:u, :h,"
            " 'novalet-compute', 'compute', 0, false, false, 2, 0)"),
            {"u": "00000000-0000-4000-8000-%012d" % len(host), "h": host})
        conn.execute(sa.text(
            "INSERT INTO compute_nodes (uuid, host, hypervisor_hostname, vcpus,"
            " memory_mb, local_gb, vcpus_used, memory_mb_used, local_gb_used,"
            " hypervisor_type, hypervisor_version, cpu_info, deleted) VALUES"
            " (:u, :h, :n, 1, 1, 1, 0, 0, 0, 'fake', 1, '{}', 0)"),
            {"u": "00000000-0000-4000-9000-%012d" % len(host), "h": host,
             "n": host + "-node-1"})
        conn.execute(sa.text(
            "INSERT INTO instances (uuid, host, node, vcpus, memory_mb, root_gb,"
            " ephemeral_gb, vm_state, deleted) VALUES (:u, :h, :n, 1, 1, 0, 0,"
            " 'active', 0)"),
            {"u": "00000000-0000-4000-a000-%012d" % len(host), "h": host,
             "n": host + "-node-1"})


def test_listings_come_from_the_replica_and_the_rest_from_the_primary(
        primary_and_replica):
    primary, replica = primary_and_replica
    _insert_rows(primary, "on-primary")
    _insert_rows(replica, "on-the-replica")
    ctxt = context.get_admin_context()

    # Fleet-wide listings: the replica's rows.
    assert [s.host for s in objects.ServiceList.get_all(ctxt)] == ["on-the-replica"]
    assert [s.host for s in objects.ServiceList.get_by_binary(
        ctxt, "novalet-compute")] == ["on-the-replica"]
    assert [n.host for n in objects.ComputeNodeList.get_all(ctxt)] == ["on-the-replica"]
    assert [i.host for i in objects.InstanceList.get_all(ctxt)] == ["on-the-replica"]

    # What a service reads before it writes: the primary's rows.
    assert objects.Service.get_by_host_and_binary(
        ctxt, "on-primary", "novalet-compute").host == "on-primary"
    assert [s.host for s in objects.ServiceList.get_all(
        ctxt, host="on-primary")] == ["on-primary"]
    assert [n.host for n in objects.ComputeNodeList.get_by_host(
        ctxt, "on-primary")] == ["on-primary"]
    assert [i.host for i in objects.InstanceList.get_by_host_and_node(
        ctxt, "on-primary", "on-primary-node-1")] == ["on-primary"]

    # Writes go to the primary only.
    svc = objects.Service(ctxt, host="new", binary="novalet-compute")
    svc.create()
    assert primary.query("SELECT count(*) FROM services WHERE host = 'new'")[0][0] == 1
    assert replica.query("SELECT count(*) FROM services WHERE host = 'new'")[0][0] == 0


def test_without_a_replica_listings_read_the_primary(conf, sqlite_db):
    _insert_rows(sqlite_db, "on-primary")
    ctxt = context.get_admin_context()
    assert [s.host for s in objects.ServiceList.get_all(ctxt)] == ["on-primary"]
