"""``pip install novalet pytest`` as a user does it: no ``[test]`` extra, no
constraints (the registry's newest versions). The pytest plugin novalet
installs must not break an unrelated project's run, even under ``-W error``,
its fixtures must work there, and the commands must stay quiet.

The virtualenv is slow to make (a minute or two of downloads): it is kept
under ``~/.cache/novalet-tests/`` between runs, for one day and one
``setup.cfg`` (a new day resolves the newest versions again). novalet itself
is installed again, from this checkout, on every run.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CACHE = os.path.join(os.path.expanduser("~"), ".cache", "novalet-tests")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONWARNINGS", "VIRTUAL_ENV", "PYTHONPATH",
                        "PIP_CONSTRAINT") and not k.startswith(("OS_", "NOVALET_"))}
    return env


def _run(argv: list[str], cwd: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _key() -> str:
    with open(os.path.join(ROOT, "setup.cfg"), "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()[:12]
    return "plain-py%d%d-%s-%s" % (sys.version_info[0], sys.version_info[1], digest,
                                   datetime.date.today().isoformat())


@pytest.fixture(scope="module")
def plain_venv() -> str:
    """A virtualenv holding ``pip install novalet pytest`` (this checkout's
    novalet, built as a wheel: not editable)."""
    os.makedirs(CACHE, exist_ok=True)
    venv = os.path.join(CACHE, _key())
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".complete")):
        shutil.rmtree(venv, ignore_errors=True)
        for stale in os.listdir(CACHE):  # earlier days' and setup.cfgs'
            if stale.startswith("plain-"):
                shutil.rmtree(os.path.join(CACHE, stale), ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        result = _run([python, "-m", "pip", "install", "-q", ROOT, "pytest"], cwd=CACHE,
                      timeout=840)
        assert result.returncode == 0, result.stderr[-3000:]
        open(os.path.join(venv, ".complete"), "w").close()
    # This checkout's code, its dependencies as they are.
    with tempfile.TemporaryDirectory() as wheels:
        result = _run([python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels, ROOT],
                      cwd=CACHE)
        assert result.returncode == 0, result.stderr[-3000:]
        wheel = [os.path.join(wheels, n) for n in os.listdir(wheels)]
        result = _run([python, "-m", "pip", "install", "-q", "--no-deps",
                       "--force-reinstall", *wheel], cwd=CACHE)
        assert result.returncode == 0, result.stderr[-3000:]
    return venv


def test_the_venv_has_no_test_only_packages(plain_venv):
    python = os.path.join(plain_venv, "bin", "python")
    result = _run([python, "-c", "import fixtures"], cwd=plain_venv)
    assert result.returncode != 0, "fixtures is installed: the check below proves nothing"


def test_an_unrelated_project_passes_under_warnings_as_errors(plain_venv, tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x():\n    assert 1\n")
    python = os.path.join(plain_venv, "bin", "python")
    result = _run([python, "-m", "pytest", "-W", "error", "-q", "-p", "no:cacheprovider"],
                  cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed" in result.stdout
    # ... with novalet's plugin loaded, having imported nothing of novalet.
    result = _run([python, "-c", (
        "import sys, pytest_novalet; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('novalet', 'oslo_config', 'oslo_messaging', 'fixtures', 'eventlet', "
        "'sqlalchemy')))")], cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    result = _run([python, "-m", "pytest", "--trace-config", "-q", "-p",
                   "no:cacheprovider"], cwd=str(tmp_path))
    assert "pytest_novalet" in result.stdout, result.stdout


def test_the_plugin_fixtures_work_under_warnings_as_errors(plain_venv, tmp_path):
    (tmp_path / "test_app.py").write_text(
        "from novalet import context, objects\n\n\n"
        "def test_a_service_on_each_path(novalet_path, novalet_db):\n"
        "    svc = objects.Service(context.get_admin_context(), host='h1',\n"
        "                          binary='novalet-compute', topic='compute')\n"
        "    svc.create()\n"
        "    found = objects.Service.get_by_host_and_binary(\n"
        "        context.get_admin_context(), 'h1', 'novalet-compute')\n"
        "    assert found.id == svc.id\n")
    (tmp_path / "pytest.ini").write_text("[pytest]\nnovalet_apps = novalet\n")
    python = os.path.join(plain_venv, "bin", "python")
    result = _run([python, "-m", "pytest", "-W", "error", "-q", "-p", "no:cacheprovider",
                   "-k", "local or inprocess"], cwd=str(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "2 passed" in result.stdout, result.stdout


@pytest.mark.parametrize("prog", ["novalet-manage", "novalet-status", "novalet-conductor",
                                  "novalet-compute", "novalet-allinone"])
def test_commands_are_quiet(plain_venv, prog, tmp_path):
    result = _run([os.path.join(plain_venv, "bin", prog), "--help"], cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
