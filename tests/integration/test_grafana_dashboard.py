"""``etc/grafana/novalet.json`` against a real Prometheus server.

A ``novalet-conductor`` and a ``novalet-compute`` run with ``[metrics]`` on
(RabbitMQ, PostgreSQL); Debian's ``prometheus`` server (unpacked into the
venv by ``.ci/setup``'s ``install_prometheus``; nothing system-wide) scrapes
both every second and loads ``etc/prometheus/novalet-alerts.yml``. This test
makes calls of every kind a panel shows (ok, errors, refused dispatches, a
request with no signature, a duplicate row), then evaluates every query of
every panel through Prometheus's HTTP API: each must return data, with at
least one number (not NaN), and every metric the dashboard names must be
one Prometheus scraped from the services.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, objects
from novalet.compute import rpcapi as compute_rpcapi
from novalet.conductor import rpcapi as conductor_rpcapi
from tests import conftest, processes
from tests.private_rabbit import free_port
from tests.processes import wait_for
from tests.scrape import get, scrape, value

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DASHBOARD = os.path.join(ROOT, "etc", "grafana", "novalet.json")
ALERTS = os.path.join(ROOT, "etc", "prometheus", "novalet-alerts.yml")
PROMETHEUS = os.path.join(os.path.dirname(sys.executable), "prometheus")
#: What Grafana puts for ``$__rate_interval`` at a 1 s scrape interval, with room.
RATE_INTERVAL = "30s"
METRIC = re.compile(r"\bnovalet_[a-z0-9_]+\b")


def _dashboard() -> dict[str, Any]:
    with open(DASHBOARD) as f:
        return json.load(f)  # type: ignore[no-any-return]


def _queries() -> list[tuple[str, str]]:
    """``(panel title, expr)`` of every query of every panel."""
    return [(panel["title"], target["expr"])
            for panel in _dashboard()["panels"] if panel["type"] != "row"
            for target in panel["targets"]]


def test_dashboard_is_importable_grafana_json() -> None:
    """What Grafana's import needs: its datasource as an input, one
    Prometheus query per target, unique panel ids, no variables it would
    not know."""
    dashboard = _dashboard()
    assert [i["name"] for i in dashboard["__inputs"]] == ["DS_PROMETHEUS"]
    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    titles = [p["title"] for p in panels if p["type"] != "row"]
    assert len(titles) == len(set(titles)) and len(titles) >= 12
    for panel in panels:
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == "${DS_PROMETHEUS}", panel["title"]
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            variables = set(re.findall(r"\$\{?(\w+)", target["expr"]))
            assert variables <= {"__rate_interval"}, (panel["title"], variables)


def _start_prometheus(tmp_path: Any, targets: dict[str, str]) -> tuple[Any, str]:
    if not os.access(PROMETHEUS, os.X_OK):
        conftest.service_unavailable(
            "%s missing: bash -c '. .ci/setup; install_prometheus .venv'" % PROMETHEUS)
    port = free_port()
    scrape_configs = "".join(
        "  - job_name: %s\n    static_configs:\n      - targets: [\"%s\"]\n"
        % (job, url.split("//", 1)[1]) for job, url in targets.items())
    config = tmp_path / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                      "rule_files:\n  - %s\nscrape_configs:\n%s" % (ALERTS, scrape_configs))
    log = open(tmp_path / "prometheus.log", "w")
    proc = subprocess.Popen(
        [PROMETHEUS, "--config.file", str(config),
         "--storage.tsdb.path", str(tmp_path / "tsdb"),
         "--web.listen-address", "127.0.0.1:%d" % port],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    url = "http://127.0.0.1:%d" % port

    def ready() -> bool:
        if proc.poll() is not None:  # exited: reported below
            return True
        try:
            return get(url + "/-/ready", timeout=2)[0] == 200
        except OSError:
            return False

    wait_for(ready, 60, "prometheus ready")
    assert proc.poll() is None, (tmp_path / "prometheus.log").read_text()[-3000:]
    return proc, url


def _api(url: str, path: str, **params: str) -> Any:
    status, body = get("%s/api/v1/%s?%s" % (url, path, urllib.parse.urlencode(params)))
    answer = json.loads(body)
    assert status == 200 and answer["status"] == "success", (path, params, body)
    return answer["data"]


@pytest.fixture
def services_with_metrics(tmp_path: Any, rabbit_vhost: Any, postgresql_db: Any,
                          conf: Any) -> Iterator[dict[str, Any]]:
    suffix = os.urandom(4).hex()
    sections = {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "report_interval": 1,
                    "service_down_time": 6, "periodic_fuzzy_delay": 0,
                    "update_resources_interval": 2, "rpc_response_timeout": 5,
                    "state_path": str(tmp_path / "state")},
        "database": {"connection": postgresql_db.url},
        "conductor": {"topic": "conductor-" + suffix, "workers": 1},
        "compute": {"topic": "compute-" + suffix},
        "metrics": {"bind_host": "127.0.0.1", "bind_port": 0,
                    "fleet_refresh_interval": 1, "health_probe_interval": 0},
    }
    procs = {}
    try:
        for name, binary in (("cond", "novalet-conductor"), ("cmp", "novalet-compute")):
            values = {k: dict(v) for k, v in sections.items()}
            values["DEFAULT"]["host"] = name
            path = processes.write_config(str(tmp_path / (name + ".conf")), values)
            proc = procs[binary] = processes.ServiceProcess(
                binary, path, str(tmp_path / (name + ".log")))
            proc.wait_for_log("%s started" % binary)
        conf("transport_url", rabbit_vhost.url)
        conf("topic", sections["conductor"]["topic"], "conductor")
        conf("topic", sections["compute"]["topic"], "compute")
        conf("indirection", "rpc", "objects")
        conf("rpc_response_timeout", 10)
        from novalet import indirection

        indirection.configure(novalet_conf.CONF)
        urls = {binary: proc.wait_for_log(r"Metrics on (http://[\d.:]+)/metrics").group(1)
                for binary, proc in procs.items()}
        yield {"urls": urls, "procs": procs, "topic": sections["conductor"]["topic"]}
    finally:
        for proc in procs.values():
            proc.stop()


def _unsigned_cast(topic: str) -> None:
    """A request with no signature (an old or hostile caller): refused by
    the conductor's RPC server before dispatch."""
    import oslo_messaging as messaging

    transport = messaging.get_rpc_transport(novalet_conf.CONF)
    try:
        client = messaging.get_rpc_client(transport, messaging.Target(topic=topic))
        client.cast({}, "object_class_action_versions", objname="Service",
                    objmethod="get_all", object_versions={}, args=[], kwargs={})
    finally:
        transport.cleanup()


