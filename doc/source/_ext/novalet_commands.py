"""``.. novalet-program:: NAME``: a program's command reference, from the
program's own argument parser.

The program's whole ``--help`` comes from running it (its console script's
``main(["--help"])`` in a child process: oslo.config builds that parser,
with the logging options oslo.log adds). Each sub-command's help comes from
the parser the program itself builds: its ``CommandOpt`` (``novalet.conf``)
puts the sub-commands on an argparse parser, as it does when the program
parses its command line, and every command and action found there is
rendered with its own ``format_help()``. A program that does not run, or a
sub-command without help, is a build error (``sphinx-build -W``).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from typing import Any

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

LOG = logging.getLogger(__name__)

#: The width the help is wrapped at (argparse reads COLUMNS).
WIDTH = "79"


def _manage_commands() -> Any:
    from novalet.cmd import manage

    return manage._command_opt


def _status_commands() -> Any:
    from novalet import conf
    from novalet.cmd import status

    return status._command_opt(status.UpgradeChecks(conf.CONF))


#: Programs with sub-commands: where their ``CommandOpt`` comes from.
COMMANDS = {"novalet-manage": _manage_commands,
            "novalet-status": _status_commands}


def console_script(name: str) -> str:
    """``module:function`` of the console script ``name`` (setup.cfg)."""
    [entry] = [e for e in metadata.entry_points(group="console_scripts")
               if e.name == name]
    return entry.value


def program_help(name: str, *args: str) -> str:
    """What ``NAME ARGS --help`` prints, run through its console script."""
    module, function = console_script(name).split(":")
    code = ("import sys\nfrom %s import %s as main\n"
            "sys.exit(main(sys.argv[1:]))\n" % (module, function))
    env = dict(os.environ, COLUMNS=WIDTH)
    result = subprocess.run([sys.executable, "-c", code, *args, "--help"],
                            capture_output=True, text=True, timeout=120,
                            env=env)
    if result.returncode != 0:
        raise RuntimeError("%s %s --help exited %d: %s" % (
            name, " ".join(args), result.returncode, result.stderr[-2000:]))
    return result.stdout + result.stderr


def sub_commands(name: str) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
    """Every (path, parser) under the program's sub-command option, depth
    first: ``(["db"], ...)``, ``(["db", "sync"], ...)``, ..."""
    if name not in COMMANDS:
        return
    os.environ["COLUMNS"] = WIDTH
    parser = argparse.ArgumentParser(prog=name)
    COMMANDS[name]()._add_to_cli(parser)

    def walk(parser: argparse.ArgumentParser, path: list[str]
             ) -> Iterator[tuple[list[str], argparse.ArgumentParser]]:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice, child in action.choices.items():
                    yield path + [choice], child
                    yield from walk(child, path + [choice])

    yield from walk(parser, [])


class ProgramDirective(SphinxDirective):
    """``.. novalet-program:: novalet-manage``"""

    required_arguments = 1
    has_content = False
    option_spec = {"no-sub-commands": directives.flag}

    def run(self) -> list[nodes.Node]:
        name = self.arguments[0]
        try:
            text = program_help(name)
        except (RuntimeError, ValueError, subprocess.TimeoutExpired) as e:
            raise self.error("novalet-program %s: %s" % (name, e))
        result: list[nodes.Node] = [nodes.literal_block(text, text)]
        if "no-sub-commands" in self.options:
            return result
        for path, parser in sub_commands(name):
            title = " ".join([name, *path])
            section = nodes.section(
                ids=[nodes.make_id(title)], names=[nodes.fully_normalize_name(title)])
            section += nodes.title(title, title)
            usage = parser.format_help()
            section += nodes.literal_block(usage, usage)
            self.state.document.note_implicit_target(section)
            result.append(section)
        return result


def setup(app: Any) -> dict[str, Any]:
    app.add_directive("novalet-program", ProgramDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
