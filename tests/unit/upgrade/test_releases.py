"""The release map: the core's upgrade story in one file, held to the code.

Its service versions have no gaps, nothing goes down from one release to
the next, and the newest release names this code's RPC API and object
versions; every app's history comes out in the one shape; and the upgrade
package sits below what imports it.
"""

from __future__ import annotations

import ast
import itertools
import os

import pytest
from oslo_utils import versionutils

from novalet import app, upgrade
from novalet.upgrade import releases
from tests.unit.objects.test_object_data import object_data

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))))


def _tuple(version: str) -> tuple[int, ...]:
    return versionutils.convert_version_to_tuple(version)


def test_service_versions_have_no_gaps() -> None:
    versions = [entry["service_version"]
                for entry in releases.RELEASE_MAPPING.values()]
    assert versions == list(range(versions[0], releases.SERVICE_VERSION + 1))
    assert versions[0] <= releases.OLDEST_SUPPORTED_SERVICE_VERSION \
        <= releases.SERVICE_VERSION
    assert [r.service_version for r in releases.core_releases()] == list(
        range(releases.OLDEST_SUPPORTED_SERVICE_VERSION,
              releases.SERVICE_VERSION + 1))


def test_every_entry_names_the_same_things() -> None:
    for name, entry in releases.RELEASE_MAPPING.items():
        assert set(entry) == {"service_version", "objects", *releases.RPC_APIS}, name
        for version in (entry["conductor_rpc"], entry["compute_rpc"],
                        *entry["objects"].values()):
            _tuple(version)  # a version, not a typo


def test_nothing_goes_down_from_one_release_to_the_next() -> None:
    entries = list(releases.RELEASE_MAPPING.items())
    for (old_name, old), (new_name, new) in itertools.pairwise(entries):
        step = "release %s -> %s" % (old_name, new_name)
        assert set(old["objects"]) <= set(new["objects"]), step
        for objname, version in old["objects"].items():
            assert _tuple(new["objects"][objname]) >= _tuple(version), (step, objname)
        for api in releases.RPC_APIS:
            assert _tuple(new[api]) >= _tuple(old[api]), (step, api)
        assert new != dict(old, service_version=new["service_version"]) or (
            new["service_version"] in releases.BEHAVIOUR_CHANGES), (
            "%s changes nothing: a release without a change needs no entry "
            "(or says in BEHAVIOUR_CHANGES what its service version tells)" % step)


def test_a_behaviour_change_names_a_release() -> None:
    assert set(releases.BEHAVIOUR_CHANGES) <= set(releases.RELEASES.values())


def test_the_newest_release_names_every_object_version() -> None:
    newest = releases.SERVICE_VERSION_HISTORY[releases.SERVICE_VERSION]
    assert newest["objects"] == {name: data.split("-")[0]
                                 for name, data in object_data.items()}


def test_the_newest_release_names_this_release_s_rpc_apis() -> None:
    """One source of truth: the newest release, the clients and the servers
    agree on each RPC API version."""
    from novalet.compute import manager as compute_manager
    from novalet.compute import rpcapi as compute_rpcapi
    from novalet.conductor import manager as conductor_manager
    from novalet.conductor import rpcapi as conductor_rpcapi

    newest = releases.SERVICE_VERSION_HISTORY[releases.SERVICE_VERSION]
    assert newest["conductor_rpc"] == conductor_rpcapi.RPC_API_VERSION \
        == conductor_manager.RPC_API_VERSION
    assert newest["compute_rpc"] == compute_rpcapi.RPC_API_VERSION \
        == compute_manager.RPC_API_VERSION


def test_every_published_release_has_its_entry() -> None:
    """The RELEASES file (version, service version, commit) and the map
    agree: release N is version N.x.y at service version N."""
    with open(os.path.join(REPO, "RELEASES")) as f:
        published = [line.split() for line in f
                     if line.strip() and not line.startswith("#")]
    assert published
    for version, service_version, _commit in published:
        name = version.split(".")[0]
        assert releases.RELEASES[name] == int(service_version), version


def test_the_core_app_s_releases_are_the_map_s_objects() -> None:
    from novalet import novalet_app

    assert {name: dict(objects) for name, objects
            in novalet_app.APP.releases.items()} == {
        name: entry["objects"] for name, entry in releases.RELEASE_MAPPING.items()}
    assert novalet_app.APP.current_release == releases.release_of_service_version(
        releases.SERVICE_VERSION)


def test_every_app_s_history_has_one_shape() -> None:
    from novalet import novalet_app

    core = upgrade.release_map(novalet_app.APP)
    assert [r.name for r in core] == list(releases.RELEASES)
    assert all(isinstance(r, upgrade.Release) and r.service_version
               and set(r.rpc) == set(releases.RPC_APIS) for r in core)
    widgets = app.App(name="widgets", releases={
        "1": {"Widget": "1.0"}, "2": {"Widget": "1.1"}})
    assert upgrade.release_map(widgets) == (
        upgrade.Release("1", {"Widget": "1.0"}),
        upgrade.Release("2", {"Widget": "1.1"}))


def _imports(path: str) -> set[str]:
    """Every novalet module ``path`` imports, at any depth of its code."""
    found = set()
    with open(path) as f:
        tree = ast.parse(f.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update("%s.%s" % (node.module, alias.name) for alias in node.names)
    return {name for name in found if name.split(".")[0] == "novalet"}


@pytest.mark.parametrize("module", sorted(
    name for name in os.listdir(os.path.join(REPO, "novalet", "upgrade"))
    if name.endswith(".py")))
def test_the_upgrade_package_sits_below_what_imports_it(module: str) -> None:
    """The objects and the indirection plugins import ``novalet.upgrade``;
    it imports none of them, nor the conductor or the RPC layer (it is
    given what it needs)."""
    above = ("novalet.objects", "novalet.indirection", "novalet.conductor",
             "novalet.rpc", "novalet.compute", "novalet.db", "novalet.cmd",
             "novalet.service")
    imported = _imports(os.path.join(REPO, "novalet", "upgrade", module))
    assert not [name for name in imported
                if any(name == a or name.startswith(a + ".") for a in above)]
