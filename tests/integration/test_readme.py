"""The code blocks of the README and of the documentation (doc/source),
run as written, so neither can drift from the code. Each block a user would
run carries a marker on the line before it: ``<!-- readme-test: NAME -->``
in the README (Markdown), ``.. doc-test: NAME`` (a reST comment) in
doc/source; a block with a language and no marker fails
``test_every_runnable_block_is_tested``. A block may appear in more than one
place (the README's taste of the API is also in the docs): every copy must
be the same text, and it is tested once. The README itself stays a landing
page: at most 300 lines, its relative links leading to files here.

What "as written" means per block (and where it cannot be literal):

* ``two-commands`` (README, install guide): command 1 runs in a copy of this
  repository's tracked files (a fresh venv, ``pip install -e .``,
  ``novalet-allinone`` until its first status view, then Ctrl-C); command 2
  is the test suite itself, which cannot run inside itself: ``.ci/run`` must
  run it, and the test checks it does.
* ``config``, ``config-tls`` (operator's guide, deployment),
  ``config-metrics``, ``config-oslo-metrics`` (metrics), ``config-auth-*``
  (the verified caller): parsed by oslo.config, every option read back (a
  bad value or name fails). Their hosts are examples. (The scale-out
  guide's configuration files are tested by
  tests/integration/test_scale_out_guide.py.)
* ``deploy`` (deployment): every line runs, in order, in a directory holding
  the ``config`` block as ``novalet.conf`` with its example hosts replaced by
  this run's RabbitMQ vhost and PostgreSQL database and ``qemu:///system`` by
  libvirt's test host (no hypervisor here); the services run in the
  background until the last line is done. The ``pip install`` line runs with
  ``--dry-run`` (it would replace this environment's editable install).
* ``python-api`` (README, user guide): runs as a script against a freshly
  synced SQLite database.
* ``auth-commands`` (the verified caller): every line runs, in a directory
  holding the ``config-auth-conductor`` block as ``conductor.conf`` with
  ``/etc/novalet`` replaced by that directory (and without the test
  session's own master key); the keys it writes are then read as a conductor
  and a compute would.
* ``exit-codes`` (commands): runs against a reachable and an unreachable
  database.
* ``app-*`` (the app author's tutorial): the package ``notes`` made of
  its blocks and the empty ``__init__.py`` files its tree names, installed
  by the ``app-install`` block's ``pip install`` (not editable; into a
  directory of its own on ``PYTHONPATH``, without dependencies: novalet is
  this environment's), then its source deleted: what runs is what the wheel
  carried. Its tests (``app-conftest``, ``app-tests``) pass on every path;
  the rest of ``app-install`` runs (``db sync`` migrates it, the conductor
  serves it), and ``app-client`` runs as written with a configuration of
  ``indirection = rpc`` and an unreachable database: the note is made,
  listed and counted through the conductor and ``NoteTooLong`` is caught
  as itself. (The same with the example app built as a wheel into a clean
  virtualenv: tests/integration/test_app_wheel.py.)
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

import pytest

from tests import processes, services
from tests.conftest import service_unavailable
from tests.private_rabbit import free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(ROOT, "README.md")
DOC_SOURCE = os.path.join(ROOT, "doc", "source")
#: A fenced block, at the margin or indented (inside a list item).
BLOCK = re.compile(r"^( *)```(\w*)\n(.*?)^\1```$", re.S | re.M)
MARKER = re.compile(r"<!-- readme-test: ([\w-]+) -->\n *$")
#: A reST code directive (any of its names) and its language, if any.
RST_DIRECTIVE = re.compile(r"^( *)\.\. (?:code-block|code|sourcecode)::[ \t]*(\S*)[ \t]*$")
RST_MARKER = re.compile(r"^ *\.\. doc-test: ([\w-]+) *$")
CONFIG_BLOCKS = ["config", "config-tls", "config-metrics", "config-oslo-metrics",
                 "config-auth-conductor", "config-auth-compute"]
APP_BLOCKS = ["app-pyproject", "app-setup", "app-declaration", "app-exception",
              "app-objects", "app-migration-env", "app-migration", "app-conftest",
              "app-tests", "app-install", "app-client"]
TESTED = {"two-commands", "deploy", "python-api", "exit-codes", "auth-commands",
          "prometheus-scrape", *CONFIG_BLOCKS, *APP_BLOCKS}


def _markdown_blocks(path: str) -> list[tuple[str | None, str, str]]:
    with open(path) as f:
        text = f.read()
    found = []
    for match in BLOCK.finditer(text):
        indent, language, body = match.groups()
        marker = MARKER.search(text[:match.start()])
        lines = [line[len(indent):] if line.startswith(indent) else line.lstrip()
                 for line in body.splitlines(keepends=True)]
        found.append((marker.group(1) if marker else None, language, "".join(lines)))
    return found


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _rst_blocks(path: str) -> list[tuple[str | None, str, str]]:
    """(marker, language, text) of every code directive of a reST file: the
    body is the indented text after the directive's options, dedented."""
    with open(path) as f:
        lines = f.read().splitlines()
    found = []
    for at, line in enumerate(lines):
        match = RST_DIRECTIVE.match(line)
        if not match:
            continue
        indent = len(match.group(1))
        before = [prev for prev in lines[:at] if prev.strip()]
        marker = RST_MARKER.match(before[-1]) if before else None
        body: list[str] = []
        index = at + 1
        while index < len(lines) and lines[index].strip().startswith(":") \
                and _indent(lines[index]) > indent:
            index += 1  # the directive's options
        for following in lines[index:]:
            if following.strip() and _indent(following) <= indent:
                break
            body.append(following)
        while body and not body[-1].strip():
            body.pop()
        while body and not body[0].strip():
            body.pop(0)
        margin = min((_indent(b) for b in body if b.strip()), default=0)
        found.append((marker.group(1) if marker else None, match.group(2),
                      "".join(b[margin:] + "\n" for b in body)))
    return found


