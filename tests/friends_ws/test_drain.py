"""Gentle drains: on SIGTERM a real ``geo-friends`` process hands its clients to another
instance in waves over GEO_WS_DRAIN_S, and nothing of its users is lost."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from websockets.exceptions import ConnectionClosed

from friends_ws.drain import close_times
from geo_common.settings import Settings
from geo_common.tokens import mint_token
from tests.friends_ws.test_asyncapi import Document
from tests.friends_ws.ws_helpers import NEAR, SF, TIMEOUT_FACTOR, WAIT, Client, Server, connect_user, new_user
from tests.ports import free_port

REPO = Path(__file__).resolve().parents[2]
#: The drain window of the tests, seconds.
WINDOW_S = 3.0


def test_close_times_give_each_slice_of_the_window_one_close() -> None:
    rng = random.Random(7)
    times = close_times(30, 3.0, rng)
    assert len(times) == 30 and all(0.0 <= t < 3.0 for t in times)
    assert sorted(int(t / 0.1) for t in times) == list(range(30))  # one per 0.1 s slice
    assert times != sorted(times)  # shuffled: the order of connections says nothing
    assert close_times(0, 3.0, rng) == []
    assert close_times(1, 0.0, rng) == [0.0]


class FriendsProcess:
    """A real ``geo-friends`` on a free port, over the tests' database and Redis namespace."""

    def __init__(self, settings: Settings, stack_env: dict[str, str], drain_s: float) -> None:
        self.port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("GEO_")}
        self.env.update(
            stack_env,
            GEO_ENV_FILE=os.devnull,
            GEO_PG_PRIMARY=settings.pg_primary,
            GEO_PG_REPLICAS=",".join(settings.pg_replicas),
            GEO_REDIS_NAMESPACE=settings.redis_namespace,
            GEO_JWT_SECRET=settings.jwt_secret,
            GEO_WS_MAX_UPDATES_PER_S="50",
            GEO_WS_DRAIN_S=str(drain_s),
            GEO_LOG_LEVEL="warning",
        )
        self.proc: asyncio.subprocess.Process | None = None
        # What connect_user needs of a server.
        self.url = f"ws://127.0.0.1:{self.port}/v1/friends/ws"
        self.http = f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "friends_ws", "--port", str(self.port), cwd=REPO, env=self.env
        )
        deadline = time.monotonic() + 30 * TIMEOUT_FACTOR
        while not await self._ready():
            assert self.proc.returncode is None, "geo-friends exited at start-up"
            assert time.monotonic() < deadline, "geo-friends did not become ready"
            await asyncio.sleep(0.1)

    async def _ready(self) -> bool:
        try:
            return (await _answer(f"{self.http}/readyz"))[0] == 200
        except aiohttp.ClientError:
            return False

    def terminate(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)

    async def exited(self, timeout_s: float) -> int:
        assert self.proc is not None
        return await asyncio.wait_for(self.proc.wait(), timeout_s * TIMEOUT_FACTOR)

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@pytest.fixture
async def process(settings: Settings, stack_env: dict[str, str]) -> AsyncIterator[Callable[..., Awaitable[Any]]]:
    started: list[FriendsProcess] = []

    async def start(drain_s: float) -> FriendsProcess:
        proc = FriendsProcess(settings, stack_env, drain_s)
        started.append(proc)
        await proc.start()
        return proc

    yield start
    for proc in started:
        await proc.stop()


@dataclass
class Drained:
    """One client of the draining instance: what it saw until closed, then its reconnection."""

    client: Client
    frames: list[dict[str, Any]] = field(default_factory=list)
    reconnect_at: float | None = None
    closed_at: float | None = None
    close_code: int | None = None
    back: Client | None = None
    #: What the client showed when closed (friend -> updated_at), and what the resume sent.
    held: dict[str, int] = field(default_factory=dict)
    caught_up: list[dict[str, Any]] = field(default_factory=list)

    async def read_until_closed(self) -> None:
        try:
            async for raw in self.client.ws:
                frame = orjson.loads(raw)
                self.frames.append(frame)
                if frame["type"] == "reconnect":
                    self.reconnect_at = time.monotonic()
        except ConnectionClosed:
            pass
        self.closed_at = time.monotonic()
        self.close_code = self.client.ws.close_code

    async def come_back(self, server: Server, settings: Settings, point: tuple[float, float]) -> None:
        """Read until closed, then reconnect to ``server`` at once and resume, as a client does."""
        await self.read_until_closed()
        at = 0
        for frame in [*self.client.received, *self.frames]:
            if frame["type"] == "init":
                self.held, at = {str(f["user_id"]): f["updated_at"] for f in frame["friends"]}, frame["at"]
            elif frame["type"] == "friend_location":
                self.held[str(frame["user_id"])], at = frame["updated_at"], max(at, frame["updated_at"])
            elif frame["type"] == "friend_left":
                self.held.pop(str(frame["user_id"]), None)
        self.back = await connect_user(server, settings, self.client.user_id)
        await self.back.location(*point, resume={"at": at, "friends": self.held})
        await self.back.expect("resumed")
        self.caught_up = [f for f in await self.back.quiet(0.3) if f["type"].startswith("friend_")]


async def _answer(url: str, **headers: str) -> tuple[int, str | None]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers) as resp:
        return resp.status, resp.headers.get("Retry-After")


