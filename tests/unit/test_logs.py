"""novalet.logs: escaping, the library flood filter, and the URL maskers
that ask it which query arguments are secret."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest

from novalet import logs, rpc
from novalet.db import engine


def test_escape_leaves_one_line() -> None:
    text = "a\nb\r\x1b[2K\x00\x85\u2028\tz"
    escaped = logs.escape(text)
    assert escaped == "a\\nb\\r\\x1b[2K\\x00\\x85\\u2028\\tz"
    assert escaped.isprintable()
    assert logs.escape("plain text, é") == "plain text, é"
    assert logs.escape_value(["x\ny", 5, None]) == ["x\\ny", 5, None]


def _handler(*filters: logging.Filter) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    for f in filters:
        handler.addFilter(f)
    logger = logging.getLogger("novalet.test_logs")
    logger.handlers[:] = [handler]
    logger.propagate = False
    return logger, stream


def test_escaping_filter_escapes_the_substituted_message() -> None:
    logger, stream = _handler(logs.EscapingFilter())
    logger.warning("Refused %s from %s", "save\nFORGED line", {"x": "\r"},
                   extra={"instance": "[instance: a\nb] "})
    assert stream.getvalue().count("\n") == 1
    assert "save\\nFORGED line" in stream.getvalue()


def _raise_forged() -> None:
    try:
        raise RuntimeError("inner\r\nFORGED inner line")
    except RuntimeError as e:
        raise ValueError("bad name 'save\nFORGED line'") from e


def test_escaping_filter_escapes_the_text_of_a_traceback() -> None:
    logger, stream = _handler(logs.EscapingFilter())
    try:
        _raise_forged()
    except ValueError:
        logger.exception("request failed")
    lines = stream.getvalue().splitlines()
    assert not [line for line in lines if line.startswith("FORGED")]
    # The same traceback otherwise: the frames, the chain, the class names.
    assert "ValueError: bad name 'save\\nFORGED line'" in lines
    assert "RuntimeError: inner\\r\\nFORGED inner line" in lines
    assert any("direct cause of the following exception" in line for line in lines)
    assert sum(line.strip().startswith("File ") for line in lines) >= 2
    assert any("in _raise_forged" in line for line in lines)


def test_escaped_exc_info_keeps_a_clean_exception_as_it_is() -> None:
    try:
        raise ValueError("one line")
    except ValueError as e:
        exc_info = (type(e), e, e.__traceback__)
    assert logs.escaped_exc_info(exc_info) is exc_info
    assert logs.escaped_exc_info(None) is None


def test_escaped_traceback_through_oslo_log_formatter(conf: Any) -> None:
    """The real formatter (oslo.log's ContextFormatter, as every novalet
    program logs): each traceback line keeps its exception prefix, and none
    starts with the caller's text."""
    from oslo_log import formatters

    from novalet import conf as novalet_conf

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatters.ContextFormatter(config=novalet_conf.CONF))
    handler.addFilter(logs.EscapingFilter())
    logger = logging.getLogger("novalet.test_logs.oslo")
    logger.handlers[:] = [handler]
    logger.propagate = False
    try:
        _raise_forged()
    except ValueError:
        logger.exception("request failed")
    lines = stream.getvalue().splitlines()
    assert len(lines) > 5
    assert not [line for line in lines if "FORGED" in line.split(" ", 1)[0]]
    assert all(line.split(" ", 1)[0][:4].isdigit() for line in lines), lines
    assert any("ValueError: bad name 'save\\nFORGED line'" in line for line in lines)


def test_library_flood_filter_one_line_per_kind_per_interval() -> None:
    now = [100.0]
    flood = logs.LibraryFloodFilter(interval=10, clock=lambda: now[0])
    logger, stream = _handler(flood)
    library = logging.getLogger("oslo.messaging._drivers.impl_rabbit")
    library.handlers[:] = logger.handlers
    library.propagate = False
    try:
        for i in range(300):
            try:
                raise ValueError("bad body %d" % i)
            except ValueError:
                library.exception("Failed to process message ... skipping it.")
        library.warning("Another kind")
        logger.warning("novalet's own, not limited")
        logger.warning("novalet's own, not limited")
        lines = stream.getvalue().splitlines()
        assert lines == [
            "oslo.messaging._drivers.impl_rabbit Failed to process message ... "
            "skipping it. (ValueError: bad body 0; traceback not logged)",
            "oslo.messaging._drivers.impl_rabbit Another kind",
            "novalet.test_logs novalet's own, not limited",
            "novalet.test_logs novalet's own, not limited"]
        now[0] += 10
        library.error("Failed to process message ... skipping it.")
        assert stream.getvalue().splitlines()[-1].endswith(
            "skipping it. (299 more like it in the last 10 s not logged)")
    finally:
        library.handlers[:] = []
        library.propagate = True


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u@h/db?password=s3cret", "postgresql://u@h/db?password=***"),
    ("postgresql+psycopg2://u:s3cret@h:5432/db?sslmode=require&pass=s3cret",
     "postgresql+psycopg2://u:***@h:5432/db?pass=***&sslmode=require"),
    ("mysql+pymysql://u@h/db?passwd=s3cret&charset=utf8",
     "mysql+pymysql://u@h/db?charset=utf8&passwd=***"),
    ("sqlite:////var/lib/novalet/novalet.sqlite",
     "sqlite:////var/lib/novalet/novalet.sqlite"),
    ("not a url", "<unparsable database URL>"),
])
def test_database_url_masked(url: str, shown: str) -> None:
    assert engine.masked_url(url) == shown


@pytest.mark.parametrize("url, shown", [
    ("rabbit://u:s3cret@h1:5672,u:s3cret@[fd00::2]:5673/v?password=s3cret&ssl=1",
     "rabbit://u:***@h1:5672,u:***@[fd00::2]:5673/v?password=***&ssl=1"),
    ("rabbit://h/", "rabbit://h/"),
    ("fake://", "fake:///"),
])
def test_transport_url_masked(conf: Any, url: str, shown: str) -> None:
    conf("transport_url", url)
    from novalet import conf as novalet_conf

    assert rpc.masked_transport_url(novalet_conf.CONF) == shown
