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
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from loadgen.clock import now

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD = 64 * 1024


#: Hears how a request went: ``answer(token, status, body, sent, error)`` (:meth:`Http1Pool.send`).
Answer = Callable[[Any, int, bytes, float, "BaseException | None"], None]


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
        self.answer: Answer | None = None  # who hears of the request on the wire, if one is
        self.token: Any = None
        self.sent = 0.0
        self.response: _Response | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.pool.opened(self)

    def send(self, request: bytes, answer: Answer, token: Any) -> None:
        assert self.transport is not None
        self.answer, self.token = answer, token
        self.response = None
        self.sent = now()
        self.transport.write(request)

    def timed_out(self) -> None:
        self._fail(TimeoutError())

    def _finish(self, status: int, body: bytes, consumed: int, close: bool) -> None:
        del self.buf[:consumed]
        if self.buf:  # bytes beyond the answer: the stream is out of step, so not reused
            close = True
        answer, token, sent = self.answer, self.token, self.sent
        self.answer = self.token = self.response = None
        # Free (or drop) the connection first: a request waiting for one leaves now, before
        # this answer is heard.
        if close:
            self._drop()
        else:
            self.pool.release(self)
        if answer is not None:
            answer(token, status, body, sent, None)

    def _fail(self, exc: BaseException) -> None:
        answer, token, sent = self.answer, self.token, self.sent
        self.answer = self.token = None
        self._drop()
        if answer is not None:
            answer(token, 0, b"", sent, exc)

    def _drop(self) -> None:
        if not self.closed:
            self.closed = True
            self.pool.forget(self)
            if self.transport is not None:
                self.transport.close()

    def data_received(self, data: bytes) -> None:
        if self.answer is None:  # nothing asked: a stray byte means the stream is out of step
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
        if self.answer is not None and response is not None and not response.chunked and response.length is None:
            self._finish(response.status, bytes(self.buf), len(self.buf), True)
            return
        self._fail(exc or ResponseError("the server closed the connection before answering in full"))


