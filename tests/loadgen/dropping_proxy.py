"""A WebSocket proxy for load-generator tests that loses one user's deliveries on purpose.

It stands between ``geo-loadgen friends`` and a real ``geo-friends`` server, passes every
frame through, except the ``friend_location`` frames about ``victim``, which it counts and
drops, as a subscriber that loses messages would.
"""

from __future__ import annotations

import asyncio

import aiohttp
import orjson
from aiohttp import web


class DroppingProxy:
    """Serve ``/healthz`` and ``/v1/friends/ws`` on 127.0.0.1 (port 0), forwarding to ``upstream``
    (a refused handshake too)."""

    def __init__(self, upstream_http: str, victim: int) -> None:
        self.upstream = upstream_http.rstrip("/")
        self.victim = victim
        self.dropped = 0
        self.passed = 0
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> DroppingProxy:
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

    async def _health(self, _request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {"Authorization": request.headers.get("Authorization", "")}
        try:
            upstream = await self._session.ws_connect(
                self.upstream.replace("http", "ws", 1) + "/v1/friends/ws", headers=headers, autoping=True
            )
        except aiohttp.WSServerHandshakeError as exc:  # refused (401 without a token): say so, as upstream did
            challenge = (exc.headers or {}).get("WWW-Authenticate")
            return web.Response(status=exc.status, headers={"WWW-Authenticate": challenge} if challenge else None)
        client = web.WebSocketResponse(autoping=True)
        await client.prepare(request)

        async def down() -> None:  # server -> client, losing the victim's deliveries
            async for msg in upstream:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frame = orjson.loads(msg.data)
                if frame.get("type") == "friend_location" and frame.get("user_id") == self.victim:
                    self.dropped += 1
                    continue
                self.passed += 1
                await client.send_str(msg.data)

        async def up() -> None:  # client -> server, untouched
            async for msg in client:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                await upstream.send_str(msg.data)

        tasks = [asyncio.create_task(down()), asyncio.create_task(up())]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await upstream.close()
        await client.close()
        return client
