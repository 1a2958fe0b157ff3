"""What a log line may carry: secrets masked, caller text escaped, and
another library's flood of one kind of error cut to one line per interval.

* ``is_secret_name`` says which URL query arguments hold a secret
  (``password``, ``pass``, ``passwd``, ``sslpassword``, ``token``...): the
  database and transport URL maskers (``novalet.db.engine.masked_url``,
  ``novalet.rpc.masked_transport_url``) both ask it.
* ``escape`` turns control characters (newlines included) into visible
  escapes; ``EscapingFilter`` applies it to every record's message,
  ``instance`` and the text of the exceptions in its traceback (the
  request context's fields are escaped where they become log values:
  ``RequestContext.get_logging_values``), so text a caller sends can never
  start a line of its own.
* ``LibraryFloodFilter`` lets one record per logger, level and message
  template through every ``interval`` seconds from the libraries below
  novalet (``oslo.messaging``), without its traceback, and counts the
  rest into the next one it lets through.

``install`` puts both on the root logger's handlers (``novalet.cmd.common
.setup`` calls it after oslo.log's setup).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

#: Query arguments whose value is a secret, by name (case-insensitive).
_SECRET_NAME = re.compile(r"pass|secret|token|credential|auth_key|api_key",
                          re.IGNORECASE)

#: C0 and C1 controls, DEL and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]")

#: What oslo.messaging's loggers may say of one kind per interval.
LIBRARY_LOGGERS = ("oslo.messaging", "oslo_messaging")

#: Seconds between two records of one kind from a library logger.
FLOOD_INTERVAL = 10.0


def is_secret_name(name: str) -> bool:
    """Whether a URL query argument called ``name`` carries a secret."""
    return bool(_SECRET_NAME.search(name))


def _escape_char(match: re.Match[str]) -> str:
    char = match.group()
    code = ord(char)
    return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(
        char, "\\x%02x" % code if code < 0x100 else "\\u%04x" % code)


def escape(text: str) -> str:
    """``text`` with every control character written as an escape
    (``\\n``, ``\\x1b``, ``\\u2028``): one line, whatever it held."""
    return _CONTROL.sub(_escape_char, text)


def escape_value(value: Any) -> Any:
    """``escape`` for a string, the strings of a list; anything else as it
    is."""
    if isinstance(value, str):
        return escape(value)
    if isinstance(value, (list, tuple)):
        return type(value)(escape_value(item) for item in value)
    return value


def _chain(error: BaseException) -> list[BaseException]:
    """``error`` and the exceptions it was raised from or during, as a
    traceback prints them (each once)."""
    seen: list[BaseException] = []
    pending: BaseException | None = error
    while pending is not None and all(pending is not e for e in seen):
        seen.append(pending)
        pending = pending.__cause__ or (
            None if pending.__suppress_context__ else pending.__context__)
    return seen


def _text_of(error: BaseException) -> str:
    try:
        return str(error)
    except Exception:  # the formatter reports an unprintable one itself
        return ""


class _Escaped(Exception):
    """Stands in a log record for an exception whose text holds control
    characters: same class name and module, the text escaped, the same
    traceback and chain."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._text = text

    def __str__(self) -> str:
        return self._text


def _stand_in(error: BaseException,
              made: dict[int, BaseException]) -> BaseException:
    if id(error) in made:
        return made[id(error)]
    cls = type(error)
    stand_cls = type(cls.__name__, (_Escaped,), {
        "__module__": cls.__module__, "__qualname__": cls.__qualname__})
    stand = stand_cls(escape(_text_of(error)))
    made[id(error)] = stand
    stand.__traceback__ = error.__traceback__
    stand.__suppress_context__ = error.__suppress_context__
    if error.__cause__ is not None:
        stand.__cause__ = _stand_in(error.__cause__, made)
    if error.__context__ is not None:
        stand.__context__ = _stand_in(error.__context__, made)
    return stand


