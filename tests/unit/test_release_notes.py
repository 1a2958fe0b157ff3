"""The release notes (reno, ``releasenotes/notes``) agree with ``RELEASES``,
the record of released versions that the compat tests install from, and
with the release map in the code. (``reno lint`` and their rendering in the
docs: tests/integration/test_docs.py.)"""

from __future__ import annotations

import os
import re
import subprocess

import yaml

from novalet.upgrade import releases

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NOTES = os.path.join(ROOT, "releasenotes", "notes")
SECTIONS = {"prelude", "features", "upgrade", "deprecations", "security", "fixes",
            "other"}


def recorded() -> list[tuple[str, int, str]]:
    """RELEASES, read as tests/compat/conftest.py reads it."""
    found = []
    with open(os.path.join(ROOT, "RELEASES")) as f:
        for line in f:
            fields = line.split()
            if fields and not line.startswith("#"):
                version, service_version, commit = fields
                found.append((version, int(service_version), commit))
    return found


def notes() -> dict[str, dict[str, object]]:
    found = {}
    for name in sorted(os.listdir(NOTES)):
        with open(os.path.join(NOTES, name)) as f:
            found[name] = yaml.safe_load(f)
    return found


def test_releases_file_format() -> None:
    """Each release: X.Y.Z, its service version, the full commit that closed
    it, in order; the service versions are the release map's."""
    rows = recorded()
    assert [v for v, _s, _c in rows] == ["%d.0.0" % n for n in range(1, len(rows) + 1)]
    for version, service_version, commit in rows:
        assert re.fullmatch(r"[0-9a-f]{40}", commit), commit
        major = version.split(".")[0]
        assert releases.RELEASE_MAPPING[major]["service_version"] == service_version
        assert subprocess.run(["git", "cat-file", "-e", commit + "^{commit}"],
                              cwd=ROOT).returncode == 0, commit


def test_notes_are_reno_notes() -> None:
    """Every note is a reno note of the sections releasenotes/config.yaml
    lists, each entry text; one prelude in all (the earlier releases)."""
    with open(os.path.join(ROOT, "releasenotes", "config.yaml")) as f:
        config = yaml.safe_load(f)
    assert {name for name, _title in config["sections"]} | {"prelude"} == SECTIONS
    found = notes()
    assert len(found) >= 20, sorted(found)
    for name, note in found.items():
        assert re.fullmatch(r"[a-z0-9-]+-[0-9a-f]{16}\.yaml", name), name
        assert note and set(note) <= SECTIONS, (name, note)
        for section, entries in note.items():
            if section == "prelude":
                assert isinstance(entries, str) and entries.strip(), name
            else:
                assert isinstance(entries, list) and entries, (name, section)
                assert all(isinstance(e, str) and e.strip() for e in entries), name
    assert sum("prelude" in note for note in found.values()) == 1


def test_prelude_summarizes_every_recorded_release() -> None:
    """The prelude names each release of RELEASES with its service version,
    and the notes' release is the one after the newest recorded."""
    [prelude] = [note["prelude"] for note in notes().values() if "prelude" in note]
    text = " ".join(str(prelude).split())
    for version, service_version, _commit in recorded():
        assert "%s (service version %d)" % (version, service_version) in text, version
    newest = recorded()[-1][0]
    following = "%d.0.0" % (int(newest.split(".")[0]) + 1)
    assert "start with release %s" % following.split(".")[0] in text
    with open(os.path.join(ROOT, "releasenotes", "config.yaml")) as f:
        title = yaml.safe_load(f)["unreleased_version_title"]
    assert title.startswith(following + " "), title


def test_docs_read_releases_as_reno_does() -> None:
    """The docs' reno extension reads RELEASES the same way."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "novalet_releases", os.path.join(ROOT, "doc", "source", "_ext",
                                         "novalet_releases.py"))
    assert spec and spec.loader
    try:
        import reno  # noqa: F401
    except ImportError:
        import pytest

        pytest.skip("reno is not installed (doc/requirements.txt)")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.recorded_releases() == recorded()


def test_reno_report_names_the_release_in_development(tmp_path: object) -> None:
    """``tox -e releasenotes``'s report (reno's command line through the
    docs' extension) titles the notes after RELEASES, as the docs do, never
    reno's "0.0.0" of a repository without tags."""
    import sys

    import pytest

    try:
        import reno  # noqa: F401
    except ImportError:
        pytest.skip("reno is not installed (doc/requirements.txt)")
    if not os.path.isdir(os.path.join(ROOT, ".git")) and not os.path.isfile(
            os.path.join(ROOT, ".git")):
        pytest.skip("not a git checkout: reno reads the notes from git")
    with open(os.path.join(ROOT, "tox.ini")) as f:
        tox = f.read()
    assert "doc/source/_ext/novalet_releases.py report --output" in tox
    output = os.path.join(str(tmp_path), "notes.rst")
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, "doc", "source", "_ext", "novalet_releases.py"),
         "report", "--output", output], cwd=ROOT, capture_output=True, text=True,
        timeout=300)
    assert result.returncode == 0, result.stderr
    with open(output) as f:
        report = f.read()
    with open(os.path.join(ROOT, "releasenotes", "config.yaml")) as f:
        title = yaml.safe_load(f)["unreleased_version_title"]
    assert "\n%s\n%s\n" % (title, "=" * len(title)) in report
    assert "0.0.0" not in report
