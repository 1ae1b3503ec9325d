"""Log lines (text and JSON), request ids and the access log sampler, against fixed values."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from aiohttp.http_exceptions import BadStatusLine, LineTooLong

from geo_common.logs import JsonFormatter, TextFormatter, log_handler
from geo_common.request_context import (
    MAX_REQUEST_ID_CHARS,
    AccessLog,
    accept_request_id,
    access_log_for,
    begin_request,
    current_request_id,
    new_request_id,
)
from geo_common.settings import Settings, SettingsError

OWN_ID = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("geo.test", logging.WARNING, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    made.created = 1_767_225_600.25  # 2026-01-01T00:00:00.250Z
    return made


def test_a_json_line_holds_the_record_its_request_and_its_extra_fields() -> None:
    line = JsonFormatter().format(record("%d rows", 3, request_id="r-1", route="/v1/x/{id}", status=200))
    assert json.loads(line) == {
        "time": "2026-01-01T00:00:00.250+00:00",
        "level": "warning",
        "logger": "geo.test",
        "message": "3 rows",
        "request_id": "r-1",
        "route": "/v1/x/{id}",
        "status": 200,
    }


def test_a_traceback_stays_on_the_one_json_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError as exc:
        failed = record("failed", exc_info=(type(exc), exc, exc.__traceback__))
    line = JsonFormatter().format(failed)
    assert "\n" not in line
    parsed = json.loads(line)
    assert "request_id" not in parsed and parsed["exception"].endswith("ValueError: boom")


def test_a_value_orjson_cannot_encode_is_shown_as_text() -> None:
    assert json.loads(JsonFormatter().format(record("x", thing={1, 2})))["thing"] in ("{1, 2}", "{2, 1}")


def test_a_text_line_names_its_request_only_inside_one() -> None:
    formatter = TextFormatter()
    assert formatter.format(record("plain")).endswith("WARNING geo.test: plain")
    assert formatter.format(record("inside", request_id="r-2")).endswith("WARNING geo.test: inside [request r-2]")


def test_the_handler_puts_the_current_request_on_every_line() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("geo.test.handler")
    logger.addHandler(log_handler(stream, "json"))
    logger.propagate = False
    token = current_request_id.set("r-3")
    try:
        logger.warning("during")
    finally:
        current_request_id.reset(token)
    logger.warning("after")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["message"], line.get("request_id")) for line in lines] == [("during", "r-3"), ("after", None)]


def test_an_unknown_log_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        log_handler(io.StringIO(), "xml")


@pytest.mark.parametrize("safe", ["a", "0f3c9d2e-4b1a-4c8e-9f00-123456789abc", "A.b_c:d-e", "x" * MAX_REQUEST_ID_CHARS])
def test_a_safe_request_id_is_kept(safe: str) -> None:
    assert accept_request_id(safe) == safe


@pytest.mark.parametrize(
    "unsafe", [None, "", "x" * (MAX_REQUEST_ID_CHARS + 1), "a b", "a\nb", "a\r\nb", "a;b", "a/b", "é", "a\x00", "%0a"]
)
def test_an_unsafe_request_id_is_replaced_by_a_new_one(unsafe: str | None) -> None:
    assert OWN_ID.fullmatch(accept_request_id(unsafe))


def test_new_ids_differ_and_begin_request_makes_one_current() -> None:
    assert len({new_request_id() for _ in range(1000)}) == 1000
    token = current_request_id.set("")
    try:
        assert begin_request("edge-1") == "edge-1" and current_request_id.get() == "edge-1"
    finally:
        current_request_id.reset(token)


def test_the_access_log_samples_its_share(caplog: pytest.LogCaptureFixture) -> None:
    assert access_log_for(0.0) is None
    every, none = AccessLog(1.0), AccessLog(0.25)
    none._random = lambda: 0.25  # noqa: SLF001 - the sampler's draw, fixed: 0.25 is outside a 25% sample
    with caplog.at_level(logging.INFO, logger="geo.access"):
        every.record("GET", "/v1/businesses/{id}", 404, 0.0012345)
        none.record("GET", "/v1/businesses/{id}", 200, 0.001)
    (line,) = caplog.records
    assert line.getMessage() == "GET /v1/businesses/{id} 404 1.234 ms"
    assert (line.method, line.route, line.status, line.duration_ms) == ("GET", "/v1/businesses/{id}", 404, 1.234)  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        AccessLog(1.5)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GEO_LOG_FORMAT", "xml"),
        ("GEO_ACCESS_LOG_SAMPLE", "1.5"),
        ("GEO_ACCESS_LOG_SAMPLE", "-0.1"),
        ("GEO_ACCESS_LOG_SAMPLE", "half"),
    ],
)
def test_bad_log_settings_are_refused_naming_the_variable(variable: str, value: str) -> None:
    with pytest.raises(SettingsError, match=variable):
        Settings.from_env({variable: value})


def test_log_settings_are_parsed() -> None:
    settings = Settings.from_env({"GEO_LOG_FORMAT": " JSON ", "GEO_ACCESS_LOG_SAMPLE": "0.01"})
    assert (settings.log_format, settings.access_log_sample) == ("json", 0.01)
    assert (Settings().log_format, Settings().access_log_sample) == ("text", 0.0)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        # aiohttp's pure-Python parser quotes the request line with no colon before it.
        (BadStatusLine("GET /x?lat=59.91&token=t0k HTTP/1.1 x"), "BadStatusLine (400)"),
        (LineTooLong(b"/x?lat=59.91&token=t0k", 8), "LineTooLong (400, Got more than 8 bytes when reading)"),
    ],
)
def test_a_parser_error_is_logged_by_kind_without_the_bytes_it_quotes(exc: Exception, kind: str) -> None:
    stream = io.StringIO()
    failed = record("Error handling request from %s", "127.0.0.1")
    failed.exc_info = (type(exc), exc, None)
    log_handler(stream, "text").handle(failed)
    assert stream.getvalue().endswith(f" geo.test: Error handling request from 127.0.0.1: {kind}\n")
    assert "59.91" not in stream.getvalue() and "t0k" not in stream.getvalue()
