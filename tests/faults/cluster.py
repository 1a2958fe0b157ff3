"""A private RabbitMQ cluster for the fault suite.

Every node is a separate ``rabbitmq-server`` process group with its own node
name (``novalet-f<pid>-<n>@localhost``), AMQP and Erlang distribution ports,
data, log and config files under one temporary directory, and its own Erlang
cookie; the nodes find each other through a private ``epmd`` on its own port.
Everything listens on 127.0.0.1 only. Nothing of the machine's own RabbitMQ
(its epmd, cookie, config or data) is read or touched.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from typing import Any

from tests.faults import procs

SBIN = "/usr/lib/rabbitmq/bin"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ClusterError(Exception):
    pass


class RabbitNode:
    """One node of a ``RabbitCluster``."""

    def __init__(self, cluster: RabbitCluster, index: int) -> None:
        self.cluster = cluster
        self.index = index
        self.name = "%s-%d@localhost" % (cluster.prefix, index)
        self.port = free_port()
        self.dist_port = free_port()
        self.dir = os.path.join(cluster.dir, "node%d" % index)
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        self.proc: subprocess.Popen[bytes] | None = None
        self.frozen = False

    @property
    def url(self) -> str:
        return "guest:guest@127.0.0.1:%d" % self.port

    def env(self) -> dict[str, str]:
        env = self.cluster.env()
        env.update({
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(self.dir, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(self.dir, "log"),
            "RABBITMQ_CONFIG_FILE": os.path.join(self.dir, "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(self.dir,
                                                          "advanced.config"),
            "RABBITMQ_PID_FILE": os.path.join(self.dir, "rabbit.pid"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-kernel inet_dist_use_interface {127,0,0,1}",
        })
        return env

    def write_config(self) -> None:
        peers = "".join(
            "cluster_formation.classic_config.nodes.%d = %s\n" % (n.index, n.name)
            for n in self.cluster.nodes)
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write(
                "listeners.tcp.1 = 127.0.0.1:%d\n"
                "cluster_partition_handling = pause_minority\n"
                "cluster_formation.peer_discovery_backend = classic_config\n"
                "%s"
                "cluster_formation.randomized_startup_delay_range.min = 0\n"
                "cluster_formation.randomized_startup_delay_range.max = 1\n"
                "log.console = false\n"
                "log.file.level = info\n"
                "disk_free_limit.absolute = 50MB\n"
                "collect_statistics_interval = 30000\n" % (self.port, peers))
        with open(os.path.join(self.dir, "advanced.config"), "w") as f:
            # A frozen peer is noticed by the other nodes within ~net_ticktime.
            f.write("[{kernel, [{net_ticktime, %d}]}].\n"
                    % self.cluster.net_ticktime)

    def start(self) -> None:
        """Start (or restart) this node; returns at once (see ``wait``)."""
        if self.running():
            raise ClusterError("%s is running" % self.name)
        self.write_config()
        log = open(os.path.join(self.dir, "stdout.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [os.path.join(SBIN, "rabbitmq-server")], env=self.env(),
                cwd=self.dir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self.frozen = False

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait(self, timeout: float = 120) -> None:
        """Until the node's broker application runs."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():
                raise ClusterError("%s exited:\n%s" % (self.name, self.log_tail()))
            result = self.cluster.ctl(self, "await_startup", "--timeout", "5",
                                      check=False, timeout=30)
            if result.returncode == 0:
                return
            time.sleep(0.5)
        raise ClusterError("%s did not start within %ss:\n%s" % (
            self.name, timeout, self.log_tail()))

    def stop(self, timeout: float = 60) -> None:
        """A clean shutdown (``rabbitmqctl stop``), SIGKILL past ``timeout``."""
        if not self.running():
            return
        if self.frozen:
            self.thaw()
        self.cluster.ctl(self, "stop", check=False, timeout=timeout)
        assert self.proc is not None
        procs.stop_group(self.proc, timeout=timeout)

    def kill(self) -> None:
        """SIGKILL every process of the node."""
        if self.proc is not None:
            procs.kill_group(self.proc)

    def freeze(self) -> None:
        """SIGSTOP every process of the node (its sockets stay open)."""
        assert self.proc is not None
        procs.signal_group(self.proc, signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        assert self.proc is not None
        procs.signal_group(self.proc, signal.SIGCONT)
        self.frozen = False

    def log_tail(self, chars: int = 3000) -> str:
        text = ""
        for name in ("stdout.log", os.path.join("log", self.name + ".log")):
            try:
                with open(os.path.join(self.dir, name), errors="replace") as f:
                    text += "--- %s\n%s\n" % (name, f.read()[-chars:])
            except OSError:
                pass
        return text


class RabbitCluster:
    """``size`` RabbitMQ nodes in one cluster; ``close()`` removes all."""

    def __init__(self, directory: str, size: int = 3,
                 net_ticktime: int = 8) -> None:
        self.dir = directory
        self.prefix = "novalet-f%d-%s" % (os.getpid(), secrets.token_hex(2))
        self.net_ticktime = net_ticktime
        self.home = os.path.join(directory, "home")
        os.makedirs(self.home, exist_ok=True)
        cookie = os.path.join(self.home, ".erlang.cookie")
        with open(cookie, "w") as f:
            f.write(secrets.token_hex(16).upper())
        os.chmod(cookie, 0o400)
        self.epmd_port = free_port()
        self._epmd: subprocess.Popen[bytes] | None = None
        self.nodes = [RabbitNode(self, i) for i in range(1, size + 1)]
        with open(os.path.join(directory, "rabbitmq-env.conf"), "w") as f:
            f.write("# private: the machine's /etc/rabbitmq is not read\n")

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("RABBITMQ_", "ERL_"))}
        env.update({
            "HOME": self.home,
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_CONF_ENV_FILE": os.path.join(self.dir, "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(self.dir,
                                                          "enabled_plugins"),
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            "LC_ALL": "C.UTF-8",
        })
        return env

    def start(self, timeout: float = 180) -> None:
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[].\n")
        self._epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port), "-address", "127.0.0.1"],
            env=self.env(), stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        # The first node forms the cluster, the others join it.
        first, *rest = self.nodes
        first.start()
        first.wait(timeout)
        for node in rest:
            node.start()
        for node in rest:
            node.wait(timeout)
        members = self.running_members(first)
        if sorted(members) != sorted(n.name for n in self.nodes):
            raise ClusterError("cluster did not form: running %s" % members)

    def ctl(self, node: RabbitNode, *args: str, check: bool = True,
            timeout: float = 60, tool: str = "rabbitmqctl"
            ) -> subprocess.CompletedProcess[str]:
        try:
            result = subprocess.run(
                [os.path.join(SBIN, tool), "-n", node.name, *args],
                env=self.env(), capture_output=True, text=True,
                timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired as e:
            if check:
                raise ClusterError("%s %s timed out" % (tool, " ".join(args)))
            return subprocess.CompletedProcess(e.cmd, 124, "", "timeout")
        if check and result.returncode != 0:
            raise ClusterError("%s %s on %s failed: %s" % (
                tool, " ".join(args), node.name,
                result.stderr.strip() or result.stdout.strip()))
        return result

    def running_members(self, via: RabbitNode, timeout: float = 60) -> list[str]:
        out = self.ctl(via, "cluster_status", "--formatter", "json",
                       timeout=timeout).stdout
        return list(json.loads(out).get("running_nodes", []))

    def any_running(self) -> RabbitNode:
        for node in self.nodes:
            if node.running() and not node.frozen:
                return node
        raise ClusterError("no node is running")

    def queues(self, via: RabbitNode | None = None) -> list[dict[str, Any]]:
        """Every queue of vhost ``/``: name, type, leader, members."""
        via = via or self.any_running()
        out = self.ctl(via, "list_queues", "-q", "--formatter", "json",
                       "name", "type", "leader", "members", "consumers",
                       timeout=60).stdout
        return list(json.loads(out or "[]"))

    def leader_of(self, queue: str) -> RabbitNode:
        """The node leading quorum queue ``queue``."""
        for q in self.queues():
            if q["name"] == queue:
                for node in self.nodes:
                    if node.name == q.get("leader"):
                        return node
                raise ClusterError("queue %s has leader %r" % (queue, q.get("leader")))
        raise ClusterError("no queue %s" % queue)

    def transport_url(self) -> str:
        """All nodes in one oslo.messaging URL."""
        return "rabbit://%s/" % ",".join(n.url for n in self.nodes)

    def wait_healthy(self, timeout: float = 240) -> None:
        """Every node runs and sees every other node."""
        deadline = time.monotonic() + timeout
        want = sorted(n.name for n in self.nodes)
        while time.monotonic() < deadline:
            try:
                # Every node's own view: a paused (minority) node answers
                # late or not at all, hence the short timeout.
                if all(sorted(self.running_members(n, timeout=15)) == want
                       for n in self.nodes):
                    return
            except (ClusterError, ValueError):
                pass
            time.sleep(1)
        raise ClusterError("cluster not healthy within %ss" % timeout)

    def close(self) -> None:
        """Kill every node and the epmd; remove the directory."""
        for node in self.nodes:
            node.kill()
        if self._epmd is not None:
            procs.kill_group(self._epmd)
        shutil.rmtree(self.dir, ignore_errors=True)
