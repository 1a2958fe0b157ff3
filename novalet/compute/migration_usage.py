"""What in-progress migrations hold on one node, counted as Nova counts them.

Of several unfinished migrations of one instance only the newest counts. A
migration counts on its destination with its ``new_*`` sizes while the
instance is not there yet, and on its source with its ``old_*`` sizes once
the instance has left (room for a revert). A resize to the same node counts
the flavor the instance is not on yet, on top of the instance itself: the
new sizes while it still has the old ones, the old sizes once it has the new
ones. Migrations of deleted or unknown instances hold nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from novalet.compute.claims import Usage
from novalet.objects import fields


def old_usage(migration: Any) -> Usage:
    """The sizes the instance had before the move."""
    return Usage(migration.old_vcpus, migration.old_memory_mb,
                 migration.old_disk_gb)


def new_usage(migration: Any) -> Usage:
    """The sizes the instance has after the move."""
    return Usage(migration.new_vcpus, migration.new_memory_mb,
                 migration.new_disk_gb)


def _changed_at(migration: Any) -> tuple[Any, int]:
    when = migration.updated_at or migration.created_at
    # Records made without timestamps sort first; the id breaks a tie.
    return (when.timestamp() if when is not None else float("-inf"),
            migration.id)


def newest_per_instance(migrations: Iterable[Any]) -> dict[str, Any]:
    """instance uuid -> its most recently changed unfinished migration."""
    newest: dict[str, Any] = {}
    for migration in migrations:
        if migration.status in fields.MigrationStatus.DONE_STATES:
            continue  # a peer's query that does not know this done state
        current = newest.get(migration.instance_uuid)
        if current is None or _changed_at(migration) > _changed_at(current):
            newest[migration.instance_uuid] = migration
    return newest


def usage_on_node(migration: Any, instance: Any, host: str, nodename: str,
                  tracked: bool) -> Usage | None:
    """What ``migration`` of ``instance`` holds on ``nodename`` of ``host``
    beyond the instance itself (``tracked``: the instance is counted on this
    node already); ``None`` when it holds nothing here."""
    incoming = (migration.dest_compute == host
                and migration.dest_node == nodename)
    outbound = (migration.source_compute == host
                and migration.source_node == nodename)
    if incoming and outbound:
        if Usage.of_instance(instance) == old_usage(migration):
            return new_usage(migration)
        return old_usage(migration)
    if incoming and not tracked:
        return new_usage(migration)
    if outbound and not tracked:
        return old_usage(migration)
    return None
