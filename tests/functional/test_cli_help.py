"""Each program's ``--help``, from the installed console scripts: what the
program does first, then its commands, then the configuration and logging
options (oslo.config's, oslo.log's); errors in the help's words;
``novalet-allinone``'s defaults, columns and start lines."""

from __future__ import annotations

import re
from typing import Any

import pytest

from novalet.cmd import allinone
from tests import processes

SERVICES = ["novalet-conductor", "novalet-compute"]
ADMIN = ["novalet-manage", "novalet-status"]
OSLO = ["novalet-conductor", "novalet-compute", "novalet-manage", "novalet-status"]


_HELP: dict[tuple[str, ...], str] = {}


def _help(binary: str, *args: str) -> str:
    """``BINARY ARGS --help``'s output (run once per test session)."""
    key = (binary, *args)
    if key not in _HELP:
        result = processes.run_command(binary, *args, "--help", timeout=120)
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
        _HELP[key] = result.stdout
    return _HELP[key]


def _headings(text: str) -> list[str]:
    """The section headings argparse prints (``options:``), in order."""
    return [line for line in text.splitlines() if re.fullmatch(r"\S[^.]*:", line)]


def _paragraphs(text: str) -> list[str]:
    return [" ".join(p.split()) for p in re.split(r"\n\s*\n", text) if p.strip()]


@pytest.mark.parametrize("binary", OSLO)
def test_help_opens_with_what_the_program_does(binary: str) -> None:
    text = _help(binary)
    usage, description = _paragraphs(text)[:2]
    # One usage line, not every logging option.
    assert usage.startswith("usage: %s [--config-file PATH] [options]" % binary)
    assert len(text.split("\n\n")[0].splitlines()) == 1, text
    assert "--use-syslog" not in usage and "--log-date-format" not in usage
    # What it does, and what its options are for, before any option.
    assert description.endswith("how to log (--debug, --log-file and the "
                                "rest: oslo.log); everything else is set in "
                                "the configuration files."), description
    assert text.index(description.split()[-1]) < text.index("--config-dir DIR")


@pytest.mark.parametrize("binary", ADMIN)
def test_commands_come_before_the_logging_options(binary: str) -> None:
    text = _help(binary)
    assert _headings(text) == ["commands:", "options:"]
    commands = text.index("commands:")
    assert commands < text.index("options:") < text.index("\n  --debug, -d ")
    assert commands < text.index("\n  COMMAND ") < text.index("--config-file PATH ")
    # No empty group title, no line holding only ':' (oslo.config's own
    # sub-command prints one).
    assert not [line for line in text.splitlines() if line.strip() == ":"]


def test_manage_help_lists_each_commands_actions() -> None:
    text = " ".join(_help("novalet-manage").split())
    assert "db the database schema: sync, version" in text
    assert "service the services and their liveness: list, disable, enable, " \
           "force-down, delete" in text
    assert "hypervisor compute nodes and their resources: list, show, stats" in text
    assert "auth signing keys and broker users: init, retire, host-key, " \
           "rabbitmq" in text


def test_status_help_names_its_one_command() -> None:
    text = " ".join(_help("novalet-status").split())
    assert "upgrade is this deployment ready for this release: 'upgrade check " \
           "[--json]'" in text
    upgrade = " ".join(_help("novalet-status", "upgrade").split())
    assert "ACTION check: run every check (the only action)" in upgrade
    assert "--json print the results as JSON (default: a table)" in upgrade


