"""How the services write their logs: text lines for people, or JSON lines for a collector
(``GEO_LOG_FORMAT``), each carrying the id of the request it was written for.

One handler on the root logger writes every line; its :class:`RequestIdFilter` puts the
current request's id (:data:`geo_common.request_context.current_request_id`) on each record,
from whichever logger (the services', aiohttp's, asyncpg's), so a line written while a request
or a WebSocket session is handled can be found from the ``X-Request-Id`` its client saw.
Its :class:`ParserErrorFilter` keeps the bytes of a malformed request (a query string with a
position or a token, say) out of the line aiohttp writes when it cannot parse one.
The JSON lines are encoded with orjson, which the services already use: one object per line
with ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``, ``request_id`` when there is
one, the fields a call passed in ``extra`` (the access log's ``method``, ``route``, ``status``,
``duration_ms``), and ``exception`` with the traceback.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
from typing import Any, TextIO

import orjson
from aiohttp.http import HttpProcessingError

from geo_common.request_context import current_request_id

#: The values of ``GEO_LOG_FORMAT``.
LOG_FORMATS = ("text", "json")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# What every record has; anything else on a record came from a call's ``extra``.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "request_id",
    "taskName",
}


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on each record as ``request_id`` (``""`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id.get()
        return True


#: A parser error's description, as llhttp words it ("Invalid char in url query"): no bytes of the request.
_PLAIN_DESCRIPTION = re.compile(r"[A-Za-z][A-Za-z0-9 ]{0,79}")


class ParserErrorFilter(logging.Filter):
    """Replaces an HTTP parser error on a record by its kind, without the request's bytes.

    aiohttp logs "Error handling request" with the parser's exception, whose message quotes a
    fragment of what it could not parse: for a malformed request line, the path and query
    string (coordinates, a token). The record keeps its message and gains the exception's class
    and, when it is plain words, the text before its first colon; the traceback is dropped (it
    shows aiohttp's frames only, and its last line is the message).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.msg = f"{record.getMessage()}: {parser_error_kind(exc)}"
            record.args = None
            record.exc_info = record.exc_text = None
        return True


def parser_error_kind(exc: HttpProcessingError) -> str:
    """``"InvalidURLError (400, Invalid char in url query)"``: what went wrong, never the bytes."""
    described = exc.message.partition(":")[0].strip()
    detail = f", {described}" if _PLAIN_DESCRIPTION.fullmatch(described) else ""
    return f"{type(exc).__name__} ({exc.code}{detail})"


class TextFormatter(logging.Formatter):
    """``time LEVEL logger: message [request <id>]``, then the traceback, if any."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        line = super().formatMessage(record)
        request_id = getattr(record, "request_id", "")
        return f"{line} [request {request_id}]" if request_id else line


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (a traceback is a string field, not more lines)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", "")
        if request_id:
            entry["request_id"] = request_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # default=str: an ``extra`` value orjson cannot encode is shown, never a lost line.
        return orjson.dumps(entry, default=str).decode()


def log_handler(stream: TextIO, log_format: str) -> logging.Handler:
    """A handler writing to ``stream`` in ``log_format`` (``text`` or ``json``), with request ids
    and without the bytes of requests aiohttp could not parse.

    Raises:
        ValueError: ``log_format`` is not one of :data:`LOG_FORMATS`.
    """
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    handler.addFilter(ParserErrorFilter())
    return handler


def configure_logging(level: str, log_format: str, stream: TextIO | None = None) -> None:
    """Send every log line of the process through one handler on the root logger.

    Args:
        level: ``debug``, ``info``, ``warning`` or ``error`` (``GEO_LOG_LEVEL``).
        log_format: ``text`` or ``json`` (``GEO_LOG_FORMAT``).
        stream: where the lines go (default standard error).
    """
    logging.basicConfig(level=level.upper(), handlers=[log_handler(stream or sys.stderr, log_format)], force=True)
