"""etc/prometheus: valid YAML, rules on metric names novalet really exports,
and (with promtool, from Debian's prometheus package) valid for Prometheus,
the alerts firing in promtool's rule unit tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import service_unavailable

ETC = Path(__file__).resolve().parents[2] / "etc" / "prometheus"


def _exported_names() -> set[str]:
    import prometheus_client

    from novalet.metrics import fleet, registry

    metrics = registry.Metrics(prometheus_client.CollectorRegistry())
    names = set()
    for family in metrics.registry.collect():
        names.update(s.name for s in family.samples)
        names.add(family.name + ("_total" if family.type == "counter" else ""))
    names.update(f.name + ("_total" if f.type == "counter" else "")
                 for f in fleet.FleetCollector.families(None, 0.0, 0))
    return names


def test_rules_are_yaml_on_exported_names():
    rules = yaml.safe_load((ETC / "novalet-alerts.yml").read_text())
    config = yaml.safe_load((ETC / "prometheus.yml").read_text())
    assert config["rule_files"] == ["novalet-alerts.yml"]
    assert {job["job_name"] for job in config["scrape_configs"]} == {
        "novalet-conductor", "novalet-compute"}
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}
    assert set(alerts) == {"NovaletComputeDown", "NovaletConductorRefusalsOrErrors"}
    used = {name for rule in alerts.values()
            for name in re.findall(r"\bnovalet_[a-z_]+", rule["expr"])}
    exported = _exported_names()
    assert used and used <= exported, used - exported


def _promtool() -> str:
    found = shutil.which("promtool") or os.path.join(os.path.dirname(sys.executable),
                                                     "promtool")
    if not os.path.exists(found):
        service_unavailable("promtool not found (.ci/run unpacks it from Debian's "
                            "prometheus package)")
    return found


def test_promtool_checks_and_tests_the_rules():
    promtool = _promtool()
    for args in (["check", "config", "prometheus.yml"],
                 ["check", "rules", "novalet-alerts.yml"],
                 ["test", "rules", "novalet-alerts.test.yml"]):
        result = subprocess.run([promtool, *args], cwd=ETC, capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "SUCCESS" in result.stdout + result.stderr
