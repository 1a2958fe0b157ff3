"""Where a benchmark's figures go: a JSON file always, a PNG when matplotlib
is installed (``pip install -e '.[bench]'``).

Every benchmark takes ``--json PATH`` (default: ``<name>-<UTC time>.json``
in the current directory) and ``--plot PATH`` (default: the JSON's path with
``.png``). Not a benchmark itself (no ``__main__``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Sequence
from importlib import metadata
from typing import Any

#: One line of a figure: its label, x values, y values.
Series = tuple[str, Sequence[float], Sequence[float]]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", metavar="PATH",
                        help="write the figures as JSON to PATH (default: "
                             "<benchmark>-<UTC time>.json in the current directory)")
    parser.add_argument("--plot", metavar="PATH",
                        help="draw the figures into the PNG PATH (default: the JSON's "
                             "path with .png; needs matplotlib, the 'bench' extra)")


def paths(args: argparse.Namespace, name: str) -> tuple[str, str]:
    """(JSON path, PNG path) of this run."""
    json_path = args.json or "%s-%s.json" % (name, time.strftime("%Y%m%dT%H%M%SZ",
                                                                 time.gmtime()))
    return json_path, args.plot or os.path.splitext(json_path)[0] + ".png"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    versions: dict[str, str | None] = {}
    for dist in ("novalet", "oslo.messaging", "oslo.versionedobjects", "oslo.db",
                 "SQLAlchemy", "kombu"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "cpus": os.cpu_count(), "load": list(os.getloadavg()),
            "python": platform.python_version(), "versions": versions}


def write_json(path: str, benchmark: str, args: argparse.Namespace,
               figures: dict[str, Any]) -> None:
    """``figures`` with the machine and the arguments, as JSON at ``path``."""
    options = {k: v for k, v in vars(args).items() if k not in ("json", "plot")}
    with open(path, "w") as f:
        json.dump({"benchmark": benchmark, "machine": machine(), "arguments": options,
                   **figures}, f, indent=1, default=str)
        f.write("\n")
    print("figures: %s" % path)


#: One plot: x label, y label, its lines, and a limit to draw (or None).
Panel = tuple[str, str, list[Series], "tuple[str, float] | None"]


def plot(path: str, title: str, panels: list[Panel], *, log_x: bool = False) -> bool:
    """Draw ``panels`` side by side into the PNG ``path``. Without
    matplotlib: say so in one line and return False."""
    try:
        import matplotlib
    except ImportError:
        print("plot: matplotlib is not installed (pip install -e '.[bench]'): no PNG, "
              "the figures are in the JSON")
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot

    fig, axes = pyplot.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2),
                                squeeze=False)
    for ax, (x_label, y_label, lines, limit) in zip(axes[0], panels, strict=True):
        for label, xs, ys in lines:
            ax.plot(list(xs), list(ys), marker="o", label=label)
        if limit is not None:
            ax.axhline(limit[1], color="grey", linestyle="--", linewidth=1, label=limit[0])
        if log_x:
            ax.set_xscale("log", base=2)
        xs_all = sorted({x for _, xs, _ in lines for x in xs})
        if len(xs_all) <= 12:  # the measured x values, as they were given
            ax.set_xticks(xs_all, ["%g" % x for x in xs_all])
            ax.minorticks_off()
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if lines or limit:
            ax.legend(fontsize="small")
    fig.suptitle(title, fontsize="medium")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    pyplot.close(fig)
    print("plot: %s" % path)
    return True
