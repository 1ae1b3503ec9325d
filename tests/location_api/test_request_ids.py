"""Request ids, JSON log lines and the sampled access log, on the real API over a small database.

Every answer carries its request's id in ``X-Request-Id`` (the caller's when it is a safe one),
every problem document names it in ``instance``, and every line logged while handling the
request carries it; no line holds a position or a query string, a 500's included.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from geo_common.request_context import MAX_REQUEST_ID_CHARS
from geo_common.settings import Settings
from tests.json_logs import json_logs

from .conftest import Api, eventually, stop_api, throwaway_database

SEARCH = "/v1/search/nearby"
#: A position with digits no other value of these tests has: found in a log line, it leaked.
WHERE = {"latitude": "59.913917", "longitude": "10.752243"}
LEAKS = ("59.913917", "10.752243", "latitude=", "longitude=")
#: What the API makes of an id it refuses: a process prefix and a serial number.
OWN_ID = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")


@pytest.fixture(scope="module")
async def apis(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[dict[str, Api]]:
    """An instance that logs no access line, and one that logs every request's."""
    async with throwaway_database(settings, "logs", places=50) as small:
        started = {
            name: await serve(replace(small, api_indexes=("geohash",), access_log_sample=sample))
            for name, sample in (("quiet", 0.0), ("every", 1.0))
        }
        yield started
        for api in started.values():
            await stop_api(api)


