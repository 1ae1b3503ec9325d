"""geo-friends' listening socket: WebSockets below aiohttp, every other request through it.

aiohttp keeps, for each WebSocket it serves, the parsed request, the response, the request
handler's protocol and parser, and a task with its coroutine frames: about 12 KiB a
connection, for hours, where the tier's own state is 2-5 KiB (docs/benchmarks.md, "Memory
per connection"). So each accepted connection starts with :class:`FirstRequest`, which looks
at the first bytes only: a connection opening with ``GET /v1/friends/ws`` is handed to a
:class:`~friends_ws.connection.Connection`; any other is handed, bytes read included, to
aiohttp's own protocol, which serves the operational routes, uploads and documents as the
app's router says.

A WebSocket must therefore be a connection's first request, as browsers, mobile clients and
nginx (its WebSocket upstream keeps no idle connections) open it; a handshake on a kept-alive
connection reaches aiohttp's route, which answers 400 saying so.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from friends_ws import connection
from friends_ws.connection import Connection
from friends_ws.handshake import First, first_request
from geo_common.site import HttpFactory, ProtocolSite


class FirstRequest(asyncio.Protocol):
    """A new connection until its first bytes say who serves it.

    Args:
        app: the geo-friends app (for WebSockets).
        http: aiohttp's protocol factory (for everything else).
    """

    __slots__ = ("_app", "_http", "_transport", "_head", "_timer")

    def __init__(self, app: web.Application, http: HttpFactory) -> None:
        self._app = app
        self._http = http
        self._transport: asyncio.Transport | None = None
        self._head = b""
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        # A connection that says nothing is closed, as one that never finishes its head is.
        self._timer = asyncio.get_running_loop().call_later(connection.HEAD_TIMEOUT_S, transport.close)

    def data_received(self, data: bytes) -> None:
        head = self._head + data
        kind = first_request(head)
        if kind is First.UNSURE:
            self._head = head
            return
        transport = self._transport
        assert transport is not None
        self._stop_timer()
        protocol = Connection(self._app) if kind is First.HANDSHAKE else self._http()
        transport.set_protocol(protocol)
        protocol.connection_made(transport)
        protocol.data_received(head)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._stop_timer()

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class FriendsSite(ProtocolSite):
    """geo-friends' site: its connections start as :class:`FirstRequest`."""

    __slots__ = ()

    def connection(self, app: web.Application, http: HttpFactory) -> asyncio.Protocol:
        return FirstRequest(app, http)