def escaped_exc_info(exc_info: Any) -> Any:
    """``exc_info`` as a log record holds it, or, when the text of the
    exception or of one in its chain holds a control character, the same
    with stand-ins whose text is escaped: a formatter prints the same
    traceback, frames and chain, and the caller's text stays on one line."""
    error = exc_info[1] if isinstance(exc_info, tuple) else None
    if error is None or not any(_CONTROL.search(_text_of(e))
                                for e in _chain(error)):
        return exc_info
    stand = _stand_in(error, {})
    return (type(stand), stand, exc_info[2])


class EscapingFilter(logging.Filter):
    """A handler filter: the record's message (its arguments substituted),
    ``instance`` and the text of the exceptions of its traceback escaped to
    one line each (``escaped_exc_info``; the traceback's own lines stay, each
    with the formatter's exception prefix)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # the handler reports a bad format itself
            return True
        if _CONTROL.search(message):
            record.msg, record.args = escape(message), None
        instance = record.__dict__.get("instance")
        if isinstance(instance, str) and _CONTROL.search(instance):
            record.instance = escape(instance)
        if record.exc_info:
            exc_info = escaped_exc_info(record.exc_info)
            if exc_info is not record.exc_info:
                record.exc_info, record.exc_text = exc_info, None
        return True


class Throttle:
    """Per kind, one event per ``interval`` seconds: ``admit(kind)`` says
    whether this one may be logged and how many of the kind were not since
    (None: not this one). At most ``bound`` kinds are remembered; past it,
    the others are forgotten (kinds are message templates: few)."""

    def __init__(self, interval: float, bound: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._bound = bound
        self._lock = threading.Lock()
        self._last: dict[Any, float] = {}
        self._dropped: dict[Any, int] = {}

    def admit(self, kind: Any) -> int | None:
        now = self.clock()
        with self._lock:
            if len(self._last) > self._bound:
                self._last.clear()
            last = self._last.get(kind)
            if last is not None and now - last < self.interval:
                self._dropped[kind] = self._dropped.get(kind, 0) + 1
                return None
            self._last[kind] = now
            return self._dropped.pop(kind, 0)


class LibraryFloodFilter(logging.Filter):
    """A handler filter for the library loggers (``LIBRARY_LOGGERS``): the
    first record of a kind (logger, level, message template) passes without
    its traceback; later ones of that kind within ``interval`` seconds are
    counted and dropped, and the next that passes says how many were.
    Records of other loggers pass untouched."""

    def __init__(self, interval: float = FLOOD_INTERVAL,
                 prefixes: tuple[str, ...] = LIBRARY_LOGGERS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.interval = interval
        self._prefixes = prefixes
        self._throttle = Throttle(interval, 1000, clock)

    def _is_library(self, name: str) -> bool:
        return any(name == p or name.startswith(p + ".")
                   for p in self._prefixes)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.WARNING or not self._is_library(record.name):
            return True
        dropped = self._throttle.admit((record.name, record.levelno, str(record.msg)))
        if dropped is None:
            return False
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = "%s (%s: %s; traceback not logged)" % (
                record.getMessage(), type(error).__name__,
                str(error).splitlines()[0] if str(error) else "")
            record.args = None
        record.exc_info = None
        record.exc_text = None
        if dropped:
            record.msg = "%s (%d more like it in the last %g s not logged)" % (
                record.getMessage(), dropped, self.interval)
            record.args = None
        return True


def install(logger: logging.Logger | None = None) -> None:
    """Put ``LibraryFloodFilter`` and then ``EscapingFilter`` on every
    handler of ``logger`` (the root logger), once each."""
    logger = logger if logger is not None else logging.getLogger()
    for handler in logger.handlers:
        kinds = {type(f) for f in handler.filters}
        if LibraryFloodFilter not in kinds:
            handler.addFilter(LibraryFloodFilter())
        if EscapingFilter not in kinds:
            handler.addFilter(EscapingFilter())


__all__ = ["EscapingFilter", "LibraryFloodFilter", "Throttle", "escape",
           "escape_value", "escaped_exc_info", "install", "is_secret_name"]
