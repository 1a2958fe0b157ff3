"""Release notes without git tags.

novalet has no git tags: ``RELEASES`` at the top of the repository is the
record of its releases (version, service version, the commit that closed
each). reno names the release notes' version after the newest tag, and with
none at all it calls every note's version "0.0.0", a version that was never
released. This extension makes reno's Sphinx directive read that version
from ``RELEASES`` instead: the notes not in a tag belong to the release
after the newest one recorded, shown under reno's ``unreleased_version_title``
(``releasenotes/config.yaml``). A repository with tags is left to reno.
"""

from __future__ import annotations

import os
from typing import Any

from reno import scanner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def recorded_releases(path: str = os.path.join(ROOT, "RELEASES")
                      ) -> list[tuple[str, int, str]]:
    """(version, service version, commit) of each line of ``RELEASES``."""
    found = []
    with open(path) as f:
        for line in f:
            fields = line.split()
            if fields and not line.startswith("#"):
                version, service_version, commit = fields
                found.append((version, int(service_version), commit))
    return found


def setup(app: Any) -> dict[str, Any]:
    original = scanner.Scanner._get_current_version

    def current_version(self: Any, branch: Any = None) -> str:
        version: str = original(self, branch)
        if version == "0.0.0":  # reno found no tag at all
            # "-" marks a version reno shows as unreleased.
            return "%s-dev" % recorded_releases()[-1][0]
        return version

    scanner.Scanner._get_current_version = current_version
    return {"parallel_read_safe": True, "parallel_write_safe": True}
