"""Helpers of the friends tier's tests: real app servers on port 0 and WebSocket clients."""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Callable
from typing import Any

import orjson
from websockets.exceptions import ConnectionClosed
from aiohttp import web
from websockets.asyncio.client import ClientConnection, connect
from websockets.typing import Subprotocol

from friends_ws.app import create_app
from friends_ws.site import FriendsSite
from friends_ws.keys import hub_key
from geo_common.serve import RUNNER_OPTIONS
from geo_common.settings import Settings
from geo_common.tokens import mint_token

#: Multiply every wait by this on a slow machine (the same variable as the root conftest).
TIMEOUT_FACTOR = float(os.environ.get("GEO_TEST_TIMEOUT_FACTOR", "1"))
WAIT = 5.0 * TIMEOUT_FACTOR

_ids = itertools.count(random.randrange(10**9, 2 * 10**9, 10**5))


def new_user() -> int:
    """A user id no other test of this session uses."""
    return next(_ids)


#: Two points in San Francisco about 1.4 km apart: friends there are in range of each other.
SF = (37.7749, -122.4194)
NEAR = (37.7849, -122.4094)


class Server:
    """One WebSocket-tier app on a free port."""

    def __init__(self, app: web.Application, runner: web.AppRunner, port: int) -> None:
        self.app = app
        self.runner = runner
        self.port = port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/friends/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def hub(self) -> Any:
        return self.app[hub_key]

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_server(settings: Settings) -> Server:
    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=5.0, **RUNNER_OPTIONS)
    await runner.setup()
    site = FriendsSite(runner, "127.0.0.1", 0)
    await site.start()
    return Server(app, runner, site.port)


class Client:
    """A test client: sends dicts, and waits for frames matching a condition."""

    def __init__(self, ws: ClientConnection, user_id: int) -> None:
        self.ws = ws
        self.user_id = user_id
        #: Frames received and not returned by :meth:`expect` yet.
        self.frames: list[dict[str, Any]] = []
        #: Every frame received, in order.
        self.received: list[dict[str, Any]] = []
        self._seen = 0

    async def send(self, **message: Any) -> None:
        await self.ws.send(orjson.dumps(message).decode())

    async def opened(self) -> None:
        """Wait until the server's session is open (subscribed to the user's control channel):
        frames are read only then, so the answer to a bad one shows it."""
        await self.send(type="no-such-frame")
        await self.expect("error")

    async def location(self, latitude: float, longitude: float, **extra: Any) -> None:
        await self.send(type="location", latitude=latitude, longitude=longitude, **extra)

    async def _read(self, timeout: float) -> dict[str, Any]:
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        frame: dict[str, Any] = orjson.loads(raw)
        self.frames.append(frame)
        self.received.append(frame)
        return frame

    async def expect(
        self, predicate: Callable[[dict[str, Any]], bool] | str, timeout: float = WAIT, **fields: Any
    ) -> dict[str, Any]:
        """The next frame (not returned before) that matches: a type name plus field values, or a predicate."""
        if isinstance(predicate, str):
            kind = predicate
            predicate = lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())  # noqa: E731
        deadline = time.monotonic() + timeout
        while True:
            for i in range(self._seen, len(self.frames)):
                if predicate(self.frames[i]):
                    frame = self.frames.pop(i)
                    return frame
            self._seen = len(self.frames)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"user {self.user_id}: no matching frame; got {self.frames}")
            try:
                await self._read(left)
            except TimeoutError:
                raise AssertionError(
                    f"user {self.user_id}: no matching frame within {timeout} s; got {self.frames}"
                ) from None

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Whatever arrives within ``seconds`` (to check that nothing does)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                await self._read(left)
            except TimeoutError:
                break
        new = self.frames[self._seen :]
        self._seen = len(self.frames)
        return new

    async def close(self) -> None:
        await self.ws.close()

    async def closed(self, timeout: float = WAIT) -> int | None:
        """Read until the server closes the connection; its close code."""
        deadline = time.monotonic() + timeout
        try:
            while (left := deadline - time.monotonic()) > 0:
                await self._read(left)
        except ConnectionClosed:
            return self.ws.close_code
        raise AssertionError(f"user {self.user_id}: still open after {timeout} s")


async def connect_user(
    server: Server, settings: Settings, user_id: int, *, subprotocol: bool = False, token: str | None = None
) -> Client:
    """Connect as ``user_id`` with a fresh token (or ``token``): in the ``Authorization`` header,
    or, with ``subprotocol``, as a browser does (subprotocols ``geo.v1`` and ``bearer.<token>``)."""
    token = token or mint_token(settings.jwt_secret, user_id)
    # Frames wait unread until a test expects them: an unbounded queue keeps the client reading
    # its socket meanwhile, so it answers the server's pings as a phone's app does (websockets
    # stops reading after 16 unread messages, and a silent client is dropped after 1.5 pings).
    if subprotocol:
        ws = await connect(
            server.url,
            subprotocols=[Subprotocol("geo.v1"), Subprotocol(f"bearer.{token}")],
            compression=None,
            open_timeout=WAIT,
            max_queue=None,
        )
    else:
        ws = await connect(
            server.url,
            additional_headers={"Authorization": f"Bearer {token}"},
            compression=None,
            open_timeout=WAIT,
            max_queue=None,
        )
    return Client(ws, user_id)
