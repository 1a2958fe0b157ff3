"""Release notes without git tags.

novalet has no git tags: ``RELEASES`` at the top of the repository is the
record of its releases (version, service version, the commit that closed
each). reno names the release notes' version after the newest tag, and with
none at all it calls every note's version "0.0.0", a version that was never
released. This module makes reno read that version from ``RELEASES``
instead: the notes not in a tag belong to the release after the newest one
recorded, shown under reno's ``unreleased_version_title``
(``releasenotes/config.yaml``). A repository with tags is left to reno.

Two ways in, one patch: as a Sphinx extension (the docs' release notes
page, reno's directive), and as a script taking reno's own command line
(``python doc/source/_ext/novalet_releases.py report --output FILE``, what
``tox -e releasenotes`` runs in place of ``reno report``).
"""

from __future__ import annotations

import os
import sys
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


def use_recorded_releases() -> None:
    """Make reno's scanner name the current version after ``RELEASES`` when
    the repository has no tag at all (once; a second call changes nothing)."""
    if getattr(scanner.Scanner._get_current_version, "novalet_releases", False):
        return
    original = scanner.Scanner._get_current_version

    def current_version(self: Any, branch: Any = None) -> str:
        version: str = original(self, branch)
        if version == "0.0.0":  # reno found no tag at all
            # "-" marks a version reno shows as unreleased.
            return "%s-dev" % recorded_releases()[-1][0]
        return version

    current_version.novalet_releases = True  # type: ignore[attr-defined]
    scanner.Scanner._get_current_version = current_version


def setup(app: Any) -> dict[str, Any]:
    use_recorded_releases()
    return {"parallel_read_safe": True, "parallel_write_safe": True}


def main(argv: list[str]) -> int:
    """reno's command line (``report``, ``lint``, ...), its versions read as
    the docs read them."""
    from reno import main as reno_main

    use_recorded_releases()
    return reno_main.main(argv) or 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
