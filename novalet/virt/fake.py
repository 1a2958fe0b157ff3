"""A virt driver that keeps its guests in memory, for tests and simulations.

It reports ``[fake] nodes`` nodes named ``<host>-node-<i>`` (i from 1), each
with ``[fake] vcpus``, ``memory_mb`` and ``local_gb``. Many simulated hosts can
share one process: ``FakeDriver(conf, host="h7", nodes=3)``.
"""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterable
from typing import Any

from novalet import exception
from novalet.virt import driver

#: PCI pools every fake node reports unless the constructor is given others.
DEFAULT_PCI_POOLS: tuple[dict[str, Any], ...] = (
    {"vendor_id": "8086", "product_id": "1520", "count": 4,
     "tags": {"physnet": "physnet1"}},
)

HYPERVISOR_TYPE = "fake"
HYPERVISOR_VERSION = 1000


class FakeDriver(driver.ComputeDriver):
    """In-memory guests on N fake nodes; thread-safe.

    Set ``fail_with`` to an exception to make every node, resource, guest,
    spawn and destroy call raise it (a broken hypervisor); ``None`` heals it.
    Spawning does not check capacity: that is the resource tracker's job.
    """

    def __init__(self, conf: Any, *, host: str | None = None,
                 nodes: int | None = None,
                 pci_pools: Iterable[dict[str, Any]] | None = None) -> None:
        self.host: str = host if host is not None else conf.host
        count = nodes if nodes is not None else conf.fake.nodes
        if count < 1:
            raise exception.ConfigurationError(
                reason="the fake driver needs at least one node, not %d" % count)
        self.vcpus: int = conf.fake.vcpus
        self.memory_mb: int = conf.fake.memory_mb
        self.local_gb: int = conf.fake.local_gb
        self._pci_pools = [copy.deepcopy(p) for p in
                           (DEFAULT_PCI_POOLS if pci_pools is None else pci_pools)]
        self._nodes = ["%s-node-%d" % (self.host, i) for i in range(1, count + 1)]
        # nodename -> instance uuid -> usage; a uuid lives on one node only.
        self._guests: dict[str, dict[str, driver.GuestUsage]] = {
            n: {} for n in self._nodes}
        self._lock = threading.Lock()
        #: Guests novalet did not make (``add_orphan``).
        self._foreign: set[str] = set()
        self.fail_with: BaseException | None = None

    def _check(self, nodename: str | None = None) -> None:
        """Raise ``fail_with`` if set, and ``VirtDriverError`` for an unknown node."""
        failure = self.fail_with
        if failure is not None:
            raise failure
        if nodename is not None:
            self._require_node(nodename)

    def _require_node(self, nodename: str) -> None:
        if nodename not in self._guests:
            raise exception.VirtDriverError(
                reason="fake node %r does not exist on host %s" % (nodename, self.host))

    def get_available_nodes(self) -> list[str]:
        """The node names, ``<host>-node-1`` .. ``<host>-node-N``.

        Raises ``fail_with`` if set.
        """
        self._check()
        return list(self._nodes)

    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """The node's resource view; ``*_used`` sum the guests on it.

        Raises ``fail_with`` if set, ``VirtDriverError`` for an unknown node.
        """
        self._check(nodename)
        with self._lock:
            guests = list(self._guests[nodename].values())
        vcpus_used = sum(g["vcpus"] for g in guests)
        memory_used = sum(g["memory_mb"] for g in guests)
        disk_used = sum(g["disk_gb"] for g in guests)
        cpu_info = {
            "arch": "x86_64", "model": "fake", "vendor": "novalet",
            "topology": {"sockets": 1, "cores": self.vcpus, "threads": 1},
            "features": [],
        }
        return {
            "vcpus": self.vcpus,
            "memory_mb": self.memory_mb,
            "local_gb": self.local_gb,
            "vcpus_used": vcpus_used,
            "memory_mb_used": memory_used,
            "local_gb_used": disk_used,
            "hypervisor_type": HYPERVISOR_TYPE,
            "hypervisor_version": HYPERVISOR_VERSION,
            "hypervisor_hostname": nodename,
            "cpu_info": json.dumps(cpu_info, sort_keys=True),
            "disk_available_least": max(self.local_gb - disk_used, 0),
        }

    def list_guests(self, nodename: str) -> list[driver.GuestUsage]:
        """Copies of the guests on ``nodename``, orphans included.

        Raises ``fail_with`` if set, ``VirtDriverError`` for an unknown node.
        """
        self._check(nodename)
        with self._lock:
            return [driver.GuestUsage(**g) for g in self._guests[nodename].values()]

    def spawn(self, instance: Any) -> None:
        """Record a guest for ``instance`` on ``instance.node``.

        Raises ``fail_with`` if set, ``VirtDriverError`` for an unknown node
        or a uuid that already has a guest.
        """
        self._add(instance.node, driver.GuestUsage(
            uuid=instance.uuid, vcpus=int(instance.vcpus),
            memory_mb=int(instance.memory_mb),
            disk_gb=int(instance.root_gb or 0) + int(instance.ephemeral_gb or 0)))

    def add_orphan(self, node: str, uuid: str, vcpus: int = 1,
                   memory_mb: int = 512, disk_gb: int = 0) -> driver.GuestUsage:
        """Test helper: a guest the database knows nothing about.

        Ignores ``fail_with``; raises ``VirtDriverError`` for an unknown node
        or a uuid that already has a guest.
        """
        guest = driver.GuestUsage(uuid=uuid, vcpus=vcpus, memory_mb=memory_mb,
                                  disk_gb=disk_gb)
        self._add(node, guest, honour_failure=False)
        with self._lock:
            self._foreign.add(uuid)
        return driver.GuestUsage(**guest)

    def owns_guest(self, uuid: str) -> bool:
        """False for a guest added by ``add_orphan`` (novalet did not make
        it) that still exists."""
        with self._lock:
            exists = any(uuid in guests for guests in self._guests.values())
            return not (exists and uuid in self._foreign)

    def _add(self, node: str, guest: driver.GuestUsage, *,
             honour_failure: bool = True) -> None:
        if honour_failure:
            self._check()
        self._require_node(node)
        with self._lock:
            for other, guests in self._guests.items():
                if guest["uuid"] in guests:
                    raise exception.VirtDriverError(
                        reason="guest %s already exists on %s" % (guest["uuid"], other))
            self._guests[node][guest["uuid"]] = guest

    def remove_node(self, nodename: str) -> None:
        """Test helper: the node (and its guests) is no longer reported.

        Raises ``VirtDriverError`` for an unknown node.
        """
        self._require_node(nodename)
        with self._lock:
            self._nodes.remove(nodename)
            del self._guests[nodename]

    def destroy(self, instance: Any, clean_shutdown: bool = False) -> None:
        """Forget the guest of ``instance`` on whichever node holds it.

        A missing guest is a no-op. Raises ``fail_with`` if set. The last
        ``clean_shutdown`` asked is kept in ``last_clean_shutdown``.
        """
        self._check()
        self.last_clean_shutdown = clean_shutdown
        with self._lock:
            for guests in self._guests.values():
                guests.pop(instance.uuid, None)

    def get_metrics(self, nodename: str) -> list[dict[str, Any]]:
        """The node's fixed CPU frequency and its guest count."""
        self._check(nodename)
        with self._lock:
            guests = len(self._guests[nodename])
        return [{"name": "cpu.frequency", "value": 2400.0, "source": "fake"},
                {"name": "guests.count", "value": float(guests),
                 "source": "fake"}]

    def get_pci_device_pools(self, nodename: str) -> list[dict[str, Any]]:
        """Copies of the configured PCI pools (the same on every node).

        Raises ``fail_with`` if set, ``VirtDriverError`` for an unknown node.
        """
        self._check(nodename)
        return copy.deepcopy(self._pci_pools)