def of_request(lines: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [line for line in lines if line.get("request_id") == request_id]


def assert_no_leaks(lines: list[dict[str, Any]]) -> None:
    for line in lines:
        text = json.dumps(line)
        assert not any(leak in text for leak in LEAKS), line


async def test_a_safe_request_id_is_answered_and_on_every_line_of_its_request(apis: dict[str, Api]) -> None:
    request_id = "client-42.a_b:c"
    with json_logs() as lines:
        async with apis["every"].http.get(SEARCH, params=WHERE, headers={"X-Request-Id": request_id}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Request-Id"] == request_id
    (access,) = [line for line in of_request(lines(), request_id) if line["logger"] == "geo.access"]
    assert (access["method"], access["route"], access["status"]) == ("GET", SEARCH, 200)
    assert access["level"] == "info" and access["duration_ms"] >= 0
    assert_no_leaks(lines())


async def test_without_an_id_each_request_gets_a_new_one(apis: dict[str, Api]) -> None:
    seen = set()
    for _ in range(2):
        async with apis["quiet"].http.get("/healthz") as resp:
            assert resp.status == 200
            seen.add(resp.headers["X-Request-Id"])
    assert len(seen) == 2 and all(OWN_ID.fullmatch(i) for i in seen)


@pytest.mark.parametrize(
    "raw",
    [
        b"a" * (MAX_REQUEST_ID_CHARS + 1),
        b"",
        b"two words",
        b"semi;colon",
        b"<script>alert(1)</script>",
        "\u00fcn\u00efcode".encode(),
        b"tab\there",
        b"%0d%0aSet-Cookie:x",
        b"slash/../path",
        # obs-fold: a value continued on the next line (RFC 9112 section 5.2)
        b"folded\r\n injected",
    ],
    ids=["too-long", "empty", "space", "semicolon", "markup", "non-ascii", "tab", "encoded-newline", "slash", "fold"],
)
async def test_an_unsafe_request_id_is_replaced(apis: dict[str, Api], raw: bytes) -> None:
    port = apis["every"].server.port
    assert port is not None
    with json_logs() as lines:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: " + raw + b"\r\nConnection: close\r\n\r\n")
            head = (await reader.read()).partition(b"\r\n\r\n")[0].decode("latin-1")
        finally:
            writer.close()
    status_line, *header_lines = head.split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    if status_line.split(" ")[1] == "400":
        # Refused by aiohttp's parser before any handler: nothing of it is echoed.
        assert raw.startswith(b"folded") and "X-Request-Id" not in headers
        return
    assert status_line == "HTTP/1.1 200 OK"
    assert OWN_ID.fullmatch(headers["X-Request-Id"]), headers
    access = [line for line in lines() if line["logger"] == "geo.access"]
    assert [line["request_id"] for line in access] == [headers["X-Request-Id"]]


async def test_the_longest_safe_id_is_kept(apis: dict[str, Api]) -> None:
    longest = "A" * MAX_REQUEST_ID_CHARS
    async with apis["quiet"].http.get("/healthz", headers={"X-Request-Id": longest}) as resp:
        assert resp.headers["X-Request-Id"] == longest


@pytest.mark.parametrize(
    ("method", "path", "params", "status"),
    [
        ("GET", SEARCH, {"latitude": "north", "longitude": "10.75"}, 400),
        ("GET", "/nowhere", {}, 404),
        ("DELETE", "/healthz", {}, 405),
        ("GET", "/docs/nothing.js", {}, 404),
    ],
)
async def test_problem_documents_name_their_request(
    apis: dict[str, Api], method: str, path: str, params: dict[str, str], status: int
) -> None:
    async with apis["quiet"].http.request(method, path, params=params) as resp:
        assert resp.status == status and resp.content_type == "application/problem+json"
        body = await resp.json()
        assert body["instance"] == f"urn:request:{resp.headers['X-Request-Id']}"
    async with apis["quiet"].http.request(method, path, params=params, headers={"X-Request-Id": "mine-1"}) as resp:
        assert (await resp.json())["instance"] == "urn:request:mine-1"


async def test_the_access_log_samples_nothing_at_0_and_every_request_at_1(apis: dict[str, Api]) -> None:
    requests = [(SEARCH, WHERE), ("/v1/businesses/987654", {}), ("/no/such/987654", {"latitude": "1"})]
    answered: dict[str, list[tuple[str, int]]] = {}
    with json_logs() as lines:
        for name in ("quiet", "every"):
            answered[name] = []
            for path, params in requests:
                async with apis[name].http.get(path, params=params) as resp:
                    answered[name].append((resp.headers["X-Request-Id"], resp.status))
    access = [line for line in lines() if line["logger"] == "geo.access"]
    assert [(line["request_id"], line["status"]) for line in access] == answered["every"]
    assert [line["route"] for line in access] == [SEARCH, "/v1/businesses/{id}", "unmatched"]
    assert all(line["method"] == "GET" for line in access)
    for line in lines():
        assert "987654" not in json.dumps(line), line
    assert_no_leaks(lines())


async def test_a_500_logs_its_route_template_and_no_position(
    settings: Settings, serve: Callable[[Settings], Awaitable[Api]]
) -> None:
    async with throwaway_database(settings, "logs500", places=20) as broken:
        api = await serve(replace(broken, api_indexes=("geohash",)))
        try:
            # The sql strategy's query then fails on the replica with an error the API does not
            # expect (a missing table is no outage): the 500 of a bug.
            conn = await asyncpg.connect(broken.pg_primary)
            try:
                await conn.execute("ALTER TABLE businesses RENAME TO businesses_gone")
            finally:
                await conn.close()
            with json_logs() as lines:
                answers: list[tuple[int, str, dict[str, Any]]] = []

                async def failed() -> bool:
                    async with api.http.get(SEARCH, params={**WHERE, "index": "sql"}) as resp:
                        answers.append((resp.status, resp.headers["X-Request-Id"], await resp.json()))
                    return resp.status == 500

                await eventually(failed, "the search to fail on the renamed table", timeout=10)
            status, request_id, body = answers[-1]
            assert body["type"] == "/problems/internal-error" and body["instance"] == f"urn:request:{request_id}"
            assert "businesses_gone" not in json.dumps(body) and "relation" not in body["detail"]
            (error,) = [line for line in of_request(lines(), request_id) if line["level"] == "error"]
            assert error["logger"] == "location_api.errors"
            assert error["message"] == f"unexpected error answering GET {SEARCH}"
            assert "UndefinedTable" in error["exception"]
            assert_no_leaks(lines())
        finally:
            await stop_api(api)
