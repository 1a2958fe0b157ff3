"""The virt driver interface: how a compute agent sees and changes its host.

A driver knows nothing about the database or RPC. The resource tracker asks it
for a resource view per node and the instances it runs; the compute manager
asks it to spawn and destroy guests.
"""

from __future__ import annotations

import abc
from typing import Any, TypedDict, cast

from novalet import exception

#: Keys every resource view must carry (see ``get_available_resource``).
REQUIRED_RESOURCE_KEYS = (
    "vcpus", "memory_mb", "local_gb",
    "vcpus_used", "memory_mb_used", "local_gb_used",
    "hypervisor_type", "hypervisor_version", "hypervisor_hostname",
    "cpu_info", "disk_available_least",
)


class GuestUsage(TypedDict):
    """What one guest on the hypervisor uses, as the hypervisor sees it."""

    uuid: str
    vcpus: int
    memory_mb: int
    disk_gb: int


class ComputeDriver(abc.ABC):
    """Base class of virt drivers; collaborators are passed in, not global."""

    def init_host(self, host: str) -> None:  # noqa: B027 (optional hook)
        """Prepare the driver for ``host`` before the first audit."""

    @abc.abstractmethod
    def get_available_nodes(self) -> list[str]:
        """Names of the nodes (hypervisor_hostname) this driver manages."""

    @abc.abstractmethod
    def get_available_resource(self, nodename: str) -> dict[str, Any]:
        """The node's resource view: a dict with ``REQUIRED_RESOURCE_KEYS``.

        ``*_used`` are what the hypervisor itself reports; ``cpu_info`` is a
        JSON string. Raises ``HypervisorUnavailable`` when the host cannot be
        read.
        """

    @abc.abstractmethod
    def list_guests(self, nodename: str) -> list[GuestUsage]:
        """The guests running on ``nodename`` (their UUIDs and sizes)."""

    @abc.abstractmethod
    def spawn(self, instance: Any) -> None:
        """Create and start a guest for ``instance`` on ``instance.node``.

        ``instance`` has ``uuid``, ``node``, ``vcpus``, ``memory_mb``,
        ``root_gb`` and ``ephemeral_gb``.
        """

    @abc.abstractmethod
    def destroy(self, instance: Any, clean_shutdown: bool = False) -> None:
        """Stop and remove the guest of ``instance``; a missing one is fine.

        ``clean_shutdown`` asks the guest to shut down before it is stopped.
        """

    def owns_guest(self, uuid: str) -> bool:
        """Whether the guest of ``uuid`` may be destroyed by novalet: True
        when there is none, or it was made by novalet on this host; False
        for a guest this driver did not make (the compute refuses to touch
        it). Drivers that cannot tell answer True (the default)."""
        return True

    def get_pci_device_pools(self, nodename: str) -> list[dict[str, Any]]:
        """PCI device pools of the node: vendor_id, product_id, count, tags."""
        return []

    def get_metrics(self, nodename: str) -> list[dict[str, Any]]:
        """Measurements of the node: ``name``, ``value`` (a number),
        ``source``. Values that change on every read would make every audit
        save; report stable facts or rounded ones."""
        return []

    def keep_node_name(self, reported: str, recorded: str) -> bool:
        """The node this driver reports as ``reported`` is the one recorded
        as ``recorded`` (its host was renamed): a single-node driver goes on
        reporting it as ``recorded`` and returns True; others return False
        (the default) and the record of ``recorded`` is deleted."""
        return False

    def cleanup(self) -> None:  # noqa: B027 (optional hook)
        """Release connections; called when the service stops."""


def check_resource_view(nodename: str, view: dict[str, Any]) -> None:
    """Raise ``InvalidResourceView`` naming every missing key."""
    missing = [k for k in REQUIRED_RESOURCE_KEYS if k not in view]
    if missing:
        raise exception.InvalidResourceView(node=nodename,
                                            missing=", ".join(missing))


def load_driver(name: str, conf: Any) -> ComputeDriver:
    """Load the driver registered as ``name`` in ``novalet.virt_drivers``."""
    from stevedore import driver as sd_driver

    mgr: sd_driver.DriverManager[ComputeDriver]
    try:
        mgr = sd_driver.DriverManager("novalet.virt_drivers", name,
                                      invoke_on_load=True,
                                      invoke_args=(conf,))
    except Exception as e:  # stevedore raises NoMatches / load errors
        raise exception.ConfigurationError(
            reason="cannot load virt driver %r: %s" % (name, e))
    # invoke_on_load=True: the driver is the instance, not its factory.
    return cast(ComputeDriver, mgr.driver)
