"""The documentation builds with no warning (``sphinx-build -W``, as
``tox -e docs`` runs it) and holds what the issue asks of it: the API,
configuration and command references, and the release notes (``reno lint``
passes). What the pages say is checked against the code: every option a
configuration block sets is in a generated reference, every
``novalet-manage`` / ``novalet-status`` command named in running text is one
the program's parser has. (The code blocks themselves run in
test_readme.py.)

Sphinx is not a dependency of novalet: ``doc/requirements.txt`` installs it
(``.ci/run`` does). Without it the test is skipped, and fails under
``NOVALET_REQUIRE_SERVICES=1`` (CI), so CI cannot pass without building the
docs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SOURCE = os.path.join(ROOT, "doc", "source")


def _require_sphinx() -> None:
    try:
        import reno  # noqa: F401
        import sphinx  # noqa: F401
    except ImportError as e:
        reason = "the docs' tools are not installed (pip install -r " \
                 "doc/requirements.txt): %s" % e
        if REQUIRE_SERVICES:
            pytest.fail(reason)
        pytest.skip(reason)


def _build(source: str, out: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         source, out], cwd=ROOT, capture_output=True, text=True, timeout=500)


def _text(path: str) -> str:
    with open(path) as f:
        return re.sub(r"<[^>]+>", "", f.read())


@pytest.fixture(scope="module")
def site(tmp_path_factory: Any) -> str:
    _require_sphinx()
    out = str(tmp_path_factory.mktemp("html"))
    result = _build(SOURCE, out)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr
    return out


def test_api_reference(site: str) -> None:
    """autodoc rendered each public module's docstrings."""
    for page, names in {
            "objects-base": ["novalet.objects.base.NovaletObject",
                             "novalet.objects.base.remotable"],
            "objects-fields": ["novalet.objects.fields"],
            "app": ["novalet.app.App"],
            "db": ["novalet.db.block_access", "novalet.db.engine.reader",
                   "novalet.db.engine.writer"],
            "indirection": ["novalet.indirection.configure"],
            "context": ["novalet.context.RequestContext"],
            "exception": ["novalet.exception.NovaletException",
                          "novalet.exception.DBNotAllowed"],
            "testing": ["novalet.testing.check_object_data",
                        "novalet.testing.check_releases"]}.items():
        with open(os.path.join(site, "reference", "api", page + ".html")) as f:
            html = f.read()
        for name in names:
            assert 'id="%s' % name in html, (page, name)


def test_configuration_reference(site: str) -> None:
    """Every option novalet and its apps register has its entry (the
    ``[group] name`` anchor oslo_config.sphinxext writes)."""
    from novalet import app, conf

    with open(os.path.join(site, "configuration", "reference.html")) as f:
        html = f.read()
    listed = [*conf.list_opts(), *app.list_opts()]
    assert sum(len(opts) for _group, opts in listed) > 30
    for group, opts in listed:
        for opt in opts:
            assert 'id="%s.%s"' % (group, opt.dest) in html, (group, opt.dest)


def test_every_option_the_docs_set_is_in_a_reference(site: str) -> None:
    """Each option a configuration block of the docs sets is listed in the
    configuration reference, novalet's or the libraries' (a renamed option
    or a library namespace left out fails)."""
    import configparser

    from tests.integration.test_readme import CONFIG_BLOCKS, block

    html = ""
    for page in ("reference", "libraries"):
        with open(os.path.join(site, "configuration", page + ".html")) as f:
            html += f.read()
    # oslo.messaging registers this group but lists it in no namespace (the
    # libraries page says so); the config block test parses it for real.
    unlisted = {"oslo_messaging_metrics"}
    missing = []
    for name in CONFIG_BLOCKS:
        parser = configparser.ConfigParser(interpolation=None)
        parser.optionxform = str  # type: ignore[assignment, method-assign]
        parser.read_string(block(name))
        for section in ["DEFAULT", *parser.sections()]:
            keys = (parser.defaults() if section == "DEFAULT"
                    else {k: v for k, v in parser[section].items()
                          if k not in parser.defaults()})
            for key in keys:
                if section not in unlisted and 'id="%s.%s"' % (section, key) not in html:
                    missing.append((name, section, key))
    assert missing == [], missing


def test_command_reference(site: str) -> None:
    """Each console script's page holds its own --help, and every
    sub-command of novalet-manage and novalet-status has a section."""
    from importlib import metadata

    sys.path.insert(0, os.path.join(SOURCE, "_ext"))
    try:
        import novalet_commands
    finally:
        sys.path.pop(0)
    scripts = [e.name for e in metadata.entry_points(group="console_scripts")
               if e.value.startswith("novalet.cmd.")]
    assert len(scripts) == 5, scripts
    for name in scripts:
        text = _text(os.path.join(site, "cli", name + ".html"))
        assert "usage: %s" % name in text, name
        assert "--config-file" in text, name
        for path, _parser in novalet_commands.sub_commands(name):
            assert "usage: %s %s" % (name, " ".join(path)) in text, (name, path)
    manage = _text(os.path.join(site, "cli", "novalet-manage.html"))
    for command in ("novalet-manage db sync", "novalet-manage service delete",
                    "novalet-manage auth rabbitmq", "novalet-manage app list"):
        assert "usage: %s" % command in manage, command


