"""The example app as its users get it: examples/leases built as a wheel and
installed (not editable) with novalet from this checkout into a virtualenv
of their own, then the README's "Writing an app" steps: ``db sync`` with
the app, a ``novalet-conductor`` serving it (requests signed with the test
session's master key), a client with no database (``leases-agent``), and
``novalet-manage app list`` naming the app and its release.

The virtualenv's dependencies are slow to install (downloads): the
virtualenv is kept under ``~/.cache/novalet-tests/`` for one day, one
``setup.cfg`` and one ``constraints.txt``; novalet and the app are built
and installed again, from this checkout, on every run.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from typing import Any

import pytest

from tests import processes

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "novalet-tests")


def _env() -> dict[str, str]:
    """This environment's, without what would point into it (its venv,
    PYTHONPATH) or restrict the apps; the session's master key stays."""
    return {k: v for k, v in os.environ.items()
            if k not in ("PYTHONWARNINGS", "VIRTUAL_ENV", "PYTHONPATH", "PIP_CONSTRAINT",
                         "OS_DEFAULT__APPS")}


def _run(argv: list[str], cwd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _key() -> str:
    digest = hashlib.sha256()
    for name in ("setup.cfg", "constraints.txt"):
        with open(os.path.join(ROOT, name), "rb") as f:
            digest.update(f.read())
    return "appwheel-py%d%d-%s-%s" % (sys.version_info[0], sys.version_info[1],
                                      digest.hexdigest()[:12],
                                      datetime.date.today().isoformat())


def _wheel(python: str, source: str, into: str) -> str:
    """``source`` (copied: no build/ or egg-info of the tree) built as a
    wheel in ``into``; its path."""
    copy = os.path.join(into, "src")
    shutil.copytree(source, copy, ignore=shutil.ignore_patterns(
        "__pycache__", "build", "*.egg-info", ".venv", "tests"))
    result = _run([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", into, copy],
                  cwd=into)
    assert result.returncode == 0, result.stderr[-3000:]
    shutil.rmtree(copy)
    [built] = [os.path.join(into, n) for n in os.listdir(into) if n.endswith(".whl")]
    return built


@pytest.fixture(scope="module")
def app_venv(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A virtualenv holding novalet (this checkout's, built as a wheel) and
    the example app's wheel; ``bin`` and the app's ``wheel``."""
    os.makedirs(CACHE, exist_ok=True)
    venv = os.path.join(CACHE, _key())
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".complete")):
        shutil.rmtree(venv, ignore_errors=True)
        for stale in os.listdir(CACHE):  # earlier days' and files'
            if stale.startswith("appwheel-"):
                shutil.rmtree(os.path.join(CACHE, stale), ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        result = _run([python, "-m", "pip", "install", "-q", "-c",
                       os.path.join(ROOT, "constraints.txt"), ROOT], cwd=CACHE, timeout=840)
        assert result.returncode == 0, result.stderr[-3000:]
        open(os.path.join(venv, ".complete"), "w").close()
    novalet_dir = str(tmp_path_factory.mktemp("novalet-wheel"))
    app_dir = str(tmp_path_factory.mktemp("leases-wheel"))
    novalet_wheel = _wheel(python, ROOT, novalet_dir)
    app_wheel = _wheel(python, os.path.join(ROOT, "examples", "leases"), app_dir)
    result = _run([python, "-m", "pip", "install", "-q", "--no-deps", "--force-reinstall",
                   novalet_wheel, app_wheel], cwd=CACHE)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"bin": os.path.join(venv, "bin"), "wheel": app_wheel, "python": python}


def test_the_wheel_carries_the_migrations(app_venv: dict[str, str]) -> None:
    names = zipfile.ZipFile(app_venv["wheel"]).namelist()
    for name in ("leases/db/migrations/env.py",
                 "leases/db/migrations/versions/0001_leases.py",
                 "leases/exception.py", "leases/objects.py"):
        assert name in names, names
    # Installed as files, not as a link to this checkout.
    found = _run([app_venv["python"], "-c", "import leases, novalet; "
                  "print(leases.__file__); print(novalet.__file__)"], cwd=CACHE)
    assert found.returncode == 0, found.stderr
    for path in found.stdout.split():
        assert "site-packages" in path and not path.startswith(ROOT), path


def test_the_tutorial_steps_with_the_installed_app(app_venv: dict[str, str], tmp_path: Any,
                                                   rabbit_vhost: Any) -> None:
    topic = "conductor-%s" % os.urandom(4).hex()
    config = processes.write_config(str(tmp_path / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "wheel-conductor"},
        "database": {"connection": "sqlite:///%s" % (tmp_path / "novalet.sqlite")},
        "conductor": {"workers": 1, "topic": topic}})
    manage = os.path.join(app_venv["bin"], "novalet-manage")
    synced = _run([manage, "--config-file", config, "db", "sync"], cwd=str(tmp_path))
    assert synced.returncode == 0, synced.stderr
    assert "App leases is at leases_0002" in synced.stdout
    listed = _run([manage, "--config-file", config, "app", "list", "--format", "json"],
                  cwd=str(tmp_path))
    assert listed.returncode == 0, listed.stderr
    apps = {entry["name"]: entry for entry in json.loads(listed.stdout)}
    assert apps["leases"]["release"] == "3"
    assert apps["leases"]["schema_revision"] == "leases_0002"
    conductor = processes.ServiceProcess(
        "novalet-conductor", config, str(tmp_path / "conductor.log"),
        bin_dir=app_venv["bin"], env=_env())
    try:
        conductor.wait_for_log("novalet-conductor started on wheel-conductor", timeout=90)
        assert "leases (release 3)" in conductor.log()
        agent_config = processes.write_config(str(tmp_path / "agent.conf"), {
            "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "dhcp1"},
            "conductor": {"topic": topic},
            "database": {"connection": "postgresql://nobody@127.0.0.1:1/none"}})
        agent = os.path.join(app_venv["bin"], "leases-agent")
        args = ["--config-file", agent_config, "10.2.0.9", "52:54:00:aa:bb:cc",
                "10.2.0.0/24", "10.2.0.1"]
        ran = _run([agent, *args], cwd=str(tmp_path))
        assert ran.returncode == 0, ran.stderr
        held = json.loads(ran.stdout.strip().splitlines()[-1])
        assert held["subnet"] == ["10.2.0.9"] and held["expires_at"] > 3600
        # The app's own error crosses as itself.
        again = _run([agent, *args], cwd=str(tmp_path))
        assert again.returncode != 0
        assert "IPAlreadyLeased" in again.stderr and "10.2.0.9 is leased already" in \
            again.stderr, again.stderr[-3000:]
        assert "RemoteError" not in again.stderr
        assert not conductor.errors(), conductor.errors()
    finally:
        conductor.stop()
