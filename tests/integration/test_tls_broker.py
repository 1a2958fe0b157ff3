"""Services against a TLS-only RabbitMQ: a private node (tests/private_rabbit.py)
with a self-signed CA made here, listening on a free loopback port, no plain
AMQP listener. The start-up check reaches it through oslo.messaging's own
settings, so ``novalet-conductor`` and ``novalet-compute`` start with
``[oslo_messaging_rabbit] ssl`` and fail with one line (naming the TLS port)
without it or with the wrong CA."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from novalet import conf as novalet_conf
from novalet import context, exception, indirection, objects, rpc
from tests import processes
from tests.conftest import service_unavailable
from tests.private_rabbit import PrivateRabbitNode, PrivateRabbitUnavailable, TLSFiles, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateRabbitNode]:
    certs = TLSFiles.make(str(tmp_path_factory.mktemp("tls")))
    node = PrivateRabbitNode(tcp=False, tls=certs, tag="tls")
    try:
        node.start()
    except PrivateRabbitUnavailable as e:
        service_unavailable("private TLS RabbitMQ node: %s" % e)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
def other_ca(tmp_path: Any) -> TLSFiles:
    """A CA that did not sign the node's certificate."""
    directory = tmp_path / "other-ca"
    directory.mkdir()
    return TLSFiles.make(str(directory))


def _config(tmp_path: Any, name: str, node: PrivateRabbitNode, database: str,
            rabbit: dict[str, Any], **sections: dict[str, Any]) -> str:
    values: dict[str, dict[str, Any]] = {
        "DEFAULT": {"transport_url": node.url, "host": name,
                    "startup_timeout": 3, "report_interval": 1,
                    "service_down_time": 5, "periodic_fuzzy_delay": 0,
                    "rpc_response_timeout": 10,
                    "state_path": str(tmp_path / "state")},
        "database": {"connection": database},
        "oslo_messaging_rabbit": rabbit,
    }
    for section, extra in sections.items():
        values.setdefault(section, {}).update(extra)
    return processes.write_config(str(tmp_path / ("%s.conf" % name)), values)


def _tls(node: PrivateRabbitNode) -> dict[str, Any]:
    assert node.tls is not None
    return {"ssl": True, "ssl_ca_file": node.tls.ca_file}


@pytest.fixture
def database(tmp_path: Any) -> str:
    url = "sqlite:///%s" % (tmp_path / "novalet.sqlite")
    config = processes.write_config(str(tmp_path / "sync.conf"),
                                    {"database": {"connection": url}})
    result = processes.run_command("novalet-manage", "--config-file", config,
                                   "db", "sync")
    assert result.returncode == 0, result.stderr
    return url


def test_node_speaks_tls_only(tls_node: PrivateRabbitNode) -> None:
    assert set(tls_node.ports) == {"amqps", "dist"}
    assert tls_node.url == "rabbit://guest:guest@127.0.0.1:%d/" % tls_node.ports["amqps"]


def test_conductor_and_compute_start_on_tls(tmp_path: Any, tls_node: PrivateRabbitNode,
                                           database: str, conf: Any) -> None:
    topics = {"conductor": {"topic": "conductor-%s" % os.urandom(4).hex(),
                            "workers": 1},
              "compute": {"topic": "compute-%s" % os.urandom(4).hex()}}
    conductor = processes.ServiceProcess(
        "novalet-conductor",
        _config(tmp_path, "tls-cond", tls_node, database, _tls(tls_node), **topics),
        str(tmp_path / "conductor.log"))
    compute = None
    try:
        conductor.wait_for_log(r"novalet-conductor started on tls-cond")
        compute = processes.ServiceProcess(
            "novalet-compute",
            _config(tmp_path, "tls-cmp", tls_node, database, _tls(tls_node),
                    **topics, fake={"nodes": 2}),
            str(tmp_path / "compute.log"))
        compute.wait_for_log(r"novalet-compute started on tls-cmp")
        # This process, as a compute would: every call over TLS.
        conf("transport_url", tls_node.url)
        conf("ssl", True, "oslo_messaging_rabbit")
        conf("ssl_ca_file", tls_node.tls.ca_file if tls_node.tls else None,
             "oslo_messaging_rabbit")
        conf("topic", topics["conductor"]["topic"], "conductor")
        conf("indirection", "rpc", "objects")
        indirection.configure(novalet_conf.CONF)
        ctxt = context.get_admin_context()
        nodes = objects.ComputeNodeList.get_by_host(ctxt, "tls-cmp")
        assert sorted(n.hypervisor_hostname for n in nodes) == [
            "tls-cmp-node-1", "tls-cmp-node-2"]
        assert compute.stop() == 0
        assert conductor.stop() == 0
        assert not conductor.errors() and not compute.errors()
    finally:
        if compute is not None:
            compute.stop()
        conductor.stop()


@pytest.mark.parametrize("binary", ["novalet-conductor", "novalet-compute"])
def test_without_tls_start_fails_naming_the_tls_port(
        tmp_path: Any, tls_node: PrivateRabbitNode, database: str,
        binary: str) -> None:
    config = _config(tmp_path, "plain", tls_node, database, {"ssl": False})
    result = processes.run_command(binary, "--config-file", config, timeout=120)
    assert result.returncode == 3, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("%s: cannot start: Message broker "
                               "rabbit://guest:***@127.0.0.1:%d/ unreachable: "
                               % (binary, tls_node.port))
    assert "[oslo_messaging_rabbit] ssl = true" in lines[0]


def test_wrong_ca_fails_on_the_certificate(tmp_path: Any, tls_node: PrivateRabbitNode,
                                           database: str, other_ca: TLSFiles) -> None:
    config = _config(tmp_path, "wrong-ca", tls_node, database,
                     {"ssl": True, "ssl_ca_file": other_ca.ca_file})
    result = processes.run_command("novalet-conductor", "--config-file", config,
                                   timeout=120)
    assert result.returncode == 3, result.stderr
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1, result.stderr
    assert "127.0.0.1:%d" % tls_node.port in line
    assert "certificate" in line.lower() and "ssl_ca_file" in line


def test_check_tries_every_host_of_the_url(tls_node: PrivateRabbitNode, conf: Any) -> None:
    closed = free_port()
    conf("transport_url", "rabbit://guest:guest@127.0.0.1:%d,guest:guest@127.0.0.1:%d/"
         % (closed, tls_node.port))
    conf("ssl", True, "oslo_messaging_rabbit")
    conf("ssl_ca_file", tls_node.tls.ca_file if tls_node.tls else None,
         "oslo_messaging_rabbit")
    rpc.check_broker(novalet_conf.CONF, 5)  # the second host answers

    conf("transport_url", "rabbit://guest:guest@127.0.0.1:%d/" % closed)
    with pytest.raises(exception.BrokerUnavailable) as info:
        rpc.check_broker(novalet_conf.CONF, 0)
    assert "127.0.0.1:%d" % closed in info.value.message
    assert "refused" in info.value.message.lower()
