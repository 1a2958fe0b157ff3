"""A novalet command's ``main()`` run inside the test process."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Callable, Iterator, Sequence

import pytest

from novalet import conf as novalet_conf


@contextlib.contextmanager
def restored_command_state() -> Iterator[None]:
    """``main()`` sets up logging (root handlers, levels, excepthook) and
    leaves CONF unparsed: put all of it back as the session had it."""
    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    levels = {name: lg.level for name, lg in logging.root.manager.loggerDict.items()
              if isinstance(lg, logging.Logger)}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    sys.excepthook = hook
    for name, lg in logging.root.manager.loggerDict.items():
        if isinstance(lg, logging.Logger):
            lg.setLevel(levels.get(name, logging.NOTSET))
    novalet_conf.parse_args([], default_config_files=[])


class InProcessCommand:
    """``main(["--config-file", config, *ARGS])``: (exit code, stdout, stderr)."""

    def __init__(self, main: Callable[[Sequence[str]], int],
                 capsys: pytest.CaptureFixture[str], config: str) -> None:
        self.main = main
        self.capsys = capsys
        self.config = config

    def __call__(self, *argv: str) -> tuple[int, str, str]:
        self.capsys.readouterr()
        code = self.main(["--config-file", self.config, *argv])
        out, err = self.capsys.readouterr()
        return code, out, err
