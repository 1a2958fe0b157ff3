"""``novalet-manage service delete`` against a real running compute (separate
processes on RabbitMQ and PostgreSQL): refused while it is up; ``--force``
deletes it with its nodes, the compute registers again at its next heartbeat
and its node records follow the new service id; once stopped and down it is
deleted for good."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests import processes
from tests.processes import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

HOST = "delete-me"


def test_forced_delete_of_a_running_compute(tmp_path: Any, rabbit_vhost: Any,
                                            postgresql_db: Any) -> None:
    suffix = os.urandom(4).hex()
    common = {"transport_url": rabbit_vhost.url, "report_interval": 1,
              "service_down_time": 4, "periodic_fuzzy_delay": 0,
              "update_resources_interval": 1, "rpc_response_timeout": 10,
              "state_path": str(tmp_path / "state")}
    topics = {"conductor": {"topic": "conductor-" + suffix, "workers": 1},
              "compute": {"topic": "compute-" + suffix}}

    def config(name: str, **extra: dict[str, Any]) -> str:
        sections = {"DEFAULT": dict(common, host=name),
                    "database": {"connection": postgresql_db.url}, **topics,
                    **extra}
        return processes.write_config(str(tmp_path / (name + ".conf")), sections)

    manage_conf = config("admin")

    def manage(*args: str) -> Any:
        return processes.run_command("novalet-manage", "--config-file",
                                     manage_conf, *args)

    def live_nodes() -> list[Any]:
        return postgresql_db.query(
            "SELECT id, service_id, hypervisor_hostname FROM compute_nodes "
            "WHERE host = :h AND deleted = 0 ORDER BY hypervisor_hostname", h=HOST)

    def live_service() -> Any:
        rows = postgresql_db.query(
            "SELECT id FROM services WHERE host = :h AND deleted = 0", h=HOST)
        return rows[0] if rows else None

    def state() -> str | None:
        result = manage("service", "list", "--host", HOST, "--format", "json")
        assert result.returncode == 0, result.stderr
        records = json.loads(result.stdout)
        return records[0]["state"] if records else None

    conductor = processes.ServiceProcess("novalet-conductor", config("cond"),
                                         str(tmp_path / "cond.log"))
    compute = None
    try:
        conductor.wait_for_log("novalet-conductor started")
        compute = processes.ServiceProcess(
            "novalet-compute", config(HOST, fake={"nodes": 2}),
            str(tmp_path / "compute.log"))
        compute.wait_for_log("novalet-compute started")
        wait_for(lambda: state() == "up", 30, "the compute to be up")
        old_id = live_service().id
        assert [n.service_id for n in live_nodes()] == [old_id, old_id]

        refused = manage("service", "delete", HOST, "novalet-compute")
        assert refused.returncode == 1, refused.stderr
        assert "is up" in refused.stderr and "--force" in refused.stderr
        assert live_service().id == old_id and len(live_nodes()) == 2

        forced = manage("service", "delete", HOST, "novalet-compute", "--force",
                        "--format", "json")
        assert forced.returncode == 0, forced.stderr
        assert len(json.loads(forced.stdout)["deleted_compute_nodes"]) == 2

        # The compute is alive: it registers again, its nodes follow.
        def relinked() -> bool:
            service = live_service()
            nodes = live_nodes()
            return (service is not None and service.id != old_id
                    and len(nodes) == 2
                    and all(n.service_id == service.id for n in nodes))

        wait_for(relinked, 60, "a new record with the nodes linked to it")
        new_id = live_service().id
        wait_for(lambda: "registering it again" in compute.log(), 10,
                 "the compute's log line")
        assert not postgresql_db.query(
            "SELECT id FROM compute_nodes WHERE deleted = 0 AND service_id = :i",
            i=old_id)
        assert not compute.errors(), compute.errors()

        # Stopped and down, it is deleted for good (nodes with it).
        assert compute.stop() == 0
        wait_for(lambda: state() == "down", 30, "the compute to be down")
        deleted = manage("service", "delete", HOST, "novalet-compute")
        assert deleted.returncode == 0, deleted.stderr
        assert live_service() is None and live_nodes() == []
        assert postgresql_db.query("SELECT deleted FROM services WHERE id = :i",
                                   i=new_id)[0].deleted == new_id
    finally:
        if compute is not None:
            compute.stop()
        conductor.stop()
    assert not conductor.errors(), conductor.errors()