def _words(text: str) -> str:
    return " ".join(re.findall(r"[A-Za-z0-9]+", text))


def test_release_notes_rendered(site: str) -> None:
    """The release notes page holds every note (reno's directive): the
    first words of each note's first entry."""
    import yaml

    page = _text(os.path.join(site, "releasenotes.html"))
    with open(os.path.join(ROOT, "releasenotes", "config.yaml")) as f:
        title = yaml.safe_load(f)["unreleased_version_title"]
    # The release in development, named from RELEASES (no git tags), not
    # reno's "0.0.0".
    assert title in page
    assert "0.0.0" not in page
    text = _words(page)
    notes = os.path.join(ROOT, "releasenotes", "notes")
    names = sorted(os.listdir(notes))
    assert len(names) > 5, names
    for name in names:
        with open(os.path.join(notes, name)) as f:
            note = yaml.safe_load(f)
        section = next(v for k, v in note.items() if k != "prelude") \
            if len(note) > 1 or "prelude" not in note else note["prelude"]
        entry = section[0] if isinstance(section, list) else section
        words = " ".join(_words(entry).split()[:8])
        assert words in text, (name, words)


def test_a_warning_fails_the_build(tmp_path: Any) -> None:
    """-W as run here turns a warning into a failed build (a page that no
    toctree lists), so the builds above would have failed on one."""
    _require_sphinx()
    source = tmp_path / "source"
    source.mkdir()
    (source / "conf.py").write_text("project = 'x'\n")
    (source / "index.rst").write_text("x\n=\n")
    (source / "orphan.rst").write_text("y\n=\n")
    result = _build(str(source), str(tmp_path / "out"))
    assert result.returncode != 0
    assert "included in any toctree" in result.stdout + result.stderr


def test_reno_lint() -> None:
    """``reno lint`` (as tox -e releasenotes runs it) accepts every note."""
    _require_sphinx()
    reno = os.path.join(os.path.dirname(sys.executable), "reno")
    result = subprocess.run([reno, "lint"], cwd=ROOT, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


#: A command named in running text: ``novalet-manage db sync`` (reST) or
#: `novalet-manage db sync` (Markdown).
NAMED_COMMAND = re.compile(r"`+(novalet-(?:manage|status)(?: [^`]*)?)`+")
#: The options every program takes (oslo.config's and oslo.log's).
GLOBAL_OPTIONS = {"--config-file", "--config-dir", "--debug", "-d", "--help", "-h"}


def _named_commands() -> list[tuple[str, str]]:
    """(file, text) of every novalet-manage or novalet-status command the
    README, the docs and the release notes name in running text."""
    files = [os.path.join(ROOT, "README.md")]
    for directory in (SOURCE, os.path.join(ROOT, "releasenotes", "notes")):
        files += [os.path.join(d, name) for d, _dirs, names in os.walk(directory)
                  for name in names if name.endswith((".rst", ".yaml"))]
    found = []
    for path in files:
        with open(path) as f:
            text = " ".join(f.read().split())
        found += [(os.path.relpath(path, ROOT), m) for m in NAMED_COMMAND.findall(text)]
    return found


def test_commands_named_in_the_docs_exist() -> None:
    """Every sub-command and option a page names is one the program's own
    parser has (a renamed action or option fails here)."""
    _require_sphinx()
    sys.path.insert(0, os.path.join(SOURCE, "_ext"))
    try:
        import novalet_commands
    finally:
        sys.path.pop(0)
    parsers = {name: {tuple(path): parser
                      for path, parser in novalet_commands.sub_commands(name)}
               for name in ("novalet-manage", "novalet-status")}
    named = _named_commands()
    assert len(named) > 10, named
    for source, command in named:
        program, *words = command.replace("[", " ").replace("]", " ").split()
        path: list[str] = []
        options = []
        skip = False
        for word in words:
            if skip:
                skip = False
            elif word in ("--config-file", "--config-dir"):
                skip = True
            elif word.startswith("-"):
                options.append(word)
            elif re.fullmatch(r"[a-z][a-z-]*", word) and not options:
                path.append(word)
        if path and tuple(path) not in parsers[program]:
            # A positional argument's word, not a sub-command: the
            # parser's own help for it names it (``upgrade check``).
            parent = parsers[program].get(tuple(path[:-1]))
            helps = [a.help or "" for a in (parent._actions if parent else [])
                     if not a.option_strings]
            assert any(h.startswith(path[-1] + ":") for h in helps), (source, command)
            path.pop()
        if path:
            leaf = parsers[program][tuple(path)]
            known = {s for action in leaf._actions for s in action.option_strings}
            for option in options:
                assert option in known | GLOBAL_OPTIONS, (source, command, option)
