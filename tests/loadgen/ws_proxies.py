"""WebSocket proxies for load-generator tests, each misbehaving in one way on purpose.

A proxy stands between ``geo-loadgen friends`` and a real ``geo-friends`` server and relays
every frame both ways; :class:`RelayProxy` does only that. Its subclasses change what reaches
the client: :class:`DroppingProxy` loses one user's deliveries, :class:`ReplayingProxy` cuts
every connection on demand and re-sends known positions when a user comes back.
"""

from __future__ import annotations

import asyncio
from typing import Self

import aiohttp
import orjson
from aiohttp import web


class RelayProxy:
    """Serve ``/healthz`` and ``/v1/friends/ws`` on 127.0.0.1 (port 0), forwarding to ``upstream``
    (a probe and a refused handshake too)."""

    def __init__(self, upstream_http: str) -> None:
        self.upstream = upstream_http.rstrip("/")
        self.port = 0
        self._open: dict[int, web.Request] = {}  # by id(): requests are not hashable
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> Self:
        app = web.Application()
        app.router.add_get("/healthz", self._health)
        app.router.add_get("/v1/friends/ws", self._ws)
        self._session = aiohttp.ClientSession()
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    @property
    def ws_base(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def connections(self) -> int:
        return len(self._open)

    async def joined(self, user: str, client: web.WebSocketResponse) -> None:
        """Called once ``user`` (their Authorization header) is connected, before any relaying."""

    async def down(self, user: str, client: web.WebSocketResponse, data: str) -> None:
        """Pass one frame from the server to ``user``'s client."""
        await client.send_str(data)

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        user = request.headers.get("Authorization", "")
        if not user:  # a probe of what serves here (geo-loadgen's): answered as upstream answers it
            async with self._session.get(self.upstream + "/v1/friends/ws") as resp:
                challenge = resp.headers.get("WWW-Authenticate")
                return web.Response(
                    status=resp.status,
                    text=await resp.text(),
                    headers={"WWW-Authenticate": challenge} if challenge else None,
                )
        try:
            upstream = await self._session.ws_connect(
                self.upstream.replace("http", "ws", 1) + "/v1/friends/ws", headers={"Authorization": user}
            )
        except aiohttp.WSServerHandshakeError as exc:  # refused (a bad token): say so, as upstream did
            challenge = exc.headers.get("WWW-Authenticate") if exc.headers else None
            return web.Response(status=exc.status, headers={"WWW-Authenticate": challenge} if challenge else None)
        client = web.WebSocketResponse()
        await client.prepare(request)
        await self.joined(user, client)
        self._open[id(request)] = request

        async def down() -> None:  # server -> client, as the proxy's kind says
            async for msg in upstream:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await self.down(user, client, msg.data)

        async def up() -> None:  # client -> server, untouched
            async for msg in client:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await upstream.send_str(msg.data)

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._open.pop(id(request), None)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await upstream.close()
            await client.close()
        return client


class DroppingProxy(RelayProxy):
    """Drops the ``friend_location`` frames about ``victim`` and counts them, as a subscriber that
    loses messages would; passes every other frame."""

    def __init__(self, upstream_http: str, victim: int) -> None:
        super().__init__(upstream_http)
        self.victim = victim
        self.dropped = 0
        self.passed = 0

    async def down(self, user: str, client: web.WebSocketResponse, data: str) -> None:
        frame = orjson.loads(data)
        if frame.get("type") == "friend_location" and frame.get("user_id") == self.victim:
            self.dropped += 1
            return
        self.passed += 1
        await super().down(user, client, data)


class ReplayingProxy(RelayProxy):
    """Forces reconnections and re-sends positions.

    :meth:`drop_all` cuts every client connection at once (an abrupt drop, as a network failure
    makes). When a user connects again, the proxy first sends the last ``friend_location`` of
    each friend it passed to that user before, as a server that re-synchronises a reconnecting
    client would: positions the client already has.
    """

    def __init__(self, upstream_http: str) -> None:
        super().__init__(upstream_http)
        self.dropped = 0  # client connections cut by drop_all
        self.replayed = 0  # frames re-sent on reconnections
        #: by the Authorization header (one per user): friend id -> the last friend_location frame
        self._last: dict[str, dict[int, str]] = {}

    def drop_all(self) -> None:
        """Cut every client connection now, without a close frame."""
        for request in list(self._open.values()):
            if request.transport is not None:
                request.transport.abort()
                self.dropped += 1

    async def joined(self, user: str, client: web.WebSocketResponse) -> None:
        for frame in list(self._last.setdefault(user, {}).values()):  # what this user was shown before
            await client.send_str(frame)
            self.replayed += 1

    async def down(self, user: str, client: web.WebSocketResponse, data: str) -> None:
        await super().down(user, client, data)
        frame = orjson.loads(data)  # remembering the friends' positions
        if frame.get("type") == "friend_location":
            self._last[user][int(frame["user_id"])] = data
