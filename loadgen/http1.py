"""A lean HTTP/1.1 GET client for the open-loop search generator.

A full client (aiohttp's) spends most of a hundred microseconds of CPU on each request; at
the rates a search API answers, on a machine the generator shares with the server, that
caps the generator before the server. This one is raw asyncio protocols: keep-alive
connections, one request at a time on each (no pipelining), a response read by its
``Content-Length``, ``Transfer-Encoding: chunked``, or up to the close. Connections open on
demand, up to ``connections``; a request that finds them all busy waits for the first one
free. A connection the server closes, or one whose request timed out, is dropped and
replaced by the next request that needs one. Opening a connection is bounded by the same
timeout as a request: a server that never completes the handshake (a full accept queue, a
host that drops packets) fails the request with :class:`ConnectTimeout` instead of holding
it, and every request queued behind it, for the kernel's two minutes of SYN retries.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from urllib.parse import urlsplit

from loadgen.clock import now

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


class ResponseError(ConnectionError):
    """The server closed the connection early or sent something that is not an HTTP/1.x response."""


class ConnectTimeout(ConnectionError):
    """No connection to the server could be opened within the pool's timeout."""


class _Response:
    """What is known of the response being read."""

    __slots__ = ("chunked", "close", "length", "status")

    def __init__(self, status: int, length: int | None, chunked: bool, close: bool) -> None:
        self.status = status
        self.length = length  # the body's Content-Length, when given (the buffer starts at the body)
        self.chunked = chunked
        self.close = close


