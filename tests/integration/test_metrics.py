"""Metrics and health of real processes on RabbitMQ and PostgreSQL: a
``novalet-conductor`` and a ``novalet-compute`` with ``[metrics]`` on,
scraped over HTTP and parsed by prometheus_client's parser; counters must
move by exactly the calls this test makes."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from novalet.compute import rpcapi as compute_rpcapi
from novalet.conductor import rpcapi as conductor_rpcapi
from novalet.objects import base as objects_base
from tests import processes, services, tcpproxy
from tests.processes import wait_for
from tests.scrape import delta, get, label_values, scrape, value

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

CALLS = "novalet_conductor_calls_total"


def metrics_url(proc):
    return proc.wait_for_log(r"Metrics on (http://[\d.:]+)/metrics").group(1)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, tmp_path, transport_url, db_url, conf):
        self.tmp_path = tmp_path
        suffix = os.urandom(4).hex()
        self.common = {"transport_url": transport_url, "report_interval": 1,
                       "service_down_time": 6, "periodic_fuzzy_delay": 0,
                       "update_resources_interval": 2, "rpc_response_timeout": 5,
                       "state_path": str(tmp_path / "state")}
        self.sections = {"database": {"connection": db_url},
                         "conductor": {"topic": "conductor-" + suffix, "workers": 1},
                         "compute": {"topic": "compute-" + suffix},
                         "metrics": {"bind_port": 0, "fleet_refresh_interval": 1,
                                     "health_probe_interval": 0}}
        self.procs = {}
        self.conf = conf

    def config(self, name, extra=None, **default):
        sections = {"DEFAULT": dict(self.common, host=name, **default)}
        for section, values in self.sections.items():
            sections[section] = dict(values)
        for section, values in (extra or {}).items():
            sections.setdefault(section, {}).update(values)
        return processes.write_config(str(self.tmp_path / (name + ".conf")), sections)

    def start(self, name, binary, extra=None, **default):
        proc = processes.ServiceProcess(binary, self.config(name, extra, **default),
                                        str(self.tmp_path / (name + ".log")))
        self.procs[name] = proc
        return proc

    def client(self, transport_url, db_url):
        """This test process talks to the conductor like a compute does."""
        conf = self.conf
        conf("transport_url", transport_url)
        conf("connection", db_url, "database")
        conf("topic", self.sections["conductor"]["topic"], "conductor")
        conf("topic", self.sections["compute"]["topic"], "compute")
        conf("indirection", "rpc", "objects")
        conf("rpc_response_timeout", 10)
        indirection.configure(novalet_conf.CONF)

    def stop(self):
        for proc in self.procs.values():
            if proc.proc.poll() is None:
                proc.stop()


@pytest.fixture
def cluster(tmp_path, rabbit_vhost, postgresql_db, conf):
    c = Cluster(tmp_path, rabbit_vhost.url, postgresql_db.url, conf)
    yield c
    c.stop()


def _oslo_metrics_daemon(tmp_path):
    """oslo.metrics' collector daemon on a socket and a loopback port of
    its own: oslo.messaging's RPC client metrics arrive there."""
    sock = str(tmp_path / "oslo-metrics.sock")
    port = free_port()
    config = processes.write_config(str(tmp_path / "oslo-metrics.conf"), {
        "oslo_metrics": {"metrics_socket_file": sock, "prometheus_host": "127.0.0.1",
                         "prometheus_port": port}})
    proc = subprocess.Popen([os.path.join(processes.BIN_DIR, "oslo-metrics"),
                             "--config-file", config],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    wait_for(lambda: os.path.exists(sock), 30, "the oslo.metrics socket")
    return proc, sock, "http://127.0.0.1:%d" % port


def test_counters_move_by_exactly_the_calls_made(cluster, tmp_path, rabbit_vhost,
                                                 postgresql_db):
    oslo_daemon, oslo_sock, oslo_url = _oslo_metrics_daemon(tmp_path)
    try:
        _check_counters(cluster, rabbit_vhost, postgresql_db, oslo_sock, oslo_url)
    finally:
        oslo_daemon.terminate()
        oslo_daemon.wait(10)


def _check_counters(cluster, rabbit_vhost, postgresql_db, oslo_sock, oslo_url):
    cond = cluster.start("cond", "novalet-conductor")
    cond_url = metrics_url(cond)
    cond.wait_for_log("novalet-conductor started")
    comp = cluster.start("cmp", "novalet-compute", {
        "fake": {"nodes": 2, "vcpus": 8, "memory_mb": 8192, "local_gb": 200},
        "oslo_messaging_metrics": {"metrics_enabled": True,
                                   "metrics_socket_file": oslo_sock,
                                   "metrics_process_name": "novalet-compute"}})
    comp_url = metrics_url(comp)
    comp.wait_for_log("novalet-compute started")
    cluster.client(rabbit_vhost.url, postgresql_db.url)
    ctxt = context.get_admin_context()

    # Both healthy once the compute's first heartbeat worked.
    wait_for(lambda: get(comp_url + "/healthz") == (200, "ok\n"), 30, "compute healthy")
    assert get(cond_url + "/healthz") == (200, "ok\n")

    before = scrape(cond_url)
    for _ in range(4):
        objects.ComputeNodeList.get_all(ctxt)
    for _ in range(3):
        with pytest.raises(exception.ServiceNotFound):
            objects.Service.get_by_host_and_binary(ctxt, "nohost", "novalet-compute")
    api = conductor_rpcapi.ConductorAPI(novalet_conf.CONF)
    service_version = objects.Service.VERSION
    for _ in range(2):  # not remotable: refused, method label "unknown"
        with pytest.raises(exception.MethodNotRemotable):
            api.object_class_action_versions(ctxt, "Service", "obj_reset_changes",
                                             {"Service": service_version}, [], {})
    for i in range(5):  # made-up names: refused, no new label values
        with pytest.raises(exception.UnknownObject):
            api.object_class_action_versions(ctxt, "Hostile%d" % i, "m%d" % i,
                                             {"Hostile%d" % i: "1.0"}, [], {})
    # An object version the conductor does not know: refused while the
    # arguments are rebuilt, before any endpoint runs.
    client = rpc.Client(novalet_conf.CONF.conductor.topic, "1.1",
                        entities=objects_base.NovaletObjectSerializer())
    with pytest.raises(exception.UnsupportedObjectVersion):
        client.call(ctxt, "object_action", objmethod="save", args=[], kwargs={},
                    objinst={"novalet_object.name": "Service",
                             "novalet_object.namespace": "novalet",
                             "novalet_object.version": "9.9",
                             "novalet_object.data": {}})
    after = scrape(cond_url)

    def moved(**labels):
        return delta(before, after, CALLS, **labels)

    assert moved(object="ComputeNodeList", method="get_all", outcome="ok") == 4
    assert delta(before, after, "novalet_conductor_call_duration_seconds_count",
                 object="ComputeNodeList", method="get_all") == 4
    assert moved(object="Service", method="get_by_host_and_binary",
                 outcome="error") == 3
    assert delta(before, after, "novalet_conductor_call_errors_total",
                 object="Service", method="get_by_host_and_binary",
                 error="ServiceNotFound") == 3
    assert moved(object="Service", method="unknown", outcome="refused") == 3
    assert moved(object="unknown", method="unknown", outcome="refused") == 5
    values = label_values(after, "object") | label_values(after, "method")
    assert not [v for v in values if v.startswith(("Hostile", "m0", "m4"))]
    # (The compute's heartbeats and audits may be in flight right now.)
    assert 0 <= value(after, "novalet_conductor_calls_in_flight") <= 2

    # The fleet: the two services up; the compute disabled shows as such.
    assert value(after, "novalet_services", binary="novalet-compute", state="up") == 1
    assert value(after, "novalet_services", binary="novalet-conductor", state="up") == 1
    assert value(after, "novalet_version_cap_info", binary="novalet-compute",
                 rpc="newest", objects="newest") == 1
    svc = objects.Service.get_by_host_and_binary(ctxt, "cmp", "novalet-compute")
    svc.disabled = True
    svc.save()
    wait_for(lambda: value(scrape(cond_url), "novalet_services",
                           binary="novalet-compute", state="disabled") == 1,
             15, "the disabled compute in the fleet metrics")

    # The compute: claims by outcome, audits per node, its nodes' usage.
    comp_before = scrape(comp_url)
    computes = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    fits = objects.Instance(ctxt, vcpus=3, memory_mb=1024, root_gb=10)
    fits.create()
    computes.build_instance(ctxt, fits, "cmp", "cmp-node-1")
    too_big = objects.Instance(ctxt, vcpus=1, memory_mb=10**6, root_gb=1)
    too_big.create()
    with pytest.raises(exception.ComputeResourcesUnavailable):
        computes.build_instance(ctxt, too_big, "cmp", "cmp-node-1")
    comp_after = scrape(comp_url)
    assert delta(comp_before, comp_after, "novalet_claims_total",
                 node="cmp-node-1", outcome="ok") == 1
    assert delta(comp_before, comp_after, "novalet_claims_total",
                 node="cmp-node-1", outcome="refused") == 1
    for node in ("cmp-node-1", "cmp-node-2"):
        assert value(comp_after, "novalet_resource_audit_duration_seconds_count",
                     node=node) >= 1
        assert value(comp_after, "novalet_resource_audit_failures_total",
                     node=node) == 0
    record = objects.ComputeNode.get_by_host_and_nodename(ctxt, "cmp", "cmp-node-1")
    assert (record.vcpus, record.vcpus_used) == (8, 3)
    assert value(comp_after, "novalet_node_vcpus", node="cmp-node-1") == 8
    assert value(comp_after, "novalet_node_vcpus_used", node="cmp-node-1") == 3
    assert value(comp_after, "novalet_node_memory_used_bytes",
                 node="cmp-node-1") == 1024 * 2**20
    assert value(comp_after, "novalet_node_disk_bytes", node="cmp-node-1") == 200 * 2**30
    assert value(comp_after, "novalet_heartbeats_total", outcome="ok") >= 2
    assert value(comp_after, "novalet_heartbeats_total", outcome="failed") == 0
    assert value(comp_after, "novalet_heartbeat_duration_seconds_count") >= 2

    # oslo.messaging's own client metrics reached oslo.metrics' daemon.
    oslo = wait_for(lambda: [v for (name, labels), v in scrape(oslo_url).items()
                             if name == "oslo_messaging_rpc_client_invocation_end_total"
                             and ("process", "novalet-compute") in labels
                             and ("method", "object_action") in labels and v > 0],
                    20, "oslo.messaging metrics in oslo.metrics")
    assert oslo
    for proc in (comp, cond):
        assert proc.stop() == 0
        assert proc.errors() == []


def test_healthz_follows_the_broker_and_the_database(cluster, rabbit_vhost,
                                                     postgresql_db):
    """Broker and database behind loopback proxies: cutting a proxy turns
    /healthz to 503 with the reason, restoring it back to 200."""
    rabbit = tcpproxy.TCPProxy((services.RABBIT_HOST, 5672))
    pg = tcpproxy.TCPProxy(("127.0.0.1", 5432))
    try:
        via_rabbit = rabbit_vhost.url.replace(":5672/", ":%d/" % rabbit.port)
        via_pg = postgresql_db.url.replace("127.0.0.1:5432", "127.0.0.1:%d" % pg.port)
        assert via_rabbit != rabbit_vhost.url and via_pg != postgresql_db.url
        cluster.common["transport_url"] = via_rabbit
        cluster.sections["database"]["connection"] = via_pg
        cond = cluster.start("cond", "novalet-conductor")
        cond_url = metrics_url(cond)
        cond.wait_for_log("novalet-conductor started")
        comp = cluster.start("cmp", "novalet-compute")
        comp_url = metrics_url(comp)
        comp.wait_for_log("novalet-compute started")
        for url in (cond_url, comp_url):
            wait_for(lambda url=url: get(url + "/healthz") == (200, "ok\n"), 30,
                     url + " healthy")

        rabbit.cut()
        for url in (cond_url, comp_url):
            status, body = wait_for(
                lambda url=url: (r := get(url + "/healthz"))[0] == 503 and r, 30,
                url + " unhealthy")
            assert body.startswith("broker unreachable: ") and body.count("\n") == 1
            assert "guest:***@" in body or "guest" not in body  # password masked
        rabbit.restore()
        for url in (cond_url, comp_url):
            wait_for(lambda url=url: get(url + "/healthz") == (200, "ok\n"), 60,
                     url + " healthy again")

        before = scrape(cond_url)
        pg.cut()
        status, body = wait_for(
            lambda: (r := get(cond_url + "/healthz"))[0] == 503 and r, 30,
            "the conductor unhealthy without its database")
        assert body.startswith("database unreachable: ")
        pg.restore()
        wait_for(lambda: get(cond_url + "/healthz") == (200, "ok\n"), 60,
                 "the conductor healthy again")
        after = scrape(cond_url)
        # The pool found its connections broken and replaced them.
        assert delta(before, after, "novalet_database_reconnects_total") >= 1
        assert delta(before, after, "novalet_database_errors_total",
                     error="disconnect") >= 1
    finally:
        rabbit.close()
        pg.close()


def test_workers_share_one_endpoint(cluster, rabbit_vhost, postgresql_db):
    """[conductor] workers = 2: the parent serves the sum of both workers'
    files; the run's directory is removed at exit."""
    cluster.sections["conductor"]["workers"] = 2
    cond = cluster.start("cond", "novalet-conductor")
    cond_url = metrics_url(cond)
    directory = cond.wait_for_log(r"workers' metrics in (\S+)").group(1)
    cond.wait_for_log("novalet-conductor started", count=2)
    cluster.client(rabbit_vhost.url, postgresql_db.url)
    ctxt = context.get_admin_context()
    workers = processes.children(cond.proc.pid)
    assert len(workers) == 2

    before = scrape(cond_url)
    for _ in range(30):
        objects.ComputeNodeList.get_all(ctxt)
    after = scrape(cond_url)
    assert delta(before, after, CALLS, object="ComputeNodeList", method="get_all",
                 outcome="ok") == 30
    # Both workers served some (RabbitMQ hands a topic's calls round robin).
    files = os.listdir(directory)
    for pid in workers:
        assert "counter_%d.db" % pid in files, (pid, files)

    # A worker killed and restarted: what it counted stays in the sums.
    os.kill(workers[0], signal.SIGKILL)
    wait_for(lambda: len(set(processes.children(cond.proc.pid)) - {workers[0]}) == 2, 60,
             "the worker restarted")
    for _ in range(5):
        objects.ComputeNodeList.get_all(ctxt)
    later = scrape(cond_url)
    assert delta(before, later, CALLS, object="ComputeNodeList", method="get_all",
                 outcome="ok") == 35
    assert value(later, "novalet_conductor_calls_in_flight") == 0
    assert cond.stop() == 0
    assert not os.path.exists(directory)
    assert not re.search(r"Traceback", cond.log())


def test_compute_sighup_restarts_the_worker_behind_the_same_endpoint(
        cluster, rabbit_vhost, postgresql_db):
    """SIGHUP to a compute: the parent stays, a new worker (new PID) starts
    from the beginning (a second start line, a new first audit) and serves
    the endpoint the parent bound, from its own memory: the counters are
    the new process's."""
    cond = cluster.start("cond", "novalet-conductor")
    cond.wait_for_log("novalet-conductor started")
    comp = cluster.start("cmp", "novalet-compute")
    comp_url = metrics_url(comp)
    comp.wait_for_log("novalet-compute started")
    [old_worker] = processes.children(comp.proc.pid)
    wait_for(lambda: value(scrape(comp_url), "novalet_heartbeats_total",
                           outcome="ok") >= 2, 30, "two heartbeats")
    before = scrape(comp_url)
    comp.signal(signal.SIGHUP)
    comp.wait_for_log("novalet-compute started", count=2)
    [new_worker] = wait_for(
        lambda: [p for p in processes.children(comp.proc.pid) if p != old_worker],
        30, "the new worker")
    assert comp.proc.poll() is None
    assert old_worker not in processes.children(comp.proc.pid)
    after = wait_for(lambda: get(comp_url + "/healthz") == (200, "ok\n")
                     and scrape(comp_url), 30, "the endpoint served again")
    # The serving process is the new worker: its own start time and counts.
    assert (value(after, "process_start_time_seconds")
            > value(before, "process_start_time_seconds"))
    assert (value(after, "novalet_resource_audit_duration_seconds_count",
                  node="cmp-node-1") >= 1)
    assert comp.stop() == 0 and cond.stop() == 0
    assert not comp.errors(), comp.errors()


def test_allinone_turns_metrics_on_and_prints_the_url(tmp_path):
    config = processes.write_config(str(tmp_path / "aio.conf"), {
        "DEFAULT": {"state_path": str(tmp_path / "state")}})
    proc = subprocess.Popen(
        [os.path.join(processes.BIN_DIR, "novalet-allinone"), "--config-file", config,
         "--computes", "2", "--nodes", "1", "--instances", "2", "--duration", "60"],
        stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        line = ""
        for _ in range(5):
            line = proc.stdout.readline()
            if "metrics on" in line:
                break
        url = re.search(r"metrics on (http://127\.0\.0\.1:\d+)/metrics", line).group(1)
        samples = wait_for(
            lambda: (s := scrape(url)) and value(s, "novalet_services",
                                                  binary="novalet-compute",
                                                  state="up") == 2 and s,
            60, "both computes up in the fleet metrics")
        assert get(url + "/healthz") == (200, "ok\n")
        assert value(samples, "novalet_node_vcpus", node="compute-1-node-1") > 0
        assert value(samples, CALLS, object="Instance", method="create",
                     outcome="ok") == 2
        assert value(samples, "novalet_claims_total", node="compute-1-node-1",
                     outcome="ok") + value(samples, "novalet_claims_total",
                                           node="compute-2-node-1", outcome="ok") == 2
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()
