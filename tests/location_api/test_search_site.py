"""Plain searches answered below aiohttp (location_api.site), on the real API over a small
database: the same bytes as aiohttp's, in order with the requests aiohttp answers on the same
connection (one at a time, the connection the site's again after each), and every request
whose head could be read two ways left to aiohttp with the rest of the connection.

Each answer is compared with the one the same app gives through aiohttp's own site
(``web.TCPSite`` on the same runner), byte for byte but for ``Date`` and ``X-Request-Id``.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest
from aiohttp import web

from geo_common.places import load_places
from geo_common.settings import Settings
from location_api.keys import metrics_key
from location_api.site import RELAYS_BEFORE_HAND_OVER, ApiSite

from .conftest import TIMEOUT_FACTOR, Api, caught_up, eventually, stop_api, throwaway_database

PLACES = 60
_FIRST = load_places()[0]
_LAT, _LON = _FIRST.latitude, _FIRST.longitude
NEARBY = f"/v1/search/nearby?latitude={_LAT}&longitude={_LON}&radius=20000&limit=5"
AREA = f"/v1/search/area?bbox={_LON - 0.2}%2C{_LAT - 0.2}%2C{_LON + 0.2}%2C{_LAT + 0.2}"
BAD = "/v1/search/nearby?latitude=north&longitude=1"


def get(target: str, *fields: str) -> bytes:
    return "".join([f"GET {target} HTTP/1.1\r\nHost: geo\r\n", *(f"{f}\r\n" for f in fields), "\r\n"]).encode()


#: The last request of a connection: aiohttp closes it after the answer.
LAST = get("/healthz", "Connection: close")

Answer = tuple[str, list[tuple[str, str]], bytes]


class Served:
    """The app through its ApiSite and, beside it, through aiohttp's TCPSite."""

    def __init__(self, api: Api, plain_port: int) -> None:
        self.api = api
        self.plain_port = plain_port

    @property
    def site(self) -> ApiSite:
        assert self.api.server.site is not None
        return self.api.server.site

    @property
    def port(self) -> int:
        return self.api.server.port


@pytest.fixture(scope="module")
async def served(settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Served]:
    async with throwaway_database(settings, "site", places=PLACES) as small:
        api = await serve(replace(small, api_indexes=("geohash",), access_log_sample=0.0))
        await caught_up(api)
        sock = socket.create_server(("127.0.0.1", 0))
        plain = web.SockSite(api.server.runner, sock)
        await plain.start()
        yield Served(api, sock.getsockname()[1])
        await plain.stop()
        await stop_api(api)


