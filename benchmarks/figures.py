"""Where a benchmark's figures go: a JSON file always, a PNG when matplotlib
is installed (``pip install -e '.[bench]'``).

Every benchmark takes ``--json PATH`` (default: ``<name>-<UTC time>.json``
in the current directory) and ``--plot PATH`` (default: the JSON's path with
``.png``). Not a benchmark itself (no ``__main__``).
"""

from __future__ import annotations

import argparse
import io
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


def series(rows: dict[str, Any], levels: list[int], key: str) -> list[Series]:
    """One line per case of ``rows`` (``{case: {str(level): {key: value}}}``,
    as the callers benchmarks' summaries hold them): ``key`` at each level."""
    return [(name, levels, [row[str(n)][key] for n in levels])
            for name, row in rows.items()]


#: One plot: x label, y label, its lines, and a limit to draw (or None).
Panel = tuple[str, str, list[Series], "tuple[str, float] | None"]

#: Past this many labels, one legend for the whole figure, beside the panels
#: (a legend inside a panel would hide its lines).
LEGEND_INSIDE_MAX = 4
#: Inches beside the panels for that legend.
LEGEND_WIDTH = 1.2


def _base(label: str) -> str:
    """The case of a line: its label without a variant's ``+s`` / ``+m``."""
    return label[:-2] if label.endswith(("+s", "+m")) else label


def line_style(label: str, colors: dict[str, Any]) -> dict[str, Any]:
    """How a line of ``label`` is drawn, by the benchmarks' naming: a case
    and its variants share a colour (``X+s`` signed: dashed; ``X+m`` with
    metrics: dash-dot), and so do novalet's case and Nova's of the same
    operation (``nova X``: dotted, square markers); a raw baseline is thick,
    black (``nova raw``: grey). ``colors`` holds the colours given so far,
    by operation."""
    nova = label.startswith("nova ")
    operation = _base(label[len("nova "):] if nova else label)
    if operation not in colors:
        cycle = ["C%d" % i for i in range(10)]
        used = set(colors.values())
        colors[operation] = "black" if operation == "raw" else next(
            (c for c in cycle if c not in used), cycle[len(colors) % 10])
    linestyle = ":" if nova else {"+s": "--", "+m": "-."}.get(label[-2:], "-")
    return {"color": "grey" if label == "nova raw" else colors[operation],
            "linestyle": linestyle, "marker": "s" if nova else "o",
            "linewidth": 2.2 if operation == "raw" else 1.6, "markersize": 5}


def describe(machine_: dict[str, Any]) -> str:
    """One line of what the figures were measured on (``machine()``)."""
    return "%s, %s CPUs, load average %s (1/5/15 min, at the end)" % (
        str(machine_.get("date", "?")).replace("T", " "), machine_.get("cpus", "?"),
        " / ".join("%.1f" % x for x in machine_.get("load", [])))


def plot(path: str, title: str, panels: list[Panel], *, log_x: bool = False,
         log_y: tuple[int, ...] = (), measured_on: dict[str, Any] | None = None,
         columns: int | None = None) -> bool:
    """Draw ``panels`` side by side (rows of ``columns``, default all in one)
    into the PNG ``path`` (those whose index is in ``log_y`` on a log scale),
    the machine (``measured_on``, default ``machine()`` now) under the title.
    Without matplotlib: say so in one line and return False."""
    try:
        import matplotlib
    except ImportError:
        print("plot: matplotlib is not installed (pip install -e '.[bench]'): no PNG, "
              "the figures are in the JSON")
        return False
    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    labels = list(dict.fromkeys(label for _, _, lines, _ in panels for label, _, _ in lines))
    bases = list(dict.fromkeys(_base(label) for label in labels))
    labels.sort(key=lambda label: (bases.index(_base(label)), label))  # X, X+m, X+s
    outside = len(labels) > LEGEND_INSIDE_MAX
    columns = min(columns or len(panels), len(panels))
    rows = -(-len(panels) // columns)
    fig, axes = pyplot.subplots(rows, columns, figsize=(
        4.6 * columns + (LEGEND_WIDTH if outside else 0), 0.4 + 3.6 * rows), squeeze=False)
    for unused in list(axes.flat)[len(panels):]:
        unused.set_visible(False)
    colors: dict[str, Any] = {}
    for label in labels:  # the same colour for a label in every panel
        line_style(label, colors)
    handles: dict[str, Any] = {}
    for index, (ax, (x_label, y_label, lines, limit)) in enumerate(
            zip(axes.flat, panels, strict=False)):
        for label, xs, ys in lines:
            [handles[label]] = ax.plot(list(xs), list(ys), label=label,
                                       **line_style(label, colors))
        if limit is not None:
            handles[limit[0]] = ax.axhline(limit[1], color="grey", linestyle="--",
                                           linewidth=1, label=limit[0])
        if log_x:
            ax.set_xscale("log", base=2)
        xs_all = sorted({x for _, xs, _ in lines for x in xs})
        if len(xs_all) <= 12:  # the measured x values, as they were given
            ax.set_xticks(xs_all, ["%g" % x for x in xs_all])
            ax.minorticks_off()
        ax.set_xlabel(x_label)
        ax.set_ylabel(y_label)
        if index in log_y:
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(ticker.FuncFormatter(lambda y, _: "%g" % y))
        else:
            ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if (lines or limit) and not outside:
            ax.legend(fontsize="small")
    if outside:
        order = [label for label in labels if label in handles] + [
            label for label in handles if label not in labels]  # then the limits
        fig.legend([handles[label] for label in order], order, loc="center right",
                   fontsize="small", frameon=False)
    fig.suptitle("%s\n%s" % (title, describe(measured_on or machine())), fontsize="medium")
    fig.tight_layout(rect=(0, 0, 1 - LEGEND_WIDTH / fig.get_figwidth(), 1) if outside
                     else None)
    drawn = io.BytesIO()
    fig.savefig(drawn, format="png", dpi=100)
    pyplot.close(fig)
    from PIL import Image  # matplotlib's own dependency

    # A plot has few colours: a palette of 256 keeps it a third of the size.
    Image.open(drawn).convert("RGB").quantize(colors=256).save(path, optimize=True)
    print("plot: %s" % path)
    return True
