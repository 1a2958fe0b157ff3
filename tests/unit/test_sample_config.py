"""The committed sample configuration is what the generator makes today, on
any machine, and every novalet option explains itself."""

from __future__ import annotations

import difflib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from novalet import conf as novalet_conf

ROOT = Path(__file__).resolve().parents[2]
GENERATOR_CONFIG = "etc/novalet/novalet-config-generator.conf"
SAMPLE = ROOT / "etc" / "novalet" / "novalet.conf.sample"

# oslo-config-generator, with novalet imported first (it selects oslo.service's
# threading backend, which fails once another namespace selected eventlet).
GENERATE = ("import sys, novalet; from oslo_config import generator; "
            "sys.exit(generator.main())")
REGENERATE = ("python -c '%s' --config-file %s" % (GENERATE, GENERATOR_CONFIG))

# Another machine: other host name, CPU count, user and home directory.
ELSEWHERE = ("import os, socket; socket.gethostname = lambda: 'elsewhere.example'; "
             "os.cpu_count = lambda: 97; os.geteuid = lambda: 0; " + GENERATE)


def _generate(tmp_path: Path, code: str, env: dict[str, str] | None = None) -> str:
    output = tmp_path / "novalet.conf.sample"
    result = subprocess.run(
        [sys.executable, "-c", code, "--config-file", GENERATOR_CONFIG,
         "--output-file", str(output)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, **(env or {})})
    assert result.returncode == 0, result.stderr[-3000:]
    return output.read_text()


def _diff(expected: str, actual: str) -> str:
    lines = difflib.unified_diff(expected.splitlines(), actual.splitlines(),
                                 str(SAMPLE.relative_to(ROOT)), "generated",
                                 lineterm="", n=1)
    return "\n".join(list(lines)[:60])


@pytest.fixture(scope="module")
def generated_here(tmp_path_factory: pytest.TempPathFactory) -> str:
    return _generate(tmp_path_factory.mktemp("here"), GENERATE)


def test_sample_config_is_up_to_date(generated_here: str) -> None:
    generated = generated_here
    committed = SAMPLE.read_text()
    assert generated == committed, (
        "%s is out of date; regenerate it from the repository root with:\n\n"
        "    %s\n\n%s" % (SAMPLE.relative_to(ROOT), REGENERATE,
                          _diff(committed, generated)))


def test_sample_config_is_the_same_on_another_machine(tmp_path: Path,
                                                     generated_here: str) -> None:
    home = tmp_path / "home"
    home.mkdir()
    generated = _generate(tmp_path, ELSEWHERE, {"HOME": str(home),
                                                "USER": "someone-else"})
    assert generated == generated_here, (
        "the sample depends on the machine it is generated on; give the "
        "options below a sample_default:\n%s" % _diff(generated_here, generated))


def test_sample_config_lists_novalet_options() -> None:
    sample = SAMPLE.read_text()
    for group, opts in novalet_conf.list_opts():
        assert "[%s]" % group in sample
        for opt in opts:
            assert "#%s = " % opt.dest in sample, "%s.%s" % (group, opt.dest)
    for line in ("#connection = ", "#transport_url = ", "#default_log_levels = "):
        assert line in sample


def test_every_novalet_option_has_help() -> None:
    missing = ["[%s] %s" % (group, opt.dest)
               for group, opts in novalet_conf.list_opts() for opt in opts
               if not (opt.help or "").strip()]
    assert missing == [], "options without help text: %s" % ", ".join(missing)
    assert sum(len(opts) for _group, opts in novalet_conf.list_opts()) > 20
