"""The live status view of ``novalet-allinone``: services and hypervisors."""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

BAR_WIDTH = 20


def bar(used: float, total: float, width: int = BAR_WIDTH) -> str:
    """``[#####.....]`` for ``used`` of ``total``."""
    filled = 0 if total <= 0 else min(width, round(width * used / total))
    return "[" + "#" * filled + "." * (width - filled) + "]"


def _as_utc(value: Any) -> datetime.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=datetime.UTC)
    return value  # type: ignore[no-any-return]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    """Left-aligned columns, two spaces apart."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells]


def render(services: Sequence[tuple[Any, bool]], nodes: Sequence[Any],
           db_time: Any, title: str = "novalet") -> str:
    """One screen: services with liveness, hypervisors with usage bars."""
    now = _as_utc(db_time)
    lines = ["%s  %s UTC" % (title, now.strftime("%H:%M:%S") if now else "?"), ""]
    up_count = sum(1 for _, up in services if up)
    lines.append("Services (%d up, %d down)" % (up_count, len(services) - up_count))
    rows: list[tuple[Any, ...]] = []
    for svc, up in services:
        seen = _as_utc(svc.last_seen_up)
        ago = "-" if seen is None or now is None else "%.0fs" % max(
            (now - seen).total_seconds(), 0)
        flags = []
        if svc.disabled:
            flags.append("disabled")
        if svc.forced_down:
            flags.append("forced-down")
        rows.append((svc.host, svc.binary, "up" if up else "DOWN", ago,
                     svc.report_count, ",".join(flags) or "-"))
    lines += table(("host", "binary", "state", "last beat", "reports",
                    "flags"), rows)
    lines.append("")
    lines.append("Hypervisors (%d)" % len(nodes))
    rows = []
    totals = dict.fromkeys(("vcpus", "vcpus_used", "memory_mb",
                            "memory_mb_used", "local_gb", "local_gb_used",
                            "running_vms"), 0)
    for node in nodes:
        for key in totals:
            totals[key] += getattr(node, key) or 0
        rows.append((
            node.hypervisor_hostname,
            "%s %d/%d" % (bar(node.vcpus_used, node.vcpus, 10),
                          node.vcpus_used, node.vcpus),
            "%s %d/%d MiB" % (bar(node.memory_mb_used, node.memory_mb, 10),
                              node.memory_mb_used, node.memory_mb),
            "%s %d/%d GiB" % (bar(node.local_gb_used, node.local_gb, 10),
                              node.local_gb_used, node.local_gb),
            node.running_vms or 0))
    rows.append(("TOTAL",
                 "%d/%d" % (totals["vcpus_used"], totals["vcpus"]),
                 "%d/%d MiB" % (totals["memory_mb_used"], totals["memory_mb"]),
                 "%d/%d GiB" % (totals["local_gb_used"], totals["local_gb"]),
                 totals["running_vms"]))
    lines += table(("node", "vCPU", "RAM", "disk", "VMs"), rows)
    return "\n".join(lines)
