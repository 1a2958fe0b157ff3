"""Run novalet commands as separate processes for integration tests."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from typing import Any

BIN_DIR = os.path.dirname(sys.executable)


def write_config(path: str, sections: dict[str, dict[str, Any]]) -> str:
    with open(path, "w") as f:
        for section, values in sections.items():
            f.write("[%s]\n" % section)
            for key, value in values.items():
                f.write("%s = %s\n" % (key, value))
            f.write("\n")
    return path


def run_command(binary: str, *args: str, timeout: float = 120,
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([os.path.join(BIN_DIR, binary), *args],
                          capture_output=True, text=True, timeout=timeout, env=env)


def wait_for(predicate: Any, timeout: float = 30.0, what: str = "condition",
             interval: float = 0.1) -> Any:
    """Poll ``predicate`` until it returns a true value, which is returned;
    past ``timeout`` seconds fail naming ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    while True:
        last = predicate()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise AssertionError("timed out waiting for %s within %ss (last: %r)"
                                 % (what, timeout, last))
        time.sleep(interval)


def children(pid: int) -> list[int]:
    """The live processes whose parent is ``pid`` (a launcher's workers, a
    postmaster's backends): read from the kernel's per-thread child lists,
    cheap enough to poll every few milliseconds."""
    found: set[int] = set()
    try:
        threads = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    for tid in threads:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid)) as f:
                found.update(int(child) for child in f.read().split())
        except OSError:
            continue
    live = []
    for child in sorted(found):
        try:
            with open("/proc/%d/stat" % child) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z":
            live.append(child)
    return live


#: The start of an oslo.log record: its timestamp.
_LOG_RECORD = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")


class ServiceProcess:
    """A novalet service process whose output goes to a log file."""

    def __init__(self, binary: str, config_file: str, log_path: str,
                 *extra_args: str, bin_dir: str = BIN_DIR,
                 env: dict[str, str] | None = None) -> None:
        self.binary = binary
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, binary), "--config-file", config_file,
             *extra_args],
            stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True,
            env=env)

    def log(self) -> str:
        with open(self.log_path) as f:
            return f.read()

    def wait_for_log(self, pattern: str, timeout: float = 60,
                     count: int = 1) -> re.Match[str]:
        """Wait until the log holds ``count`` matches of ``pattern`` (e.g.
        one start line per worker); returns the ``count``-th."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        while time.monotonic() < deadline:
            for seen, match in enumerate(regex.finditer(self.log()), 1):
                if seen == count:
                    return match
            if self.proc.poll() is not None:
                raise AssertionError("%s exited (%s) before logging %r:\n%s" % (
                    self.binary, self.proc.returncode, pattern, self.log()[-4000:]))
            time.sleep(0.1)
        raise AssertionError("%s did not log %r within %ss:\n%s" % (
            self.binary, pattern, timeout, self.log()[-4000:]))

    def signal(self, signum: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; SIGKILL past ``timeout``."""
        if self.proc.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()
        return self.proc.returncode

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def errors(self) -> list[str]:
        """Log records at ERROR or CRITICAL, and tracebacks (not other text
        that says ERROR, e.g. a Guru Meditation report's config dump)."""
        return [line for line in self.log().splitlines()
                if (_LOG_RECORD.match(line)
                    and (" ERROR " in line or " CRITICAL " in line))
                or line.startswith("Traceback")]