def _parse_head(head: bytes) -> tuple[int, int | None, bool, bool]:
    """Status, Content-Length (or None), chunked, and whether the connection closes after."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise ResponseError(f"not an HTTP/1.x status line: {lines[0][:80]!r}")
    status = int(parts[1])
    close = parts[0] == b"HTTP/1.0"
    length: int | None = None
    chunked = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip()
        if name == b"content-length":
            if not value.isdigit():
                raise ResponseError(f"bad Content-Length: {value[:40]!r}")
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.lower()
            close = b"close" in token or (close and b"keep-alive" not in token)
    if status in (204, 304) or 100 <= status < 200:
        length, chunked = 0, False
    return status, length, chunked, close


def _chunked_end(buf: bytearray, start: int) -> tuple[int, bytes] | None:
    """Where a chunked body starting at ``start`` ends (after its trailer) and its bytes, or
    None while it is incomplete."""
    pos = start
    body = bytearray()
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size_text = bytes(buf[pos:eol]).split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ResponseError(f"bad chunk size: {size_text[:20]!r}") from None
        if size == 0:
            end = buf.find(_HEAD_END, eol)  # the trailer ends with an empty line
            if end == eol:
                return eol + 4, bytes(body)
            if end < 0:
                return None
            return end + 4, bytes(body)
        if len(buf) < eol + 2 + size + 2:
            return None
        body += buf[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2


class _Connection(asyncio.Protocol):
    def __init__(self, pool: Http1Pool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.response: _Response | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def send(self, request: bytes, waiter: asyncio.Future[tuple[int, bytes]], timeout_s: float) -> None:
        assert self.transport is not None
        self.waiter = waiter
        self.response = None
        self.timer = self.pool.loop.call_later(timeout_s, self._timed_out)
        self.transport.write(request)

    def _timed_out(self) -> None:
        self._fail(asyncio.TimeoutError())

    def _finish(self, status: int, body: bytes, consumed: int, close: bool) -> None:
        del self.buf[:consumed]
        if self.buf:  # bytes beyond the answer: the stream is out of step, so not reused
            close = True
        waiter, self.waiter, self.response = self.waiter, None, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if close:
            self._drop()
        else:
            self.pool.release(self)
        if waiter is not None and not waiter.done():
            waiter.set_result((status, body))

    def _fail(self, exc: BaseException) -> None:
        waiter, self.waiter = self.waiter, None
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self._drop()
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    def _drop(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.waiter is None:  # nothing asked: a stray byte means the stream is out of step
            self._drop()
            return
        self.buf += data
        try:
            self._read()
        except ResponseError as exc:
            self._fail(exc)

    def _read(self) -> None:
        if self.response is None:
            end = self.buf.find(_HEAD_END)
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    raise ResponseError("response head over 64 KiB")
                return
            status, length, chunked, close = _parse_head(bytes(self.buf[:end]))
            body_start = end + 4
            self.response = _Response(status, length, chunked, close)
            del self.buf[:body_start]
        response = self.response
        if response.chunked:
            done = _chunked_end(self.buf, 0)
            if done is not None:
                self._finish(response.status, done[1], done[0], response.close)
        elif response.length is not None:
            if len(self.buf) >= response.length:
                self._finish(response.status, bytes(self.buf[: response.length]), response.length, response.close)
        # else: the body runs to the close (connection_lost finishes it)

    def connection_lost(self, exc: Exception | None) -> None:
        response = self.response
        if self.waiter is not None and response is not None and not response.chunked and response.length is None:
            self._finish(response.status, bytes(self.buf), len(self.buf), True)
            return
        self._fail(exc or ResponseError("the server closed the connection before answering in full"))


class Http1Pool:
    """Keep-alive GETs to one server.

    Args:
        base_url: ``http://host:port`` or ``https://...`` (its path is ignored).
        connections: the most connections open at once.
        timeout_s: how long a request may take, from when a connection takes it; and how long
            opening a connection may take.
    """

    def __init__(self, base_url: str, *, connections: int, timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"expected an http:// or https:// URL, got {base_url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self._ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self._host_header = parts.netloc.rsplit("@", 1)[-1]
        self.max_connections = connections
        self.timeout_s = timeout_s
        self.loop = asyncio.get_running_loop()
        self._idle: list[_Connection] = []
        self._open = 0
        self._waiting: deque[asyncio.Future[_Connection]] = deque()

    def request(self, target: str) -> bytes:
        """The bytes of ``GET target`` (a path with its query)."""
        return f"GET {target} HTTP/1.1\r\nHost: {self._host_header}\r\nAccept: application/json\r\n\r\n".encode()

    async def get(self, request: bytes) -> tuple[int, bytes, float]:
        """Send a request made by :meth:`request`; its status, its body, and when it left
        (:func:`loadgen.clock.now` once a connection took it).

        Raises:
            asyncio.TimeoutError: no full answer within ``timeout_s``.
            ConnectionError: the connection could not be made or was lost (ResponseError:
                the answer was cut short or malformed; ConnectTimeout: no connection within
                ``timeout_s``).
        """
        conn = await self._take()
        waiter: asyncio.Future[tuple[int, bytes]] = self.loop.create_future()
        sent = now()
        conn.send(request, waiter, self.timeout_s)
        status, body = await waiter
        return status, body, sent

    async def _take(self) -> _Connection:
        while self._idle:
            conn = self._idle.pop()
            if not conn.closed:
                return conn
        if self._open < self.max_connections:
            self._open += 1
            try:
                _transport, conn = await asyncio.wait_for(
                    self.loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self._ssl),
                    self.timeout_s,
                )
            except BaseException as exc:
                self._open -= 1
                self._wake()
                if isinstance(exc, TimeoutError):
                    raise ConnectTimeout(
                        f"no connection to {self.host}:{self.port} within {self.timeout_s:g} s"
                    ) from None
                raise
            return conn
        waiter: asyncio.Future[_Connection] = self.loop.create_future()
        self._waiting.append(waiter)
        return await waiter

    def release(self, conn: _Connection) -> None:
        """A connection is free again: to the longest-waiting request, else idle."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(conn)
                return
        self._idle.append(conn)

    def forget(self, conn: _Connection) -> None:
        """A connection is gone: a waiting request may open another."""
        self._open -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                # Let it open a connection of its own.
                self.loop.create_task(self._hand_new(waiter))
                return

    async def _hand_new(self, waiter: asyncio.Future[_Connection]) -> None:
        try:
            conn = await self._take()
        except BaseException as exc:  # noqa: BLE001 - handed to the request that waits
            if not waiter.done():
                waiter.set_exception(exc)
            return
        if waiter.done():
            self.release(conn)
        else:
            waiter.set_result(conn)

    async def close(self) -> None:
        """Close every idle connection (busy ones close as their requests end)."""
        for conn in self._idle:
            conn._drop()  # noqa: SLF001 - the pool owns its connections
        self._idle.clear()