#: Pages whose blocks another module tests (with markers of its own).
TESTED_ELSEWHERE = {
    # tests/integration/test_scale_out_guide.py deploys the guide from it.
    os.path.join(DOC_SOURCE, "admin", "scale-out.rst"),
}


def doc_files() -> list[str]:
    """The README and every reST page of doc/source (but those of
    ``TESTED_ELSEWHERE``)."""
    pages = [os.path.join(directory, name)
             for directory, _dirs, names in os.walk(DOC_SOURCE)
             for name in names if name.endswith(".rst")]
    return [README, *sorted(p for p in pages if p not in TESTED_ELSEWHERE)]


def _blocks() -> list[tuple[str, str | None, str, str]]:
    """(file, marker or None, language, text) of every code block."""
    found: list[tuple[str, str | None, str, str]] = []
    for path in doc_files():
        parse = _markdown_blocks if path.endswith(".md") else _rst_blocks
        found.extend((os.path.relpath(path, ROOT), marker, language, text)
                     for marker, language, text in parse(path))
    return found


def block(name: str) -> str:
    """The text of the blocks marked ``name``: all copies alike."""
    texts = {t for _path, marker, _lang, t in _blocks() if marker == name}
    assert len(texts) == 1, "%d different blocks named %s" % (len(texts), name)
    return texts.pop()


