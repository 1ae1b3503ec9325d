"""The generator's lean HTTP/1.1 client against real sockets: keep-alive, the three ways a
body ends, the connection limit, timeouts, and servers that break the exchange."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from loadgen.http1 import ConnectTimeout, Http1Pool, ResponseError
from tests.ports import free_port

Handler = Callable[[bytes], Awaitable[bytes | None]]


#: An answer ending with this is sent without it, then the connection is closed.
CLOSE = b"<close>"


class Server:
    """A raw TCP server answering each request head with what ``answer`` returns (None: close
    without a word; ending with :data:`CLOSE`: close after it)."""

    def __init__(self, answer: Handler) -> None:
        self.answer = answer
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                self.requests.append(head)
                reply = await self.answer(head)
                if reply is None:
                    return
                writer.write(reply.removesuffix(CLOSE))
                await writer.drain()
                if reply.endswith(CLOSE):
                    return
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def serving(answer: Handler) -> AsyncIterator[tuple[Server, str]]:
    server = Server(answer)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield server, f"http://127.0.0.1:{port}"
    finally:
        listener.close()
        await listener.wait_closed()


def ok(body: bytes, extra: bytes = b"") -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), extra, body)


async def test_keep_alive_reuses_one_connection_and_reads_content_length_bodies() -> None:
    async def answer(head: bytes) -> bytes:
        return ok(b'{"path": "%s"}' % head.split(b" ")[1])

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=4, timeout_s=5)
        for n in range(20):
            status, body, _sent = await pool.get(pool.request(f"/v1/search/nearby?n={n}"))
            assert (status, body) == (200, b'{"path": "/v1/search/nearby?n=%d"}' % n)
        await pool.close()
    assert server.connections == 1
    assert server.requests[0].startswith(b"GET /v1/search/nearby?n=0 HTTP/1.1\r\nHost: 127.0.0.1:")


async def test_chunked_and_close_delimited_bodies_and_statuses_without_a_body() -> None:
    replies = iter(
        [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n3;x=y\r\nefg\r\n0\r\n\r\n",
            b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n",
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\nX-Trailer: 1\r\n\r\n",
            b"HTTP/1.0 200 OK\r\n\r\nuntil the close" + CLOSE,
            ok(b"again"),
        ]
    )

    async def answer(_head: bytes) -> bytes:
        return next(replies)

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=1, timeout_s=5)
        got = [(await pool.get(pool.request("/")))[:2] for _ in range(6)]
        await pool.close()
    assert got == [(200, b"abcdefg"), (503, b""), (204, b""), (200, b"hi"), (200, b"until the close"), (200, b"again")]
    assert server.connections == 2  # the HTTP/1.0 answer ended its connection: the next one is new


async def test_never_more_connections_than_allowed_and_every_waiting_request_is_served() -> None:
    async def answer(_head: bytes) -> bytes:
        await asyncio.sleep(0.02)
        return ok(b"x")

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=3, timeout_s=5)
        results = await asyncio.gather(*(pool.get(pool.request("/")) for _ in range(30)))
        await pool.close()
    assert [r[:2] for r in results] == [(200, b"x")] * 30
    assert server.most_open == 3 and server.connections == 3


async def test_a_timeout_drops_the_connection_and_the_next_request_gets_a_new_one() -> None:
    calls = 0

    async def answer(_head: bytes) -> bytes:
        nonlocal calls
        calls += 1
        if calls == 1:
            await asyncio.sleep(1.0)  # far beyond the timeout
        return ok(b"late" if calls == 1 else b"fresh")

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=1, timeout_s=0.2)
        with pytest.raises(asyncio.TimeoutError):
            await pool.get(pool.request("/"))
        assert (await pool.get(pool.request("/")))[:2] == (200, b"fresh")  # not the late answer
        await pool.close()
    assert server.connections == 2


async def test_only_the_late_request_times_out_and_no_sooner_than_its_timeout() -> None:
    async def answer(head: bytes) -> bytes:
        if b"/slow" in head:
            await asyncio.sleep(3.0)
        else:
            await asyncio.sleep(0.05)
        return ok(b"done")

    async with serving(answer) as (_server, url):
        pool = Http1Pool(url, connections=3, timeout_s=0.5)
        loop = asyncio.get_running_loop()
        started = loop.time()
        slow = asyncio.ensure_future(pool.get(pool.request("/slow")))
        quick = [await pool.get(pool.request("/quick")) for _ in range(8)]  # 0.4 s of answers meanwhile
        assert [q[:2] for q in quick] == [(200, b"done")] * 8
        with pytest.raises(asyncio.TimeoutError):
            await slow
        waited = loop.time() - started
        # The sweep runs every tenth of the timeout: never before it, and well before the answer.
        assert 0.5 <= waited < 2.0
        await pool.close()
        await asyncio.sleep(0.1)
    assert pool._sweeper is None  # noqa: SLF001 - nothing left to time, nothing left armed


@pytest.mark.parametrize(
    "reply",
    [
        None,  # closed without a word
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort" + CLOSE,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab" + CLOSE,
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["closed", "cut-short", "chunk-cut-short", "not-http", "bad-length", "bad-chunk"],
)
async def test_a_broken_exchange_is_a_connection_error_and_the_pool_recovers(reply: bytes | None) -> None:
    calls = 0

    async def answer(_head: bytes) -> bytes | None:
        nonlocal calls
        calls += 1
        return reply if calls == 1 else ok(b"fine")

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=1, timeout_s=5)
        with pytest.raises(ConnectionError):
            await pool.get(pool.request("/"))
        assert (await pool.get(pool.request("/")))[:2] == (200, b"fine")
        await pool.close()
    assert server.connections == 2


async def test_bytes_beyond_an_answer_retire_its_connection() -> None:
    replies = iter([ok(b"x") + b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nstray", ok(b"y")])

    async def answer(_head: bytes) -> bytes:
        return next(replies)

    async with serving(answer) as (server, url):
        pool = Http1Pool(url, connections=1, timeout_s=2)
        assert (await pool.get(pool.request("/")))[:2] == (200, b"x")
        assert (await pool.get(pool.request("/")))[:2] == (200, b"y")  # not the stray answer
        await pool.close()
    assert server.connections == 2


async def test_a_refused_connection_raises_oserror_and_bad_urls_are_refused() -> None:
    port = free_port()  # nothing listens there
    pool = Http1Pool(f"http://127.0.0.1:{port}", connections=2, timeout_s=1)
    with pytest.raises(OSError):
        await pool.get(pool.request("/"))
    for bad in ("ftp://127.0.0.1/", "127.0.0.1:80", "http:///nohost"):
        with pytest.raises(ValueError, match="http"):
            Http1Pool(bad, connections=1, timeout_s=1)


async def test_a_handshake_that_never_completes_fails_within_the_timeout_and_frees_its_place() -> None:
    # A listener that never accepts, with its one-place queue taken: the kernel drops the
    # SYNs of every further connect, which would otherwise retry for about two minutes.
    with socket.socket() as listener, socket.socket() as holder:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        holder.connect(listener.getsockname())
        pool = Http1Pool(f"http://127.0.0.1:{listener.getsockname()[1]}", connections=1, timeout_s=0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Two requests, one place: the second waits for the first's connection, and gets its
        # own attempt (with its own timeout) once the first has given up.
        results = await asyncio.gather(*(pool.get(pool.request("/")) for _ in range(2)), return_exceptions=True)
        took = loop.time() - started
        assert all(isinstance(r, ConnectTimeout) for r in results), results
        assert "within 0.3 s" in str(results[0])
        assert 0.5 <= took < 2.0  # two attempts of 0.3 s, one after the other; not the kernel's retries
        assert pool._open == 0  # noqa: SLF001 - the places given back
        await pool.close()


def test_response_error_is_a_connection_error() -> None:
    assert issubclass(ResponseError, ConnectionError)
    # counted by the generator as a connection error, not as a request that timed out
    assert issubclass(ConnectTimeout, ConnectionError) and not issubclass(ConnectTimeout, TimeoutError)
