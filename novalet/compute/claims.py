"""Claims: resources an instance takes on a node, checked against the
node's capacity times its allocation ratios."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from novalet import exception


@dataclass(frozen=True)
class Usage:
    """vCPUs, memory (MiB) and disk (GiB) taken."""

    vcpus: int = 0
    memory_mb: int = 0
    disk_gb: int = 0

    @classmethod
    def of_instance(cls, instance: Any) -> Usage:
        return cls(int(instance.vcpus), int(instance.memory_mb),
                   int(instance.root_gb) + int(instance.ephemeral_gb))

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.vcpus + other.vcpus,
                     self.memory_mb + other.memory_mb,
                     self.disk_gb + other.disk_gb)

    def __sub__(self, other: Usage) -> Usage:
        return Usage(self.vcpus - other.vcpus,
                     self.memory_mb - other.memory_mb,
                     self.disk_gb - other.disk_gb)


def check_fits(node: Any, used: Usage, request: Usage,
               reserved: Usage = Usage()) -> None:
    """Raise ``ComputeResourcesUnavailable`` naming every resource that
    ``request`` on top of ``used`` (the guests' usage, without ``reserved``)
    would exceed on ``node``.

    What instances may claim is, as in Nova's placement inventory, the
    node's total less what is reserved for the host, times the allocation
    ratio (the caller makes sure the ratios are set and above 0).
    """
    limits = (
        ("vcpus", used.vcpus, request.vcpus,
         (node.vcpus - reserved.vcpus) * node.cpu_allocation_ratio),
        ("memory_mb", used.memory_mb, request.memory_mb,
         (node.memory_mb - reserved.memory_mb) * node.ram_allocation_ratio),
        ("disk_gb", used.disk_gb, request.disk_gb,
         (node.local_gb - reserved.disk_gb) * node.disk_allocation_ratio),
    )
    short = ["%s: %d requested, %d of %d free" % (
        name, want, max(int(limit) - have, 0), max(int(limit), 0))
        for name, have, want, limit in limits if have + want > limit]
    if short:
        raise exception.ComputeResourcesUnavailable(
            node=node.hypervisor_hostname, reason="; ".join(short))


class Claim:
    """Resources held for one instance; ``abort()`` gives them back.

    Used as a context manager around the work that needs them: an exception
    inside aborts the claim.
    """

    def __init__(self, instance_uuid: str, usage: Usage,
                 release: Callable[[str], None]) -> None:
        self.instance_uuid = instance_uuid
        self.usage = usage
        self._release = release
        self.aborted = False

    def abort(self) -> None:
        if not self.aborted:
            self.aborted = True
            self._release(self.instance_uuid)

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, exc_type: type[BaseException] | None,
                 exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc_type is not None:
            self.abort()
