"""Earlier releases (1 and 3), installed from this repository's own history
into environments of their own, for the mixed-release tests."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from collections.abc import Iterator

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def release_commit(version: str) -> str:
    """The commit of ``version`` from the RELEASES file (no tags needed)."""
    with open(os.path.join(REPO, "RELEASES")) as f:
        for line in f:
            fields = line.split()
            if fields and not line.startswith("#") and fields[0] == version:
                return fields[2]
    raise LookupError("release %s is not in RELEASES" % version)


class ReleaseEnv:
    """An installed previous release: its own prefix with its own
    ``novalet`` and entry points, on the dependencies of this environment."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.site = sysconfig.get_path(
            "purelib", vars={"base": prefix, "platbase": prefix})
        self.bin = os.path.join(prefix, "bin")
        self.env = dict(os.environ, PYTHONPATH=self.site)

    def command(self, binary: str, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([os.path.join(self.bin, binary), *args],
                              capture_output=True, text=True, timeout=120,
                              env=self.env)


def install_release(version: str, service_version: int,
                    tmp_path_factory: pytest.TempPathFactory) -> ReleaseEnv:
    """Release ``version`` (its commit from RELEASES), installed into a
    prefix of its own on this environment's dependencies."""
    commit = release_commit(version)
    root = tmp_path_factory.mktemp("release-%s" % version)
    source = root / "src"
    source.mkdir()
    archive = subprocess.run(["git", "-C", REPO, "archive", "--format=tar",
                              commit], capture_output=True, timeout=60)
    assert archive.returncode == 0, (
        "cannot read release %s (%s) from the repository history: %s"
        % (version, commit, archive.stderr.decode()))
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive.stdout,
                   check=True, timeout=60)
    prefix = root / "env"
    install = subprocess.run(
        # --ignore-installed: leave this environment's novalet in place.
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps",
         "--ignore-installed", "--no-build-isolation", "--prefix",
         str(prefix), str(source)],
        capture_output=True, text=True, timeout=300)
    assert install.returncode == 0, install.stderr
    env = ReleaseEnv(str(prefix))
    _hide_this_environments_apps(env.site)
    probe = subprocess.run(
        [sys.executable, "-c", "import novalet.objects.service as s, "
         "novalet; print(s.SERVICE_VERSION, novalet.__file__)"],
        capture_output=True, text=True, env=env.env, timeout=60,
        cwd=str(root))
    assert probe.stdout.startswith("%d %s" % (service_version, env.site)), (
        probe.stdout + probe.stderr)
    return env


#: The apps installed in this environment for main's code (the example app),
#: which an earlier release's processes must not load: a host running that
#: release has the app's release for it, or none.
MAIN_ONLY_APPS = ("leases",)


def _hide_this_environments_apps(site: str) -> None:
    """A ``sitecustomize`` in the release's own site directory (first on its
    ``PYTHONPATH``): its processes see no distribution that declares an app
    of ``MAIN_ONLY_APPS``
    (``leases`` uses ``App`` arguments release 3 does not have, and release
    3 imports every installed app's entry point)."""
    with open(os.path.join(site, "sitecustomize.py"), "w") as f:
        f.write(
            "import importlib.metadata as _metadata\n"
            "_HIDDEN = %r\n"
            "_find = _metadata.MetadataPathFinder.find_distributions\n"
            "\n"
            "def _visible(context=_metadata.DistributionFinder.Context()):\n"
            "    return (d for d in _find(context)\n"
            "            if not any(ep.group == 'novalet.apps' and ep.name in _HIDDEN\n"
            "                       for ep in d.entry_points))\n"
            "\n"
            "_metadata.MetadataPathFinder.find_distributions = staticmethod(_visible)\n"
            % (MAIN_ONLY_APPS,))


@pytest.fixture(scope="session")
def release1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseEnv]:
    yield install_release("1.0.0", 1, tmp_path_factory)


@pytest.fixture(scope="session")
def release3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReleaseEnv]:
    yield install_release("3.0.0", 3, tmp_path_factory)