def _traffic(topic: str, seconds: float) -> None:
    """Every kind of call the panels show, spread over ``seconds`` so that
    each rate window holds several scrapes that saw them move."""
    ctxt = context.get_admin_context()
    api = conductor_rpcapi.ConductorAPI(novalet_conf.CONF)
    computes = compute_rpcapi.ComputeAPI(novalet_conf.CONF)
    fits = objects.Instance(ctxt, vcpus=1, memory_mb=64, root_gb=1)
    fits.create()
    computes.build_instance(ctxt, fits, "cmp", "cmp-node-1")  # a claim
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        objects.ComputeNodeList.get_all(ctxt)
        with pytest.raises(exception.ServiceNotFound):
            objects.Service.get_by_host_and_binary(ctxt, "nohost", "novalet-compute")
        with pytest.raises(exception.MethodNotRemotable):
            api.object_class_action_versions(ctxt, "Service", "obj_reset_changes",
                                             {"Service": objects.Service.VERSION},
                                             [], {})
        objects.Service(ctxt, host="dup-%d" % n, binary="x").create()
        with pytest.raises(exception.ServiceBinaryExists):  # an IntegrityError
            objects.Service(ctxt, host="dup-%d" % n, binary="x").create()
        _unsigned_cast(topic)
        too_big = objects.Instance(ctxt, vcpus=1, memory_mb=10**7, root_gb=1)
        too_big.create()
        with pytest.raises(exception.ComputeResourcesUnavailable):  # refused
            computes.build_instance(ctxt, too_big, "cmp", "cmp-node-1")
        n += 1
        time.sleep(0.5)


def test_every_panel_query_returns_data(tmp_path: Any,
                                        services_with_metrics: dict[str, Any]) -> None:
    urls = services_with_metrics["urls"]
    cond_url = urls["novalet-conductor"]
    prom, prom_url = _start_prometheus(tmp_path, urls)
    try:
        wait_for(lambda: [t["health"] for t in _api(prom_url, "targets")["activeTargets"]]
                 == ["up", "up"], 30, "both targets scraped")
        _traffic(services_with_metrics["topic"], 8)
        # The refused request was counted, and Prometheus scraped it since.
        wait_for(lambda: value(scrape(cond_url), "novalet_rpc_requests_total",
                               caller="refused") > 0, 15, "a refused request")
        time.sleep(3)
        # The alert rules of etc/prometheus load into the real server.
        groups = _api(prom_url, "rules")["groups"]
        assert {r["name"] for g in groups for r in g["rules"]} == {
            "NovaletComputeDown", "NovaletConductorRefusalsOrErrors"}

        scraped = set(_api(prom_url, "label/__name__/values"))
        empty, nan_only, unknown = [], [], []
        for title, expr in _queries():
            unknown += [(title, name) for name in METRIC.findall(expr)
                        if name not in scraped]
            query = expr.replace("$__rate_interval", RATE_INTERVAL)
            result = _api(prom_url, "query", query=query)["result"]
            if not result:
                empty.append((title, query))
            elif all(math.isnan(float(r["value"][1])) for r in result):
                nan_only.append((title, query))
        assert not unknown, "metrics no service exports: %s" % unknown
        assert not empty, "queries with no data: %s" % empty
        assert not nan_only, "queries with only NaN: %s" % nan_only
    finally:
        os.killpg(prom.pid, signal.SIGTERM)
        prom.wait(30)