async def exchange(port: int, data: bytes, *, chunk: int = 0) -> bytes:
    """Send ``data`` (in pieces of ``chunk`` bytes, when given) and read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        if chunk:
            for i in range(0, len(data), chunk):
                writer.write(data[i : i + chunk])
                await writer.drain()
        else:
            writer.write(data)
        return await asyncio.wait_for(reader.read(-1), 20 * TIMEOUT_FACTOR)
    finally:
        writer.close()


def answers(stream: bytes) -> list[Answer]:
    """The answers in a stream: status line, header fields (``Date`` and ``X-Request-Id``
    kept by name only), body."""
    found: list[Answer] = []
    while stream:
        head, sep, rest = stream.partition(b"\r\n\r\n")
        assert sep, stream[:200]
        status, *lines = head.decode("latin-1").split("\r\n")
        fields = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
        length = int(dict(fields)["Content-Length"])
        kept = [(name, "" if name in ("Date", "X-Request-Id") else value) for name, value in fields]
        found.append((status, kept, rest[:length]))
        stream = rest[length:]
    return found


def request_ids(stream: bytes) -> list[str]:
    return [line.split(b": ", 1)[1].decode() for line in stream.split(b"\r\n") if line.startswith(b"X-Request-Id: ")]


async def test_a_plain_search_is_answered_below_aiohttp_with_aiohttp_s_bytes(served: Served) -> None:
    for target in (NEARBY, AREA):
        before = served.api.app[metrics_key].requests.requests.get((target.split("?")[0], "GET", 200), 0)
        data = get(target, "X-Request-Id: mine-1") + get(target) + LAST
        mine = await exchange(served.port, data)
        theirs = await exchange(served.plain_port, data)
        assert answers(mine) == answers(theirs)
        first, second, _ = answers(mine)
        assert first[0] == "HTTP/1.1 200 OK" and b'"total"' in first[2] and first[2] == second[2]
        assert request_ids(mine)[0] == "mine-1" and request_ids(mine)[1] != "mine-1"
        after = served.api.app[metrics_key].requests.requests[(target.split("?")[0], "GET", 200)]
        assert after - before == 4  # two through each site, all recorded


async def test_requests_are_answered_in_order_with_those_aiohttp_answers(served: Served) -> None:
    data = b"".join(
        [
            get(NEARBY, "X-Request-Id: a"),
            get(AREA, "X-Request-Id: b"),
            get("/healthz", "X-Request-Id: c"),  # aiohttp's
            get(NEARBY, "X-Request-Id: d"),  # the site's again
            get(BAD, "X-Request-Id: e"),  # declined by the compiled path: aiohttp's problem document
            LAST,
        ]
    )
    stream = await exchange(served.port, data)
    found = answers(stream)
    assert request_ids(stream)[:5] == ["a", "b", "c", "d", "e"]
    assert [a[0].split(" ")[1] for a in found] == ["200", "200", "200", "200", "400", "200"]
    assert found[0][2] == found[3][2]
    assert found[4][1][0] == ("Content-Type", "application/problem+json")
    assert answers(stream) == answers(await exchange(served.plain_port, data))


#: What a proxy's kept-alive connection carries: every kind of read, again and again.
MIXED = [
    get(NEARBY),
    get(f"/v1/businesses/{PLACES // 2}"),
    get(AREA),
    get("/healthz"),
    get(NEARBY.replace("limit=5", "limit=3&category=restaurant")),
    get(NEARBY, "Authorization: Bearer not-a-token"),
    get(BAD),
    get("/nowhere"),
    get(NEARBY).replace(b"GET", b"HEAD", 1),
]


async def test_a_connection_carrying_every_kind_of_read_stays_the_site_s(served: Served) -> None:
    data = b"".join(MIXED * 3)
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        await eventually(_async(lambda: served.site.searching >= 1), "the connection to be the site's")
        held = served.site.searching
        writer.write(data + LAST)
        stream = await asyncio.wait_for(reader.read(-1), 20 * TIMEOUT_FACTOR)
    finally:
        writer.close()
    assert _without_volatile(stream) == _without_volatile(await exchange(served.plain_port, data + LAST))
    assert len(answers_with_head(stream)) == len(MIXED) * 3 + 1
    # Still the site's after all of them, until the last one closed it.
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        await eventually(_async(lambda: served.site.searching >= held), "a new connection to be the site's")
        writer.write(b"".join(MIXED))
        for _ in MIXED:
            await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.05)
        assert served.site.searching >= held
    finally:
        writer.close()


async def test_a_connection_carrying_mostly_other_requests_becomes_aiohttp_s(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        await eventually(_async(lambda: served.site.searching >= 1), "the connection to be the site's")
        held = served.site.searching
        filtered = get(NEARBY.replace("limit=5", "limit=3&category=restaurant"))
        for n in range(RELAYS_BEFORE_HAND_OVER):
            writer.write(filtered)
            await reader.readuntil(b"\r\n\r\n")
            assert served.site.searching == held, n  # relayed, still the site's
        writer.write(filtered + get(NEARBY))
        first = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(int(first.split(b"Content-Length: ")[1].split(b"\r\n")[0]))
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
        assert served.site.searching == held - 1  # aiohttp's for good
    finally:
        writer.close()


def answers_with_head(stream: bytes) -> list[bytes]:
    """The status lines in a stream (a HEAD's answer has a length but no body)."""
    return re.findall(rb"HTTP/1\.1 \d{3} [A-Za-z ]+\r\n", stream)


async def test_a_connection_stays_the_site_s_until_a_request_it_hands_over(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    try:
        await eventually(_async(lambda: served.site.searching >= 1), "the connection to be the site's")
        held = served.site.searching
        for target in (NEARBY, BAD, "/healthz", AREA):
            writer.write(get(target))
            await reader.readuntil(b"\r\n\r\n")
        assert served.site.searching == held
        writer.write(get(NEARBY, "Content-Length: 0"))  # a body, even empty: aiohttp's for good
        await reader.readuntil(b"\r\n\r\n")
        assert served.site.searching == held - 1
    finally:
        writer.close()


def _async(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def run() -> bool:
        return check()

    return run


async def test_a_request_sent_a_byte_at_a_time_is_answered(served: Served) -> None:
    data = get(AREA) + get(NEARBY) + LAST
    assert answers(await exchange(served.port, data, chunk=1)) == answers(await exchange(served.plain_port, data))


# What each request could be read as differs between a careless reader and aiohttp's parser:
# each is left to aiohttp, which answers as it alone would (the stream compared whole).
FRAMING = {
    "chunked-body": get(NEARBY, "Transfer-Encoding: chunked")[:-2] + b"\r\n5\r\nGET /\r\n0\r\n\r\n" + LAST,
    "body-holding-a-request": get(NEARBY, "Content-Length: 36")[:-2] + b"\r\n" + get("/healthz")[:36] + LAST,
    "space-before-colon": get(NEARBY, "X-Request-Id : z") + LAST,
    "folded-field": get(NEARBY, "X-A: b", " folded: c") + LAST,
    "bare-lf": get(NEARBY).replace(b"\r\n", b"\n") + LAST,
    "bare-cr": get(NEARBY, "X-A: b\rX-B: c") + LAST,
    "nul-in-a-value": get(NEARBY, "X-A: b\x00c") + LAST,
    "http-1.0": get(NEARBY).replace(b"HTTP/1.1", b"HTTP/1.0", 1) + LAST,
    "head": get(NEARBY).replace(b"GET", b"HEAD", 1) + LAST,
    "connection-close": get(NEARBY, "Connection: close") + LAST,
    "fragment": get(NEARBY + "#x") + LAST,
    "non-ascii-target": get(NEARBY + "&q=caf\u00e9") + LAST,
    "a-head-over-16-kib": get(NEARBY, "X-Pad: " + "p" * 20_000) + LAST,
    "two-spaces": get(NEARBY).replace(b" HTTP", b"  HTTP", 1) + LAST,
    "authorization": get(NEARBY, "Authorization: Bearer nonsense") + LAST,
    "consistency-token": get(NEARBY, "X-Consistency-Token: nonsense") + LAST,
    "expect": get(NEARBY, "Expect: 100-continue") + LAST,
    "upgrade": get(NEARBY, "Connection: Upgrade", "Upgrade: websocket") + LAST,
    "trailing-slash": get("/v1/search/nearby/?" + NEARBY.split("?")[1]) + LAST,
    "lower-case-method": get(NEARBY).replace(b"GET", b"get", 1) + LAST,
    # aiohttp's parser refuses a field over 8,190 bytes and closes: so does the site.
    "a-field-over-aiohttp-s-limit": get("/healthz", "X-Pad: " + "p" * 9_000) + LAST,
    "a-field-of-8190-bytes": get(NEARBY, "X-Pad: " + "p" * 8_183) + LAST,
    "a-search-after-a-refused-one": get(NEARBY, "X-Pad: " + "p" * 9_000) + get(NEARBY) + LAST,
}


@pytest.mark.parametrize("data", FRAMING.values(), ids=FRAMING.keys())
async def test_a_request_read_two_ways_is_left_to_aiohttp(served: Served, data: bytes) -> None:
    mine, theirs = await exchange(served.port, data), await exchange(served.plain_port, data)
    assert mine.startswith(b"HTTP/1.") and _without_volatile(mine) == _without_volatile(theirs)


def _without_volatile(stream: bytes) -> list[bytes]:
    return [
        line
        for line in stream.split(b"\r\n")
        if not line.startswith((b"Date: ", b"X-Request-Id: ")) and b"urn:request:" not in line
    ]


async def test_a_client_that_reads_no_answer_is_read_no_further(served: Served) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", served.port)
    sent = 0
    try:
        # Pipelined searches without reading: the answers fill the socket's buffers, the site
        # stops reading, the kernel's buffers for the requests fill, and writing stalls.
        batch = get(NEARBY) * 1_000
        stalled = False
        while sent < 2_000_000:
            writer.write(batch)
            sent += 1_000
            try:
                await asyncio.wait_for(writer.drain(), 2.0)
            except TimeoutError:
                stalled = True
                break
        assert stalled, f"{sent:,} requests were read without their answers being read"
        # Once read, every answer comes, in order.
        expected = answers(await exchange(served.port, get(NEARBY) + LAST))[0]
        got = 0
        while got < sent:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20 * TIMEOUT_FACTOR)
            length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            assert body == expected[2]
            got += 1
    finally:
        writer.close()


@contextlib.asynccontextmanager
async def one_more_site(served: Served, keepalive_s: float) -> AsyncIterator[ApiSite]:
    """The same app through one more ApiSite, whose connections idle for ``keepalive_s`` at most."""
    site = ApiSite(served.api.server.runner, "127.0.0.1", 0, keepalive_s=keepalive_s)
    await site.start()
    try:
        yield site
    finally:
        if site in served.api.server.runner.sites:
            await site.stop()


@pytest.mark.parametrize("sent", [b"", get(NEARBY), get(NEARBY)[:20]], ids=["nothing", "answered", "half-a-head"])
async def test_an_idle_connection_is_closed(served: Served, sent: bytes) -> None:
    async with one_more_site(served, keepalive_s=0.3) as site:
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        try:
            writer.write(sent)
            rest = await asyncio.wait_for(reader.read(-1), 10 * TIMEOUT_FACTOR)
            assert rest.startswith(b"HTTP/1.1 200 OK") == (sent == get(NEARBY))
        finally:
            writer.close()


async def test_stopping_the_site_closes_its_connections(served: Served) -> None:
    server = served.api.server.runner.server
    assert server is not None
    before = len(server.connections)
    async with one_more_site(served, keepalive_s=3600.0) as site:
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        try:
            writer.write(get(NEARBY) + get("/healthz"))  # the second through aiohttp's handler
            for _ in range(2):
                await reader.readuntil(b"\r\n\r\n")
            assert site.searching == 1 and len(server.connections) == before + 1
            await site.stop()
            await asyncio.wait_for(reader.read(-1), 10 * TIMEOUT_FACTOR)
            assert reader.at_eof() and site.searching == 0
            await eventually(_async(lambda: len(server.connections) == before), "aiohttp's handler to be let go")
        finally:
            writer.close()
