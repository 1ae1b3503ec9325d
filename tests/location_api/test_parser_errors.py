"""A request aiohttp cannot parse, sent over a raw socket to the real API: its bytes stay out of the log.

aiohttp logs "Error handling request" with the parser's exception, whose message quotes what it
could not parse; geo_common.logs.ParserErrorFilter keeps the error's kind and drops the bytes.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from geo_common.settings import Settings
from tests.json_logs import json_logs

from .conftest import TIMEOUT_FACTOR, Api, stop_api, throwaway_database

#: Values no other test sends: found in a log line, they leaked.
LAT, TOKEN = "59.913917", "eyJ0b2tlbi1pbi1hLWJhZC1saW5l"
QUERY = f"/v1/search/nearby?lat={LAT}&lon=10.752243&token={TOKEN}".encode()


@pytest.fixture(scope="module")
async def api(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    async with throwaway_database(settings, "parser", places=5) as small:
        started = await serve(replace(small, api_indexes=("geohash",)))
        yield started
        await stop_api(started)


async def answer_to(api: Api, raw: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(api.server.host, api.server.port)
    try:
        writer.write(raw)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 10 * TIMEOUT_FACTOR)
    finally:
        writer.close()
        await writer.wait_closed()


@pytest.mark.parametrize(
    ("raw", "kind"),
    [
        (b"GET " + QUERY + b" HTTP/1.1 trailing\r\nHost: x\r\n\r\n", "BadStatusLine (400, Bad status line)"),
        (b"GET " + QUERY + b"\x01 HTTP/1.1\r\nHost: x\r\n\r\n", "InvalidURLError (400, Invalid char in url query)"),
        (b"GET " + QUERY + b" HTTP/9.1\r\nHost: x\r\n\r\n", "BadStatusLine (400, Bad status line)"),
    ],
    ids=["extra-token", "control-char", "bad-version"],
)
async def test_a_malformed_request_line_is_logged_by_kind_without_its_bytes(api: Api, raw: bytes, kind: str) -> None:
    with json_logs() as lines:
        answer = await answer_to(api, raw)
    assert answer.startswith(b"HTTP/1.0 400 ") or answer.startswith(b"HTTP/1.1 400 "), answer[:80]
    logged = lines()
    (error,) = [line for line in logged if line["message"].startswith("Error handling request")]
    assert error["logger"] == "aiohttp.server" and error["message"].endswith(f": {kind}")
    assert "exception" not in error
    text = "\n".join(json.dumps(line) for line in logged)
    assert LAT not in text and TOKEN not in text and "lat=" not in text and "token=" not in text


async def test_a_url_over_aiohttps_line_limit_is_answered_by_the_api(api: Api) -> None:
    """A request line of 8,190 to 32,768 bytes reaches the API (geo_common.serve.RUNNER_OPTIONS):
    its fault is named in a problem document, not refused by the parser in plain text."""
    target = b"/v1/search/nearby?latitude=48.85&longitude=2.35&radius_m=" + b"9" * 9000
    answer = await answer_to(api, b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"application/problem+json" in head, head
    assert json.loads(body)["errors"][0]["field"] == "radius_m"