class Http1Pool:
    """Keep-alive GETs to one server.

    Two ways to ask: ``await get(request)``, or, where a task and a future for each request
    cost too much (the open-loop sender, thousands a second on a core it shares with the
    server), ``send(request, answer, token)``, which hears of the outcome through a callback
    and creates nothing per request.

    Args:
        base_url: ``http://host:port`` or ``https://...`` (its path is ignored).
        connections: the most connections open at once.
        timeout_s: how long a request may take, from when a connection takes it (checked
            every tenth of it, at most every 0.1 s, so a request times out up to that much
            later); and how long opening a connection may take.
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
        self._open = 0  # connections open or opening
        self._opening: set[asyncio.Task[None]] = set()  # held here: the loop keeps only weak references
        self._waiting: deque[tuple[bytes, Answer, Any]] = deque()  # requests no connection has taken yet
        self._connections: set[_Connection] = set()  # every open one, busy or idle
        # Requests are timed by a sweep over the open connections rather than a timer each:
        # a timer armed and cancelled for every request costs the generator a microsecond.
        self._sweep_s = min(0.1, timeout_s / 10)
        self._sweeper: asyncio.TimerHandle | None = None

    def request(self, target: str) -> bytes:
        """The bytes of ``GET target`` (a path with its query)."""
        return f"GET {target} HTTP/1.1\r\nHost: {self._host_header}\r\nAccept: application/json\r\n\r\n".encode()

    def send(self, request: bytes, answer: Answer, token: Any) -> None:
        """Send a request made by :meth:`request` on the first free connection, a new one if
        fewer than ``connections`` are open, or, with all of them busy, on the first to free
        up; ``answer(token, status, body, sent, error)`` hears how it went, exactly once.

        ``sent`` is when a connection took the request (:func:`loadgen.clock.now`); ``error``
        is None for an answer, else what ended the request: ``asyncio.TimeoutError`` (no full
        answer within ``timeout_s``) or a ``ConnectionError`` (the connection could not be
        made or was lost; :class:`ResponseError`: the answer was cut short or malformed;
        :class:`ConnectTimeout`: no connection within ``timeout_s``), with status 0. ``answer``
        runs inside the event loop's I/O callbacks and must not raise.
        """
        idle = self._idle
        while idle:
            conn = idle.pop()
            if not conn.closed:
                conn.send(request, answer, token)
                return
        if self._open < self.max_connections:
            self._open += 1
            self._open_for(request, answer, token)
            return
        self._waiting.append((request, answer, token))

    def _open_for(self, request: bytes, answer: Answer, token: Any) -> None:
        """Open a connection for a request (its place already counted in ``_open``)."""
        task = self.loop.create_task(self._connect_and_send(request, answer, token))
        self._opening.add(task)
        task.add_done_callback(self._opening.discard)

    async def get(self, request: bytes) -> tuple[int, bytes, float]:
        """:meth:`send` as a coroutine: the status, the body and when the request left.

        Raises:
            asyncio.TimeoutError, ConnectionError: as :meth:`send` describes.
        """
        future: asyncio.Future[tuple[int, bytes, float]] = self.loop.create_future()
        self.send(request, _settle, future)
        return await future

    async def _connect_and_send(self, request: bytes, answer: Answer, token: Any) -> None:
        """Open a connection (its place already counted in ``_open``) and send on it."""
        try:
            _transport, conn = await asyncio.wait_for(
                self.loop.create_connection(lambda: _Connection(self), self.host, self.port, ssl=self._ssl),
                self.timeout_s,
            )
        except BaseException as exc:  # noqa: BLE001 - handed to the request it was opened for
            self._open -= 1
            if isinstance(exc, TimeoutError):
                exc = ConnectTimeout(f"no connection to {self.host}:{self.port} within {self.timeout_s:g} s")
            answer(token, 0, b"", now(), exc)
            self._wake()  # a waiting request gets an attempt of its own
            return
        if conn.closed:  # closed by the server as soon as it was open (its place is given back)
            answer(token, 0, b"", now(), ResponseError("the server closed the connection before the request was sent"))
            return
        conn.send(request, answer, token)

    def release(self, conn: _Connection) -> None:
        """A connection is free again: to the longest-waiting request, else idle."""
        if self._waiting:
            conn.send(*self._waiting.popleft())
        else:
            self._idle.append(conn)

    def opened(self, conn: _Connection) -> None:
        """A connection is open: its requests are timed from now on."""
        self._connections.add(conn)
        if self._sweeper is None:
            self._sweeper = self.loop.call_later(self._sweep_s, self._sweep)

    def forget(self, conn: _Connection) -> None:
        """A connection is gone: a waiting request may open another."""
        self._connections.discard(conn)
        self._open -= 1
        self._wake()

    def _sweep(self) -> None:
        """Fail the requests that have waited ``timeout_s`` for their answer (each within a
        tenth of the timeout, or 0.1 s, after it), every so often while connections are open."""
        self._sweeper = None
        late = now() - self.timeout_s
        for conn in [c for c in self._connections if c.answer is not None and c.sent <= late]:
            conn.timed_out()
        if self._connections:
            self._sweeper = self.loop.call_later(self._sweep_s, self._sweep)

    def _wake(self) -> None:
        if self._waiting and self._open < self.max_connections:
            self._open += 1
            self._open_for(*self._waiting.popleft())

    async def close(self) -> None:
        """Close every idle connection (busy ones close as their requests end)."""
        for conn in self._idle:
            conn._drop()  # noqa: SLF001 - the pool owns its connections
        self._idle.clear()
        if self._sweeper is not None and not self._connections:
            self._sweeper.cancel()
            self._sweeper = None


def _settle(
    future: asyncio.Future[tuple[int, bytes, float]], status: int, body: bytes, sent: float, error: BaseException | None
) -> None:
    """The :data:`Answer` behind :meth:`Http1Pool.get`."""
    if future.done():  # the caller gave up (cancelled)
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result((status, body, sent))
