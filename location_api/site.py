"""geo-api's listening socket: plain searches below aiohttp, every other request through it.

A plain search costs the compiled path one call (:func:`location_api.views.compiled_body`);
through aiohttp the same request also costs its request object, a task, the route's wrapper
and the response's preparation, several times the search itself (docs/benchmarks.md, "Plain
searches below aiohttp"). So each accepted connection of a read instance is a
:class:`Searches`, which reads the requests as they come
(:func:`location_api.search_heads.next_request`):

- a plain search the compiled path takes is answered here, as aiohttp would answer it: the
  same status line, header fields and body, the request's id in ``X-Request-Id``, the answer
  recorded in the metrics and the access log under its route;
- any other request without a body (another route, a filter, a bad parameter, a caller's
  token) is given alone to the connection's aiohttp request handler, through a
  :class:`location_api.relay.Relay`; the requests after it wait, and are read here again
  once its answer is whole. Behind a proxy that reuses its connections for every route, the
  searches stay cheap. A connection on which aiohttp has answered more than
  :data:`RELAYS_BEFORE_HAND_OVER` requests, and more than the site has, is handed over (below);
- a request whose head could be read two ways, or that has a body or asks for another
  protocol, is handed to aiohttp's protocol with every byte after it: the connection is
  aiohttp's for good.

Answers keep their requests' order, and every problem document and refusal is the views' or
aiohttp's parser's own. A connection is closed after :data:`KEEPALIVE_S` seconds without an
answer (aiohttp's idle timeout; a head that never ends included), and stops being read while
the client does not read its answers. When the site stops, the connections still its own are
closed, each once the request aiohttp may be answering on it is answered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import SERVER_SOFTWARE
from aiohttp.web_protocol import RequestHandler

from geo_common.request_context import AccessLog, accept_request_id, access_log_for, current_request_id
from geo_common.site import HttpFactory, ProtocolSite
from location_api.keys import metrics_key, role_key, settings_key
from location_api.relay import Relay
from location_api.search_heads import MAX_HEAD, Other, Search, Verdict, next_request
from location_api.views import compiled_body

#: Seconds a connection may stay without an answer (aiohttp's ``keepalive_timeout``).
KEEPALIVE_S = 3630.0
#: A connection on which aiohttp has answered this many requests, and more than the site has
#: answered searches, becomes aiohttp's: a request relayed costs about 100,000 instructions
#: more than through aiohttp alone, about what a search answered here saves (docs/benchmarks.md,
#: "Plain searches below aiohttp"), so a connection that carries mostly other requests (a
#: client that filters every search) is served best by aiohttp alone.
RELAYS_BEFORE_HAND_OVER = 32
#: Answers written at once at most, bytes: past the transport's high-water mark the requests
#: still buffered wait until the client has read (pipelined requests cost no more memory).
BATCH_BYTES = 65_536

_HEAD = (
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nX-Request-Id: {}\r\nContent-Length: {}\r\n"
    "Date: {}\r\nServer: " + SERVER_SOFTWARE + "\r\n\r\n"
)


class _Served:
    """What every connection of one app shares: the app, its metrics and access log, the date."""

    __slots__ = ("app", "observe", "access_log", "_second", "_date")

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self.observe: Callable[[str, str, int, float], None] = app[metrics_key].observe
        self.access_log: AccessLog | None = access_log_for(app[settings_key].access_log_sample)
        self._second = -1
        self._date = ""

    def head(self, length: int, request_id: str) -> bytes:
        """An answer's status line and header fields, as aiohttp writes them for the view's."""
        now = int(time.time())
        if now != self._second:
            self._second, self._date = now, formatdate(now, usegmt=True)
        return _HEAD.format(request_id, length, self._date).encode("latin-1")


class Searches(asyncio.Protocol):
    """A connection of a read instance (see the module's description).

    Args:
        served: the app's shared state.
        http: aiohttp's protocol factory (a handler per relayed request, or for the rest of
            the connection once handed over).
        live: the site's connections still its own (this one while it is).
        keepalive_s: seconds without an answer before the connection is closed.
    """

    __slots__ = (
        "_served",
        "_http",
        "_live",
        "_keepalive_s",
        "_transport",
        "_loop",
        "_buffer",
        "_last",
        "_timer",
        "_paused",
        "_relay",
        "_waiting",
        "_closing",
        "_answered_here",
        "_relayed_count",
    )

    def __init__(self, served: _Served, http: HttpFactory, live: set[Searches], keepalive_s: float) -> None:
        self._served = served
        self._http = http
        self._live = live
        self._keepalive_s = keepalive_s
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._buffer = b""
        self._last = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._relay: Relay | None = None
        self._waiting = False  # for aiohttp's answer to a request relayed
        self._closing = False
        self._answered_here = 0
        self._relayed_count = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._live.add(self)
        self._last = self._loop.time()
        self._timer = self._loop.call_later(self._keepalive_s, self._check_idle)

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer + data if self._buffer else data
        transport = self._transport
        if self._waiting or transport is None:
            self._buffer = buffer  # read once aiohttp has answered
            if len(buffer) > MAX_HEAD + BATCH_BYTES and transport is not None:
                transport.pause_reading()
            return
        served = self._served
        app, observe, access_log = served.app, served.observe, served.access_log
        answers: list[bytes] = []
        size = start = 0
        while not self._paused:
            request = next_request(buffer, start)
            if request is Verdict.INCOMPLETE:
                break
            if request is Verdict.HAND_OVER:
                self._hand_over(answers, buffer[start:])
                return
            body = None
            if isinstance(request, Search):
                started = time.perf_counter()
                try:
                    body = compiled_body(app, request.route, request.query)
                except Exception:  # noqa: BLE001 - the general path answers it, and logs what fails
                    body = None
            if body is None:
                self._relayed_count += 1
                if self._relayed_count > RELAYS_BEFORE_HAND_OVER and self._relayed_count > self._answered_here:
                    self._hand_over(answers, buffer[start:])
                    return
                if answers:
                    transport.writelines(answers)
                self._buffer = buffer[request.end :]
                self._relay_one(transport, request, buffer[start : request.end])
                return
            assert isinstance(request, Search)
            request_id = accept_request_id(request.request_id)
            head = served.head(len(body), request_id)
            answers.append(head)
            answers.append(body)
            size += len(head) + len(body)
            elapsed = time.perf_counter() - started
            observe(request.route, "GET", 200, elapsed)
            if access_log is not None:
                # The line names its request, as every line written while handling one does.
                token = current_request_id.set(request_id)
                access_log.record("GET", request.route, 200, elapsed)
                current_request_id.reset(token)
            self._answered_here += 1
            start = request.end
            if size >= BATCH_BYTES:
                transport.writelines(answers)  # may pause writing: the loop stops then
                answers.clear()
                size = 0
                self._last = self._loop.time()
        self._buffer = buffer[start:] if start else buffer
        if answers:
            transport.writelines(answers)
            self._last = self._loop.time()

    def _relay_one(self, transport: asyncio.Transport, request: Search | Other, data: bytes) -> None:
        """Have aiohttp answer ``data``, one request's bytes; the rest waits until it has."""
        relay = self._relay
        if relay is None:
            handler = self._http()
            assert isinstance(handler, RequestHandler)
            relay = self._relay = Relay(transport, handler, self._answered, self._relay_gone)
        self._waiting = True
        relay.send(b"GET" if isinstance(request, Search) else request.method, data)

    def _answered(self, go_on: bool) -> None:
        """aiohttp's answer is whole (called while it writes: the rest waits for the loop)."""
        self._waiting = False
        self._last = self._loop.time()
        if not go_on:
            self._closing = True
        self._loop.call_soon(self._go_on)

    def _go_on(self) -> None:
        transport = self._transport
        if transport is None or self._waiting:
            return
        if self._closing:
            transport.close()
            return
        if not self._paused:
            transport.resume_reading()
            if self._buffer:
                self.data_received(b"")

    def _relay_gone(self) -> None:
        self._relay = None

    def _hand_over(self, answers: list[bytes], rest: bytes) -> None:
        """Write the answers so far, then give the connection to aiohttp from ``rest`` on."""
        transport = self._transport
        assert transport is not None
        if answers:
            transport.writelines(answers)
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.lost(None)  # its handler answers nothing now: let it go
        self._forget()
        protocol = self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(rest)

    def pause_writing(self) -> None:
        # The client does not read its answers: answer and read no more requests until it does.
        self._paused = True
        if self._relay is not None and self._relay.handler is not None:
            self._relay.handler.pause_writing()
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_writing(self) -> None:
        self._paused = False
        if self._relay is not None and self._relay.handler is not None:
            self._relay.handler.resume_writing()
        self._go_on()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        relay, self._relay = self._relay, None
        self._forget()
        if relay is not None:
            relay.lost(exc)

    def close(self) -> None:
        """Close the connection once what it was answered is written; while aiohttp answers a
        request on it, once that answer is whole (the runner's shutdown waits for it)."""
        self._closing = True
        if self._transport is not None and not self._waiting:
            self._transport.close()

    def _check_idle(self) -> None:
        idle = self._loop.time() - self._last
        if not self._waiting and idle >= self._keepalive_s:
            self._timer = None
            self.close()
        else:
            self._timer = self._loop.call_later(max(self._keepalive_s - idle, 1.0), self._check_idle)

    def _forget(self) -> None:
        self._transport = None
        self._live.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class ApiSite(ProtocolSite):
    """geo-api's site: on a read instance, each connection starts as :class:`Searches`; on a
    write instance (no searches), as aiohttp's.

    Args:
        keepalive_s: seconds a connection may stay without an answer (:data:`KEEPALIVE_S`).
        (the others as :class:`~geo_common.site.ProtocolSite`'s)
    """

    __slots__ = ("_live", "_served", "_keepalive_s")

    def __init__(
        self,
        runner: web.BaseRunner,
        host: str,
        port: int,
        *,
        reuse_port: bool = False,
        backlog: int = 128,
        keepalive_s: float = KEEPALIVE_S,
    ) -> None:
        super().__init__(runner, host, port, reuse_port=reuse_port, backlog=backlog)
        self._live: set[Searches] = set()
        self._served: _Served | None = None
        self._keepalive_s = keepalive_s

    def connection(self, app: web.Application, http: HttpFactory) -> asyncio.Protocol:
        if not app[role_key].reads:
            return http()
        if self._served is None:
            self._served = _Served(app)
        return Searches(self._served, http, self._live, self._keepalive_s)

    @property
    def searching(self) -> int:
        """How many connections are this site's own now (not yet handed to aiohttp)."""
        return len(self._live)

    async def stop(self) -> None:
        await super().stop()
        for connection in list(self._live):
            connection.close()
