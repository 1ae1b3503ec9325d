"""A listening site whose connections start with a protocol of the service's own.

aiohttp's :class:`~aiohttp.web.TCPSite` gives every accepted connection to its request
handler. A service that answers some requests below aiohttp's request layer (geo-friends its
WebSockets, :mod:`friends_ws.site`; geo-api its plain searches, :mod:`location_api.site`)
starts each connection with a protocol of its own instead, which hands the connection to
aiohttp's protocol (``http()``, bytes read included) for everything else.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from aiohttp import web

#: aiohttp's protocol factory: a new request handler for one connection.
HttpFactory = Callable[[], asyncio.Protocol]


class ProtocolSite(web.BaseSite):
    """A TCP site (as :class:`aiohttp.web.TCPSite`) whose connections start as
    :meth:`connection` says.

    Args:
        runner: the app's runner, set up.
        host: the address to bind.
        port: the port (0: any free one, see :attr:`port`).
        reuse_port: bind with ``SO_REUSEPORT`` (several processes on one port).
        backlog: the listen queue's length.
    """

    __slots__ = ("_host", "_port", "_reuse_port")

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, *, reuse_port: bool = False, backlog: int = 128
    ) -> None:
        super().__init__(runner, backlog=backlog)
        self._host = host
        self._port = port
        self._reuse_port = reuse_port

    def connection(self, app: web.Application, http: HttpFactory) -> asyncio.Protocol:
        """The protocol a new connection starts with."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def port(self) -> int:
        """The port bound (the one chosen, when 0 was asked)."""
        sockets: list[socket.socket] = getattr(self._server, "sockets", None) or []
        if not sockets:
            raise RuntimeError("the site is not started")
        return int(sockets[0].getsockname()[1])

    async def start(self) -> None:
        await super().start()
        runner = self._runner
        http, app = runner.server, getattr(runner, "app", None)
        if http is None or not isinstance(app, web.Application):
            raise RuntimeError(f"{type(self).__name__} serves an AppRunner that is set up")
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: self.connection(app, http),
            self._host,
            self._port,
            backlog=self._backlog,
            reuse_address=True,
            reuse_port=self._reuse_port or None,
        )
