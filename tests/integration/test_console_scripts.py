"""Every console script, run as an operator runs it: its stderr holds only
novalet's own lines (no other library's warnings, no traceback), for
``--help`` and for one command of each that fails."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib import metadata

import pytest

BIN = os.path.dirname(sys.executable)

#: What a library's warning looks like on stderr
#: (``warnings.formatwarning``: ``FILE.py:LINE: CATEGORY: message``).
WARNING_LINE = re.compile(r"\.py:\d+: \w*(Warning|Error)\b")


def _scripts() -> list[str]:
    return sorted(ep.name for ep in metadata.distribution("novalet").entry_points
                  if ep.group == "console_scripts")


def _run(*argv: str, cwd: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONWARNINGS",) and not k.startswith("OS_")}
    # As an operator's shell has it: Python's default warning filters.
    return subprocess.run([os.path.join(BIN, argv[0]), *argv[1:]], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=120)


def _assert_own_lines(stderr: str) -> None:
    assert "Traceback" not in stderr, stderr
    for line in stderr.splitlines():
        assert not WARNING_LINE.search(line), "another library's warning:\n" + stderr
        assert "site-packages" not in line, stderr


def test_every_console_script_is_checked_here():
    assert set(_scripts()) == set(FAILING), (
        "a console script without a failing command in this test")


@pytest.mark.parametrize("prog", _scripts())
def test_help_prints_nothing_on_stderr(prog, tmp_path):
    result = _run(prog, "--help", cwd=str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "usage: %s" % prog in result.stdout


def _config(tmp_path, transport_url: str = "rabbit://guest:guest@127.0.0.1:1/",
            enforce: bool = True) -> str:
    """A configuration of a missing SQLite database, a broker nobody
    listens on (nothing is sent: every command fails before) and signed
    requests required."""
    path = tmp_path / "novalet.conf"
    path.write_text(
        "[DEFAULT]\nstate_path = %s\ntransport_url = %s\n"
        "[database]\nconnection = sqlite:///%s\n"
        "[auth]\nenforce = %s\n" % (tmp_path / "state", transport_url,
                                     tmp_path / "none.sqlite", enforce))
    return str(path)


#: One failing command of each program: (arguments, exit code, what its last
#: stderr line says).
FAILING = {
    "novalet-conductor": (["upgrade-me"], 2, "unrecognized arguments"),
    "novalet-compute": ([], 2, "set [auth] key_file"),
    "novalet-allinone": (["--computes", "0"], 2, "--computes and --nodes must be"),
    "novalet-manage": (["service", "list"], 1, "has no schema: run "
                                                "'novalet-manage db sync'"),
    "novalet-status": (["upgrade", "check"], 2, "has no schema: run "
                                                "'novalet-manage db sync'"),
}


@pytest.mark.parametrize("prog", sorted(FAILING))
def test_a_failing_command_prints_only_its_own_lines(prog, tmp_path):
    argv, code, says = FAILING[prog]
    result = _run(prog, "--config-file", _config(tmp_path), *argv,
                  cwd=str(tmp_path))
    assert result.returncode == code, (result.stdout, result.stderr)
    _assert_own_lines(result.stderr)
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("%s:" % prog) and says in last, result.stderr
    # A command that only reads the database creates none.
    assert not (tmp_path / "none.sqlite").exists()


def test_the_conductor_without_schema_asks_for_db_sync(tmp_path):
    config = _config(tmp_path, transport_url="fake://", enforce=False)
    result = _run("novalet-conductor", "--config-file", config, cwd=str(tmp_path))
    assert result.returncode == 1, (result.stdout, result.stderr)
    _assert_own_lines(result.stderr)
    assert result.stderr.strip().splitlines() == [
        line for line in result.stderr.strip().splitlines()
        if line.startswith("novalet-conductor: cannot start:")]
    assert "run 'novalet-manage db sync'" in result.stderr