async def test_a_drained_instance_hands_every_client_to_another_in_waves(  # type: ignore[no-untyped-def]
    process, servers, befriend, ws_settings: Settings
) -> None:
    """30 clients in 15 pairs of friends on instance A, each pair watched by a friend on B."""
    one: FriendsProcess = await process(WINDOW_S)
    two: Server = await servers()
    async with aiohttp.ClientSession() as http, http.get(f"{two.http}/asyncapi.json") as resp:
        document = Document(await resp.json())
    pairs = [(new_user(), new_user(), new_user()) for _ in range(15)]
    await befriend(*[(a, b) for a, b, _ in pairs], *[(a, w) for a, _, w in pairs], *[(b, w) for _, b, w in pairs])
    drained: dict[int, Drained] = {}
    watchers: dict[int, Client] = {}
    readers: list[asyncio.Task[None]] = []
    try:
        for a, b, w in pairs:
            for user, point in ((a, SF), (b, NEAR)):
                client = await connect_user(one, ws_settings, user)  # type: ignore[arg-type]
                await client.location(*point)
                await client.expect("init")
                drained[user] = Drained(client)
            watchers[w] = watcher = await connect_user(two, ws_settings, w)
            await watcher.location(*SF)
            init = await watcher.expect("init")
            assert {f["user_id"] for f in init["friends"]} == {a, b}
        points = {user: point for a, b, _ in pairs for user, point in ((a, SF), (b, NEAR))}
        readers = [asyncio.create_task(d.come_back(two, ws_settings, points[u])) for u, d in drained.items()]
        await asyncio.sleep(0.2)

        signalled = time.monotonic()
        one.terminate()
        # At once: not ready, and new handshakes are sent elsewhere.
        await asyncio.sleep(0.3)
        assert (await _answer(f"{one.http}/readyz"))[0] == 503
        token = mint_token(ws_settings.jwt_secret, pairs[0][0])
        assert await _answer(f"{one.http}/v1/friends/ws", Authorization=f"Bearer {token}") == (503, "1")
        await asyncio.wait_for(asyncio.gather(*readers), (WINDOW_S + WAIT) * TIMEOUT_FACTOR)
        assert await one.exited(WAIT) == 0

        for user, d in drained.items():
            reconnects = [f for f in d.frames if f["type"] == "reconnect"]
            assert len(reconnects) == 1, (user, d.frames)
            for frame in d.frames:
                document.server_message(frame)
            after_s = reconnects[0]["after_ms"] / 1000
            assert 0 <= after_s <= WINDOW_S
            assert d.close_code == 1001
            assert d.reconnect_at is not None and d.closed_at is not None
            # Closed when announced (not before; later only by what a busy machine adds).
            assert d.closed_at - d.reconnect_at >= after_s - 0.3, (after_s, d.closed_at - d.reconnect_at)
        closes = sorted(d.closed_at for d in drained.values() if d.closed_at is not None)
        assert closes[-1] - closes[0] >= WINDOW_S / 2, "the closes came in one burst"
        assert closes[-1] - signalled < WINDOW_S + 2 * TIMEOUT_FACTOR

        # Everyone came back on B as soon as closed and resumed: sent only a friend whose
        # position changed meanwhile (the partner who came back first published again),
        # never one it held as it was, never a departure: nothing lost, nothing twice.
        for a, b, w in pairs:
            for user, friend in ((a, b), (b, a)):
                d = drained[user]
                assert set(d.held) == {str(friend), str(w)}, (user, d.held)
                assert all(f["type"] == "friend_location" and f["user_id"] == friend for f in d.caught_up), d.caught_up
                assert all(f["updated_at"] != d.held[str(friend)] for f in d.caught_up)
        # The watchers never saw a drained friend go offline.
        for w, watcher in watchers.items():
            await watcher.quiet(0.3)
            assert not [f for f in watcher.received if f["type"] == "friend_left"], (w, watcher.received)
    finally:
        for reader in readers:
            reader.cancel()
        for client in [*watchers.values(), *(d.back or d.client for d in drained.values())]:
            await client.close()


async def test_without_a_drain_every_client_is_closed_at_once(  # type: ignore[no-untyped-def]
    process, servers, befriend, ws_settings: Settings
) -> None:
    """GEO_WS_DRAIN_S=0: the old shutdown, all closed with 1001 at once; friends keep their last
    positions (no friend_left), and nobody watches the friend any more (its pace slows)."""
    one: FriendsProcess = await process(0)
    two: Server = await servers()
    users = [new_user() for _ in range(5)]
    w = new_user()
    await befriend(*[(u, w) for u in users])
    drained = []
    for user in users:
        client = await connect_user(one, ws_settings, user)  # type: ignore[arg-type]
        await client.location(*SF)
        await client.expect("init")
        drained.append(Drained(client))
    watcher = await connect_user(two, ws_settings, w)
    try:
        await watcher.location(*NEAR)
        await watcher.expect("init")
        readers = [asyncio.create_task(d.read_until_closed()) for d in drained]
        one.terminate()
        await asyncio.wait_for(asyncio.gather(*readers), WAIT)
        assert await one.exited(WAIT) == 0
        assert all(d.close_code == 1001 and d.reconnect_at is None for d in drained)
        closes = sorted(d.closed_at for d in drained if d.closed_at is not None)
        assert closes[-1] - closes[0] < 1.0 * TIMEOUT_FACTOR
        await watcher.expect("pace", interval_s=ws_settings.pace_slow_s)
        assert not [f for f in await watcher.quiet(0.5) if f["type"] == "friend_left"]
    finally:
        await watcher.close()
