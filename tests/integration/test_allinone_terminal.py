"""``novalet-allinone`` driven in a real terminal (tmux), as a person would."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest

from tests import processes

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True,
                          timeout=30).stdout


def _screen(session: str) -> str:
    return _tmux("capture-pane", "-p", "-t", session)


def _wait_screen(session: str, text: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        screen = _screen(session)
        if text in screen:
            return screen
        time.sleep(0.3)
    raise AssertionError("%r never appeared; screen:\n%s" % (text, _screen(session)))


@pytest.fixture
def tmux_session(tmp_path):
    if shutil.which("tmux") is None:
        from tests.conftest import service_unavailable
        service_unavailable("tmux is not installed")
    name = "novalet-%s" % os.urandom(3).hex()
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "160",
                    "-y", "50"], check=True, timeout=30)
    yield name
    subprocess.run(["tmux", "kill-session", "-t", name], timeout=30)


def test_live_view_shows_the_cluster_and_ctrl_c_stops_it(tmp_path, tmux_session):
    config = processes.write_config(str(tmp_path / "aio.conf"), {
        "DEFAULT": {"state_path": str(tmp_path / "state")}})
    binary = os.path.join(processes.BIN_DIR, "novalet-allinone")
    _tmux("send-keys", "-t", tmux_session,
          "%s --config-file %s --computes 2 --nodes 2 --instances 3; "
          "echo EXIT=$?" % (binary, config), "Enter")
    screen = _wait_screen(tmux_session, "Services (2 up, 0 down)", 60)
    assert "compute-1  novalet-compute  up" in screen
    assert "compute-2  novalet-compute  up" in screen
    assert "compute-1-node-1" in screen and "compute-2-node-2" in screen
    assert "TOTAL" in screen and "[#" in screen  # usage bars are not empty
    # The start lines stay in view above the tables: the log, the metrics.
    assert "(log: %s)" % (tmp_path / "state" / "novalet-allinone.log") in screen
    assert "novalet-allinone: metrics on http://127.0.0.1:" in screen
    assert "flags: disabled = no new work is scheduled to it" in screen
    # The view refreshes: the heartbeat counters move.
    first = _screen(tmux_session)
    time.sleep(2.5)
    assert _screen(tmux_session) != first
    _tmux("send-keys", "-t", tmux_session, "C-c")
    screen = _wait_screen(tmux_session, "EXIT=0", 60)
    assert "novalet-allinone: stopped" in screen
    leftovers = subprocess.run(["pgrep", "-f", "novalet-allinone --config-file %s"
                                % config], capture_output=True, text=True)
    assert leftovers.stdout.strip() == ""
