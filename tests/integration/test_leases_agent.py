"""The example app (examples/leases, installed with pip) in a deployment:
novalet-conductor on RabbitMQ + PostgreSQL serves it, and its agent, a
separate process with no database access, uses it beside the core."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests import conftest as root_conftest
from tests import processes, services

pytestmark = pytest.mark.integration

#: Every installed app loaded (tests/conftest.py restricts the others).
ENV = {k: v for k, v in os.environ.items() if k != "OS_DEFAULT__APPS"}


def _run(binary: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.path.join(processes.BIN_DIR, binary), *args],
                          capture_output=True, text=True, timeout=120, env=ENV)


def test_leases_agent_through_the_conductor(tmp_path, rabbit_vhost):
    pytest.importorskip("leases", reason="pip install -e examples/leases")
    try:
        database = services.provision_database("postgresql", str(tmp_path))
    except services.ServiceUnavailable as e:
        root_conftest.service_unavailable(str(e))
    topic = "conductor-%s" % os.urandom(4).hex()
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "leases-conductor"},
        "database": {"connection": database.url},
        "conductor": {"workers": 1, "topic": topic},
    })
    conductor = None
    try:
        result = _run("novalet-manage", "--config-file", config,
                                       "db", "sync")
        assert result.returncode == 0, result.stderr
        assert "App leases is at leases_0002" in result.stdout
        conductor = processes.ServiceProcess("novalet-conductor", config,
                                             str(tmp_path / "conductor.log"), env=ENV)
        conductor.wait_for_log(r"novalet-conductor started on leases-conductor")
        # The agent's config has no database at all.
        agent_config = processes.write_config(str(tmp_path / "agent.conf"), {
            "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "dhcp1"},
            "conductor": {"topic": topic},
            "database": {"connection": "postgresql://nobody@127.0.0.1:1/none"},
        })
        result = _run("leases-agent", "--config-file", agent_config,
                                       "10.1.0.9", "52:54:00:aa:bb:cc",
                                       "10.1.0.0/24", "10.1.0.1")
        assert result.returncode == 0, result.stderr
        held = json.loads(result.stdout.strip().splitlines()[-1])
        assert held["subnet"] == ["10.1.0.9"]
        assert held["client_id"] == "client-52:54:00:aa:bb:cc"
        assert held["expires_at"] > 3600
        # The same address again: the conductor refuses it, typed.
        result = _run("leases-agent", "--config-file", agent_config,
                                       "10.1.0.9", "52:54:00:aa:bb:dd",
                                       "10.1.0.0/24", "10.1.0.1")
        assert result.returncode != 0
        assert "10.1.0.9 is leased already" in result.stderr
        assert not conductor.errors(), conductor.errors()
    finally:
        if conductor is not None:
            conductor.stop()
        database.drop()