@pytest.mark.parametrize("binary, args, word, help_args", [
    ("novalet-manage", (), "COMMAND", ()),
    ("novalet-manage", ("service",), "ACTION", ("service",)),
    ("novalet-status", (), "COMMAND", ()),
    ("novalet-status", ("upgrade",), "ACTION", ("upgrade",)),
])
def test_a_missing_argument_is_named_as_the_help_names_it(
        tmp_path: Any, binary: str, args: tuple[str, ...], word: str,
        help_args: tuple[str, ...]) -> None:
    config = processes.write_config(str(tmp_path / "empty.conf"), {"DEFAULT": {}})
    result = processes.run_command(binary, "--config-file", config, *args)
    assert result.returncode == 2, result.stderr
    line = result.stderr.strip()
    assert "the following arguments are required: %s (see %s --help)" % (
        word, " ".join((binary, *args))) in line, line
    text = _help(binary, *help_args)
    assert re.search(r"^  %s\b" % word, text, re.M), text


@pytest.mark.parametrize("binary", SERVICES)
def test_services_have_no_commands(binary: str) -> None:
    assert _headings(_help(binary)) == ["options:"]


# -- novalet-allinone ----------------------------------------------------------

def _option_blocks(text: str) -> dict[str, str]:
    """Each option's help in the ``options:`` section, by its first flag."""
    section = text.split("\noptions:\n", 1)[1].split("\n\n", 1)[0]
    blocks: dict[str, str] = {}
    flag = ""
    for line in section.splitlines():
        match = re.match(r"  (-[-\w]+)", line)
        if match:
            flag = match.group(1)
        blocks[flag] = blocks.get(flag, "") + " " + line.strip()
    return {f: " ".join(b.split()) for f, b in blocks.items()}


def test_allinone_help_shows_every_default() -> None:
    text = _help("novalet-allinone")
    blocks = _option_blocks(text)
    assert set(blocks) == {"-h", "--computes", "--nodes", "--instances", "--once",
                           "--duration", "--transport-url",
                           "--database-connection"}
    for flag, block in blocks.items():
        if flag != "-h":
            assert "(default: " in block, block
    assert "(default: 3)" in blocks["--computes"]
    assert "(default: 2)" in blocks["--nodes"]
    assert "(default: 6)" in blocks["--instances"]
    # The configuration defaults it changes, as it sets them.
    flat = " ".join(text.split())
    for (group, name), value in allinone.DEFAULTS.items():
        assert "%s%s = %s" % ("[%s] " % group if group else "", name, value) in flat


def test_allinone_help_explains_the_columns() -> None:
    flat = " ".join(_help("novalet-allinone").split())
    assert flat.startswith("usage: novalet-allinone [options] [--config-file PATH] "
                           "A whole novalet cluster in one process")
    for column in ("state: up, or DOWN", "last beat:", "reports:",
                   "flags: disabled (novalet-manage service disable",
                   "forced-down (novalet-manage service force-down",
                   "VMs: instances running", "TOTAL:"):
        assert column in flat, column
    assert "--config-file PATH, --config-dir DIR, --debug, --log-file PATH" in flat


@pytest.mark.timeout(180)
def test_allinone_keeps_its_start_lines_in_view(tmp_path: Any) -> None:
    state = tmp_path / "state"
    config = processes.write_config(str(tmp_path / "aio.conf"), {
        "DEFAULT": {"state_path": str(state)}})
    result = processes.run_command(
        "novalet-allinone", "--config-file", config, "--computes", "1",
        "--nodes", "1", "--instances", "0", "--duration", "3", timeout=150)
    assert result.returncode == 0, result.stdout + result.stderr
    frames = result.stdout.split("\x1b[H\x1b[2J")
    assert len(frames) >= 3, result.stdout  # the start lines, two frames
    log = str(state / "novalet-allinone.log")
    for frame in frames[1:]:
        lines = frame.splitlines()
        assert lines[0].startswith("novalet-allinone: starting 1 compute(s) x "
                                   "1 node(s) on fake://")
        assert lines[0].endswith("(log: %s)" % log)
        assert re.fullmatch(r"novalet-allinone: metrics on http://127\.0\.0\.1:"
                            r"\d+/metrics, health on http://127\.0\.0\.1:\d+"
                            r"/healthz", lines[1]), lines[1]
        assert "Services (" in frame and "Hypervisors (1)" in frame
        assert allinone.LEGEND in frame
