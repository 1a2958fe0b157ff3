"""Signals to whole process groups (every private process of the fault suite
runs in a session of its own, so a group is exactly one service)."""

from __future__ import annotations

import os
import signal
import subprocess


def signal_group(proc: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to ``proc``'s process group, if it still exists."""
    try:
        os.killpg(proc.pid, signum)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(proc: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGCONT (a frozen group cannot die otherwise) and SIGKILL the group."""
    signal_group(proc, signal.SIGKILL)
    signal_group(proc, signal.SIGCONT)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass


def stop_group(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Wait for ``proc`` to exit; SIGTERM, then SIGKILL past ``timeout``."""
    try:
        proc.wait(timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    signal_group(proc, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
