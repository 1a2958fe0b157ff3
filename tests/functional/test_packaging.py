"""What the built package carries for its users: the LICENSE, ``py.typed``
(an app's mypy run sees novalet's types), ``novalet.__version__``, the
Pythons it is tested on."""

from __future__ import annotations

import configparser
import glob
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from typing import Any

import pytest

import novalet

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LEASES = os.path.join(ROOT, "examples", "leases", "leases")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

# An app's mistakes against novalet's API that mypy can only see with
# novalet's types: each line, and the error mypy must report for it.
MISUSE = '''\
from leases import objects
from novalet import context
from novalet.objects import base

ctxt: int = context.get_admin_context()
base.set_indirection_api()
name: int = objects.LeaseList.obj_from_db(ctxt, []).objects[0].hostname
'''
EXPECTED = [
    'misuse.py:5: error: Incompatible types in assignment (expression has type '
    '"RequestContext", variable has type "int")  [assignment]',
    'misuse.py:6: error: Missing positional argument "api" in call to '
    '"set_indirection_api"  [call-arg]',
    # The app's own field annotations (Lease.hostname: str | None, a field
    # no method assigns), through novalet's typed row helper (obj_from_db
    # returns the list's class).
    'misuse.py:7: error: Incompatible types in assignment (expression has type '
    '"str | None", variable has type "int")  [assignment]',
]

# oslo.versionedobjects sets an object's fields as attributes at run time:
# an app annotates them (as novalet's own objects do, and the example app
# does), so mypy checks its code against novalet's with no error code off.
MYPY_INI = '''\
[mypy]
warn_unused_configs = True

[mypy-netaddr.*]
ignore_missing_imports = True
'''


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> str:
    """novalet built as its users get it: a wheel of this tree's sources
    (copied: a ``build/`` directory left in the tree would be reused)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("setup.cfg", "pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(os.path.join(ROOT, name), source / name)
    shutil.copytree(os.path.join(ROOT, "novalet"), source / "novalet",
                    ignore=shutil.ignore_patterns("__pycache__"))
    dist = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet",
         "--disable-pip-version-check", "--wheel-dir", str(dist), str(source)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    [built] = glob.glob(str(dist / "novalet-*.whl"))
    return built


def test_the_wheel_carries_the_license_and_py_typed(wheel: str) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert "novalet/py.typed" in names
    # setuptools 77 and newer keep it under licenses/ (PEP 639).
    [license_file] = [n for n in names if re.search(r"\.dist-info/(licenses/)?LICENSE$", n)]
    text = zipfile.ZipFile(wheel).read(license_file).decode()
    assert "Apache License" in text and "Version 2.0, January 2004" in text
    with open(os.path.join(ROOT, "LICENSE")) as f:
        assert f.read() == text


def _installed(tmp_path: Any, wheel: str) -> str:
    """A virtualenv holding the wheel (unpacked as an installer would) and,
    through a ``.pth`` line, this environment's other packages; its python."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    python = str(venv / "bin" / "python")
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60).stdout.strip()
    zipfile.ZipFile(wheel).extractall(site)
    # This environment's novalet is an editable install (an import hook
    # mypy cannot follow): the only novalet mypy finds is the wheel's.
    with open(os.path.join(site, "dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_an_apps_mypy_sees_novalets_types(tmp_path: Any, wheel: str) -> None:
    pytest.importorskip("mypy", reason="mypy is not installed")
    python = _installed(tmp_path, wheel)
    (tmp_path / "misuse.py").write_text(MISUSE)
    (tmp_path / "mypy.ini").write_text(MYPY_INI)
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "mypy.ini",
         "--cache-dir", str(tmp_path / "cache"), "--python-executable", python,
         "--no-error-summary", "misuse.py", LEASES],
        cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    errors = [line for line in result.stdout.splitlines() if line.strip()]
    # Without py.typed mypy skips novalet ("missing library stubs or
    # py.typed marker") and sees neither mistake.
    assert errors == EXPECTED, result.stdout + result.stderr
    assert result.returncode == 1


def test_version_is_the_package_metadata() -> None:
    assert novalet.__version__ == metadata.version("novalet")
    parser = configparser.ConfigParser()
    parser.read(os.path.join(ROOT, "setup.cfg"))
    assert novalet.__version__ == parser["metadata"]["version"]


def test_classifiers_name_the_pythons_tested() -> None:
    classifiers = metadata.metadata("novalet").get_all("Classifier") or []
    tested = {"3.11", "3.12", "3.13"}
    assert {c.rsplit(" :: ", 1)[1] for c in classifiers
            if c.startswith("Programming Language :: Python :: 3.")} == tested
    assert "%d.%d" % sys.version_info[:2] in tested
    assert "Typing :: Typed" in classifiers
