"""A WebSocket proxy for load-generator tests that forces reconnections and re-sends positions.

It stands between ``geo-loadgen friends`` and a real ``geo-friends`` server and passes every
frame through. :meth:`ReplayingProxy.drop_all` cuts every client connection at once (an
abrupt drop, as a network failure makes). When a user connects again, the proxy first sends
the last ``friend_location`` of each friend it passed to that user before, as a server that
re-synchronises a reconnecting client would: positions the client already has.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web


class ReplayingProxy:
    """Serve ``/healthz`` and ``/v1/friends/ws`` on 127.0.0.1 (port 0), forwarding to ``upstream``."""

    def __init__(self, upstream_http: str) -> None:
        self.upstream = upstream_http.rstrip("/")
        self.port = 0
        self.dropped = 0  # client connections cut by drop_all
        self.replayed = 0  # frames re-sent on reconnections
        #: by the Authorization header (one per user): friend id -> the last friend_location frame
        self._last: dict[str, dict[int, str]] = {}
        self._open: dict[int, web.Request] = {}  # by id(): requests are not hashable
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> ReplayingProxy:
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

    def drop_all(self) -> None:
        """Cut every client connection now, without a close frame."""
        for request in list(self._open.values()):
            if request.transport is not None:
                request.transport.abort()
                self.dropped += 1

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
        upstream = await self._session.ws_connect(
            self.upstream.replace("http", "ws", 1) + "/v1/friends/ws", headers={"Authorization": user}
        )
        client = web.WebSocketResponse()
        await client.prepare(request)
        last = self._last.setdefault(user, {})
        for frame in list(last.values()):  # what this user was shown before: sent again first
            await client.send_str(frame)
            self.replayed += 1
        self._open[id(request)] = request

        async def down() -> None:  # server -> client, remembering the friends' positions
            async for msg in upstream:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await client.send_str(msg.data)
                frame = orjson.loads(msg.data)
                if frame.get("type") == "friend_location":
                    last[int(frame["user_id"])] = msg.data

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