def _commands(text: str) -> list[str]:
    """The command lines of a shell block (comment lines dropped)."""
    return [line for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def _env(home: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = processes.BIN_DIR + os.pathsep + env.get("PATH", "")
    env["HOME"] = home
    return env


def test_every_runnable_block_is_tested() -> None:
    blocks = _blocks()
    untested = [(path, lang, text[:60]) for path, marker, lang, text in blocks
                if lang not in ("", "text", "none") and marker is None]
    assert untested == [], "code blocks without a test marker"
    assert {marker for _path, marker, _lang, _text in blocks if marker} == TESTED
    for name in TESTED:
        block(name)  # each copy of a block is the same text


def test_prometheus_scrape_block_is_the_shipped_configuration() -> None:
    """The monitoring guide's scrape jobs are etc/prometheus/prometheus.yml's."""
    import yaml

    with open(os.path.join(ROOT, "etc", "prometheus", "prometheus.yml")) as f:
        shipped = yaml.safe_load(f)
    assert yaml.safe_load(block("prometheus-scrape")) == {
        "scrape_configs": shipped["scrape_configs"]}


def test_block_extraction_reads_rst() -> None:
    """The reST reader finds a marked block's exact text (options and the
    indentation of a list item dropped), and an unmarked one."""
    import tempfile

    with tempfile.NamedTemporaryFile("w", suffix=".rst", delete=False) as f:
        f.write("Title\n=====\n\n1. Item\n\n   .. doc-test: x\n\n"
                "   .. code-block:: ini\n      :caption: c\n\n"
                "      [a]\n\n      b = 1\n\n   after\n\n"
                ".. code-block:: sh\n\n   echo hi\n")
    try:
        assert _rst_blocks(f.name) == [("x", "ini", "[a]\n\nb = 1\n"),
                                       (None, "sh", "echo hi\n")]
    finally:
        os.unlink(f.name)


def test_readme_is_a_landing_page() -> None:
    """At most 300 lines, and every relative link leads to a file of this
    repository (the docs' pages, read on a code host)."""
    with open(README) as f:
        text = f.read()
    assert len(text.splitlines()) <= 300
    links = re.findall(r"\]\(([^)#\s]+)\)", text)
    local = [link for link in links if "://" not in link]
    assert len(local) > 10, links
    missing = [link for link in local if not os.path.exists(os.path.join(ROOT, link))]
    assert missing == []


def test_readme_keeps_its_commands() -> None:
    """The landing page still carries the two commands, as .ci/run runs them."""
    assert "two-commands" in {m for m, _l, _t in _markdown_blocks(README)}


# -- configuration -----------------------------------------------------------------

@pytest.mark.parametrize("name", CONFIG_BLOCKS)
def test_config_block_parses(name: str, tmp_path: Any) -> None:
    path = tmp_path / "novalet.conf"
    path.write_text(block(name))
    code = ("import sys, novalet\n"
            "from oslo_config import cfg\n"
            "from novalet import conf\n"
            "conf.parse_args(['--config-file', sys.argv[1]])\n"
            "parser = cfg.ConfigParser(sys.argv[1], {})\n"
            "parser.parse()\n"
            "for section, values in parser.sections.items():\n"
            "    group = conf.CONF if section == 'DEFAULT' else conf.CONF[section]\n"
            "    for key in values:\n"
            "        print(section, key, repr(group[key]))\n")
    result = subprocess.run([sys.executable, "-c", code, str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    read = dict((" ".join(line.split()[:2]), line.split(None, 2)[2])
                for line in result.stdout.splitlines())
    written = [line for line in block(name).splitlines()
               if "=" in line and not line.startswith("#")]
    assert len(read) == len(written), (read, written)
    spot = {"config": ("compute virt_driver", "'libvirt'"),
            "config-tls": ("oslo_messaging_rabbit ssl", "True"),
            "config-metrics": ("metrics bind_port", "9710"),
            "config-oslo-metrics": ("oslo_messaging_metrics metrics_enabled", "True")}
    if name in spot:
        key, value = spot[name]
        assert read[key] == value


# -- the Python API ------------------------------------------------------------------

def _synced_sqlite(directory: Any) -> str:
    config = processes.write_config(str(directory / "novalet.conf"), {
        "database": {"connection": "sqlite:///%s" % (directory / "novalet.sqlite")}})
    result = processes.run_command("novalet-manage", "--config-file", config,
                                   "db", "sync")
    assert result.returncode == 0, result.stderr
    return config


def test_python_api_block(tmp_path: Any) -> None:
    _synced_sqlite(tmp_path)
    script = tmp_path / "example.py"
    script.write_text(block("python-api"))
    result = subprocess.run([sys.executable, str(script)], cwd=str(tmp_path),
                            capture_output=True, text=True, timeout=120,
                            env=_env(str(tmp_path)))
    assert result.returncode == 0, result.stderr
    database = services.Database("sqlite", "sqlite:///%s" % (tmp_path / "novalet.sqlite"),
                                 None, "readme")
    try:
        [row] = database.query("SELECT memory_mb_used, host FROM compute_nodes "
                               "WHERE hypervisor_hostname = 'h1-node-1'")
    finally:
        database.engine.dispose()
    assert (row.memory_mb_used, row.host) == (2048, "h1")


# -- keys ------------------------------------------------------------------------------

def test_auth_commands_block(tmp_path: Any) -> None:
    from novalet.auth import keys

    (tmp_path / "conductor.conf").write_text(
        block("config-auth-conductor").replace("/etc/novalet", str(tmp_path)))
    env = {k: v for k, v in _env(str(tmp_path)).items()
           if k != "OS_AUTH__MASTER_KEY_FILE"}
    outputs = []
    for line in _commands(block("auth-commands")):
        result = subprocess.run(shlex.split(line, comments=True),
                                cwd=str(tmp_path), capture_output=True,
                                text=True, timeout=120, env=env)
        assert result.returncode == 0, (line, result.stdout, result.stderr)
        outputs.append(result.stdout)
    master = keys.read_file(str(tmp_path / "master.key"), keys.MASTER)
    host = keys.read_file(str(tmp_path / "compute-1.key"), keys.HOST)
    assert host["host"] == "compute-1"
    assert host["keys"] == [(key_id, keys.host_key(secret, "compute-1"))
                            for key_id, secret in master["keys"]]
    assert [line.split()[:2] for line in outputs[2].splitlines()[:4]] == [
        ["rabbitmqctl", "add_vhost"], ["rabbitmqctl", "add_user"],
        ["rabbitmqctl", "set_permissions"],
        ["rabbitmqctl", "set_topic_permissions"]]


# -- exit codes ------------------------------------------------------------------------

def test_exit_codes_block(tmp_path: Any) -> None:
    up = tmp_path / "up"
    up.mkdir()
    _synced_sqlite(up)
    down = tmp_path / "down"
    down.mkdir()
    processes.write_config(str(down / "novalet.conf"), {"database": {
        "connection": "postgresql+psycopg2://postgres@127.0.0.1:%d/x" % free_port()}})
    for directory, expected in ((up, "services listed"),
                                (down, "database or broker unreachable: try again later")):
        result = subprocess.run(["bash", "-c", block("exit-codes")], cwd=str(directory),
                                capture_output=True, text=True, timeout=120,
                                env=_env(str(directory)))
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == expected, (result.stdout, result.stderr)


# -- deploy on RabbitMQ and PostgreSQL -----------------------------------------------

def test_deploy_block(tmp_path: Any, postgresql_db: Any) -> None:
    try:
        vhost = services.RabbitVhost()
    except services.ServiceUnavailable as e:
        service_unavailable(str(e))
    procs: list[processes.ServiceProcess] = []
    try:
        config = block("config")
        for example, real in [
                ("rabbit://novalet:secret@rabbit.example:5672/novalet", vhost.url),
                ("postgresql+psycopg2://novalet:secret@db.example/novalet",
                 postgresql_db.url),
                ("qemu:///system", "test:///default")]:
            assert example in config
            config = config.replace(example, real)
        (tmp_path / "novalet.conf").write_text(config)
        env = _env(str(tmp_path))
        for line in _commands(block("deploy")):
            argv = shlex.split(line, comments=True)
            if argv[0] == "pip":
                result = subprocess.run(
                    [os.path.join(processes.BIN_DIR, "pip"), *argv[1:2], "--dry-run",
                     "--quiet", *argv[2:]], cwd=ROOT, capture_output=True, text=True,
                    timeout=300, env=env)
                assert result.returncode == 0, result.stderr
                continue
            if argv[0] in ("novalet-conductor", "novalet-compute"):
                at = argv.index("--config-file") + 1
                proc = processes.ServiceProcess(
                    argv[0], str(tmp_path / argv[at]),  # the block's cwd
                    str(tmp_path / (argv[0] + ".log")), *argv[at + 1:], env=env)
                procs.append(proc)
                proc.wait_for_log("%s started" % argv[0], timeout=120)
                continue
            result = subprocess.run(argv, cwd=str(tmp_path), capture_output=True,
                                    text=True, timeout=120, env=env)
            assert result.returncode == 0, (line, result.stdout, result.stderr)
            if "hypervisor stats" in line:
                assert re.search(r"count\s+1\b", result.stdout), result.stdout
        for proc in reversed(procs):
            assert proc.stop() == 0
            assert not proc.errors(), proc.errors()
    finally:
        for proc in reversed(procs):
            proc.stop()
        vhost.delete()


# -- the two commands -----------------------------------------------------------------

def test_two_commands(tmp_path: Any) -> None:
    first, second = _commands(block("two-commands"))
    # Command 2 is the suite itself: CI runs it, as written.
    with open(os.path.join(ROOT, ".ci", "run")) as f:
        ci = []
        for line in f:
            try:
                ci.append([w for w in shlex.split(line, comments=True) if w != "-q"])
            except ValueError:  # shell syntax shlex does not take
                pass
    for part in second.split("&&"):
        words = [w for w in shlex.split(part) if w != "-q"]
        assert words in ci, part

    # Command 1, in a copy of the repository's files.
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True,
                            check=True).stdout.decode().split("\0")
    copy = tmp_path / "novalet"
    for name in filter(None, listed):
        source = os.path.join(ROOT, name)
        if os.path.isfile(source):
            os.makedirs(os.path.dirname(copy / name), exist_ok=True)
            shutil.copy2(source, copy / name)
    env = _env(str(tmp_path))
    env.pop("VIRTUAL_ENV", None)
    log = open(tmp_path / "quickstart.out", "w+")
    proc = subprocess.Popen(["bash", "-c", first], cwd=str(copy), stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        deadline = time.monotonic() + 480
        while time.monotonic() < deadline and proc.poll() is None:
            log.seek(0)
            if "Ctrl-C stops every service." in log.read():
                break
            time.sleep(1)
        log.seek(0)
        assert proc.poll() is None, log.read()[-4000:]
        assert "Ctrl-C stops every service." in log.read(), "no status view"
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(60) == 0
        log.seek(0)
        output = log.read()
        assert "novalet-allinone (3 computes x 2 nodes)" in output
        assert output.rstrip().endswith("novalet-allinone: stopped")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()


# -- writing an app ------------------------------------------------------------------

def test_writing_an_app_blocks(tmp_path: Any, rabbit_vhost: Any) -> None:
    from tests.apps import app_environment

    source = tmp_path / "src" / "notes"
    files = {"pyproject.toml": "app-pyproject", "setup.cfg": "app-setup",
             "notes/__init__.py": None, "notes/novalet_app.py": "app-declaration",
             "notes/exception.py": "app-exception", "notes/objects.py": "app-objects",
             "notes/migrations/__init__.py": None,
             "notes/migrations/env.py": "app-migration-env",
             "notes/migrations/versions/__init__.py": None,
             "notes/migrations/versions/0001_notes.py": "app-migration",
             "tests/conftest.py": "app-conftest", "tests/test_notes.py": "app-tests"}
    tree = block_tree()
    for name, marker in files.items():
        assert name.rsplit("/", 1)[-1] in tree, name  # the tree names every file
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(block(marker) if marker else "")
    [install, sync, serve] = _commands(block("app-install"))
    assert shlex.split(install) == ["pip", "install", "./notes"]
    site = tmp_path / "site"
    built = subprocess.run(
        [os.path.join(processes.BIN_DIR, "pip"), "install", "--quiet", "--no-deps",
         "--no-build-isolation", "--target", str(site), "./notes"],
        cwd=str(source.parent), capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    tests = tmp_path / "notes-tests"
    shutil.copytree(source / "tests", tests)
    shutil.rmtree(tmp_path / "src")  # what runs below is what was installed
    assert (site / "notes" / "migrations" / "versions" / "0001_notes.py").is_file()
    env = app_environment(site)
    env["HOME"] = str(tmp_path)

    tested = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p",
         "no:xdist", str(tests)],
        cwd=str(tests), capture_output=True, text=True, timeout=300,
        env=dict(env, NOVALET_REQUIRE_SERVICES="1"))
    assert tested.returncode == 0, tested.stdout[-4000:] + tested.stderr[-2000:]
    assert "4 passed" in tested.stdout, tested.stdout[-2000:]

    topic = "conductor-%s" % os.urandom(4).hex()
    processes.write_config(str(tmp_path / "novalet.conf"), {
        "DEFAULT": {"transport_url": rabbit_vhost.url, "host": "notes-conductor"},
        "database": {"connection": "sqlite:///%s" % (tmp_path / "novalet.sqlite")},
        "conductor": {"workers": 1, "topic": topic}})
    argv = shlex.split(sync)
    synced = subprocess.run([os.path.join(processes.BIN_DIR, argv[0]), *argv[1:]],
                            cwd=str(tmp_path), capture_output=True, text=True,
                            timeout=120, env=env)
    assert synced.returncode == 0, synced.stderr
    assert "App notes is at notes_0001" in synced.stdout
    argv = shlex.split(serve)
    conductor = processes.ServiceProcess(argv[0], str(tmp_path / argv[2]),
                                         str(tmp_path / "conductor.log"), env=env)
    try:
        conductor.wait_for_log("novalet-conductor started on notes-conductor", timeout=90)
        assert "notes (release 1)" in conductor.log()
        client_config = processes.write_config(str(tmp_path / "client.conf"), {
            "DEFAULT": {"transport_url": rabbit_vhost.url},
            "conductor": {"topic": topic},
            "objects": {"indirection": "rpc"},
            "database": {"connection": "postgresql://nobody@127.0.0.1:1/none"}})
        script = tmp_path / "client.py"
        script.write_text(block("app-client"))
        ran = subprocess.run([sys.executable, str(script), client_config],
                             cwd=str(tmp_path), capture_output=True, text=True,
                             timeout=120, env=env)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == [
            "['hi'] 1", "refused: {'limit': 255, 'length': 300}"], ran.stdout
        assert not conductor.errors(), conductor.errors()
    finally:
        conductor.stop()


def block_tree() -> str:
    """The tutorial's tree of files (the unmarked block that lists them)."""
    [tree] = {text for _path, marker, lang, text in _blocks()
              if marker is None and lang in ("", "text", "none")
              and "notes/migrations/env.py" in text}
    return tree
