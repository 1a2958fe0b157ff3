"""``novalet-conductor`` as a separate process on RabbitMQ and PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import sqlalchemy as sa

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects
from tests import processes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _config(tmp_path, transport_url, connection, **conductor):
    values = {"workers": 1, "topic": "conductor-%s" % os.urandom(4).hex()}
    values.update(conductor)
    return processes.write_config(str(tmp_path / "conductor.conf"), {
        "DEFAULT": {"transport_url": transport_url, "host": "cond-test",
                    "startup_timeout": 2},
        "database": {"connection": connection, "max_retries": 1,
                     "retry_interval": 1},
        "conductor": values,
    }), values["topic"]


def _start(tmp_path, rabbit_vhost, database, **conductor):
    """A ``novalet-conductor`` process on ``rabbit_vhost`` and ``database``;
    returns it (not waited for), its config file and its topic."""
    config, topic = _config(tmp_path, rabbit_vhost.url, database.url, **conductor)
    proc = processes.ServiceProcess("novalet-conductor", config,
                                    str(tmp_path / "conductor.log"))
    return proc, config, topic


def _run_to_exit(config, timeout=60):
    return processes.run_command("novalet-conductor", "--config-file", config,
                                 timeout=timeout)


def test_unreachable_database_exits_clearly(tmp_path, rabbit_vhost):
    config, _ = _config(tmp_path, rabbit_vhost.url,
                        "postgresql+psycopg2://postgres:s3cret@127.0.0.1:1/nope")
    result = _run_to_exit(config)
    assert result.returncode == 3  # unreachable
    assert "cannot start" in result.stderr
    assert "Traceback" not in result.stderr
    assert "s3cret" not in result.stderr
    assert "127.0.0.1:1" in result.stderr


def test_unreachable_broker_exits_clearly(tmp_path, postgresql_db):
    processes.run_command("novalet-manage", "--config-file",
                          _config(tmp_path, "fake://", postgresql_db.url)[0],
                          "db", "sync")
    config, _ = _config(tmp_path, "rabbit://guest:s3cret@127.0.0.1:1/",
                        postgresql_db.url)
    result = _run_to_exit(config)
    assert result.returncode == 3  # unreachable
    assert "cannot start" in result.stderr and "Traceback" not in result.stderr
    assert "127.0.0.1:1/" in result.stderr
    assert "s3cret" not in result.stderr + result.stdout


def test_unsynced_database_asks_for_db_sync(tmp_path, rabbit_vhost,
                                            _database_registry):
    from tests import services

    database = services.provision_database("postgresql", str(tmp_path))
    try:
        config, _ = _config(tmp_path, rabbit_vhost.url, database.url)
        result = _run_to_exit(config)
    finally:
        database.drop()
    assert result.returncode == 1  # the operation (start) failed
    assert "novalet-manage db sync" in result.stderr


def _use(conf, topic, transport_url, connection):
    conf("topic", topic, "conductor")
    conf("transport_url", transport_url)
    conf("connection", connection, "database")
    conf("indirection", "rpc", "objects")
    conf("rpc_response_timeout", 60)
    indirection.configure(novalet_conf.CONF)


def test_sigterm_lets_in_flight_calls_finish(tmp_path, rabbit_vhost,
                                             postgresql_db, conf):
    proc, _, topic = _start(tmp_path, rabbit_vhost, postgresql_db)
    try:
        proc.wait_for_log("novalet-conductor started")
        log = proc.log()
        assert "guest:***@" in log and "guest:guest" not in log
        _use(conf, topic, rabbit_vhost.url, postgresql_db.url)
        ctxt = context.get_admin_context()
        node = objects.ComputeNode(ctxt, host="h", hypervisor_hostname="n",
                                   vcpus=1, memory_mb=1, local_gb=1,
                                   hypervisor_type="fake",
                                   hypervisor_version=1, cpu_info="{}")
        node.create()
        # Hold the row so the conductor's UPDATE waits: a call in flight.
        locker = sa.create_engine(postgresql_db.url, poolclass=sa.pool.NullPool)
        conn = locker.connect()
        trans = conn.begin()
        conn.execute(sa.text("SELECT id FROM compute_nodes WHERE id = :id "
                             "FOR UPDATE"), {"id": node.id})
        outcome = {}

        def save():
            try:
                node.memory_mb_used = 1
                node.save()
                outcome["ok"] = True
            except Exception as e:  # pragma: no cover - reported below
                outcome["error"] = e

        thread = threading.Thread(target=save)
        thread.start()
        time.sleep(1.5)  # the save is now waiting on the row lock
        proc.signal(15)
        time.sleep(1.0)
        trans.commit()
        conn.close()
        locker.dispose()
        thread.join(60)
        assert outcome == {"ok": True}
        assert proc.proc.wait(60) == 0
        rows = postgresql_db.query("SELECT memory_mb_used FROM compute_nodes")
        assert rows[0][0] == 1
    finally:
        proc.stop()
    assert not proc.errors(), proc.errors()


def test_several_workers_serve(tmp_path, rabbit_vhost, postgresql_db, conf):
    proc, _, topic = _start(tmp_path, rabbit_vhost, postgresql_db, workers=2)
    try:
        proc.wait_for_log("novalet-conductor started", count=2)
        _use(conf, topic, rabbit_vhost.url, postgresql_db.url)
        ctxt = context.get_admin_context()
        for i in range(20):
            objects.Service(ctxt, host="h%d" % i, binary="x").create()
        assert len(objects.ServiceList.get_all(ctxt, binary="x")) == 20
        # Both workers share one service record.
        assert len(objects.ServiceList.get_all(
            ctxt, binary="novalet-conductor")) == 1
    finally:
        assert proc.stop() == 0
    assert not proc.errors(), proc.errors()


#: A worker's start line; group 1 is its PID.
STARTED = (r"(\d+) INFO novalet\.service \[cond-test\] \[[^\]]*\] "
           r"novalet-conductor started on cond-test")


def test_sigusr2_prints_a_report_and_sighup_restarts_the_worker(
        tmp_path, rabbit_vhost, postgresql_db, conf):
    """What SIGHUP really does (oslo.service's threading launcher, on
    cotyledon): the parent process stays and re-reads its config files with
    ``mutate_config_files`` (a mutable option takes its new value, a change
    to an immutable one is ignored with a warning), then stops its worker
    as SIGTERM would and forks a new one (a new PID) with that
    configuration: the worker is restarted, not reloaded in place."""
    proc, config, topic = _start(tmp_path, rabbit_vhost, postgresql_db)
    try:
        first_start = proc.wait_for_log(
            STARTED)
        old_worker = int(first_start.group(1))
        assert processes.children(proc.proc.pid) == [old_worker]
        proc.signal(signal.SIGUSR2)
        proc.wait_for_log(r"Guru Meditation")
        with open(config) as f:
            text = f.read()
        with open(config, "w") as f:  # a mutable and an immutable option change
            f.write(text.replace("[DEFAULT]\n", "[DEFAULT]\nreport_interval = 3\n", 1)
                    .replace("host = cond-test", "host = renamed", 1))
        proc.signal(signal.SIGHUP)
        proc.wait_for_log(r"Option DEFAULT\.report_interval changed from "
                          r"\[[^\]]*\] to \[3\]")
        proc.wait_for_log(r"Ignoring change to immutable option DEFAULT\.host")
        second_start = proc.wait_for_log(
            STARTED, count=2)
        new_worker = int(second_start.group(1))
        assert new_worker != old_worker  # a new process, same parent
        assert proc.proc.poll() is None
        assert processes.children(proc.proc.pid) == [new_worker]
        _use(conf, topic, rabbit_vhost.url, postgresql_db.url)
        ctxt = context.get_admin_context()  # it serves, and beats faster

        def beats():
            return objects.Service.get_by_host_and_binary(
                ctxt, "cond-test", "novalet-conductor").report_count

        first = beats()
        deadline = time.monotonic() + 15
        while beats() < first + 3:
            assert time.monotonic() < deadline, "fewer than 3 beats in 15 s"
            time.sleep(0.5)
        with pytest.raises(exception.ServiceNotFound):  # host was not renamed
            objects.Service.get_by_host_and_binary(ctxt, "renamed",
                                                   "novalet-conductor")
    finally:
        assert proc.stop() == 0
    assert not proc.errors(), proc.errors()
