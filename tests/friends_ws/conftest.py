"""Fixtures of the friends tier's tests: app servers on port 0 with short timers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from geo_common import friends_db
from geo_common.database_node import replicas_replayed
from geo_common.settings import Settings
from geo_common.tokens import mint_token
from location_api.app import create_app
from tests.friends_ws.consent_helpers import Publisher
from tests.friends_ws.ws_helpers import NEAR, SF, TIMEOUT_FACTOR, Client, Server, connect_user, new_user, start_server
from tests.pubsub.conftest import redis_bins, throwaway_redis  # noqa: F401 - shared fixtures

ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
def ws_settings(settings: Settings) -> Settings:
    """The session's settings with timers short enough for tests."""
    return replace(
        settings,
        ws_ping_interval_s=5.0,
        history_flush_ms=50,
        history_flush_rows=500,
        ws_max_updates_per_s=50.0,
        pubsub_probe_s=2.0,
        friend_radius_m=8047.0,
        friend_hysteresis_m=200.0,
    )


@pytest.fixture
async def servers(ws_settings: Settings) -> AsyncIterator[ServerFactory]:
    """Start app servers (``await servers(**overrides)``); all are stopped after the test."""
    started: list[Server] = []

    async def start(**overrides: Any) -> Server:
        server = await start_server(replace(ws_settings, **overrides))
        started.append(server)
        return server

    yield start
    for server in reversed(started):
        await server.stop()


@pytest.fixture
async def clients() -> AsyncIterator[list[Client]]:
    """Clients a test opened (through :func:`connect`); closed after the test."""
    opened: list[Client] = []
    yield opened
    for client in opened:
        await client.close()


@pytest.fixture
def connect(clients: list[Client], ws_settings: Settings) -> Callable[..., Awaitable[Client]]:
    async def open_client(server: Server, user_id: int, **kwargs: Any) -> Client:
        client = await connect_user(server, ws_settings, user_id, **kwargs)
        clients.append(client)
        return client

    return open_client


@pytest.fixture
async def primary(settings: Settings) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(settings.pg_primary)
    yield conn
    await conn.close()


@pytest.fixture
def befriend(primary: asyncpg.Connection, settings: Settings) -> Callable[..., Awaitable[None]]:
    """Make pairs of users friends directly in the database (before they connect).

    Sessions read what friends share on the primary; geo-api lists friends from a replica,
    so this also waits until every replica has them.
    """

    async def make(*pairs: tuple[int, int]) -> None:
        for a, b in pairs:
            await friends_db.add_friendship(primary, a, b)
        await replicas_replayed(settings.pg_primary, settings.pg_replicas, timeout_s=10 * TIMEOUT_FACTOR)

    return make


@pytest.fixture
async def publisher(ws_settings: Settings) -> AsyncIterator[Publisher]:
    """Publishes what geo-api would (an :class:`~geo_common.announcements.Announcer`'s publications)."""
    pub = Publisher(ws_settings)
    yield pub
    await pub.close()


Pair = tuple[int, int, Client, Client]


@pytest.fixture
def in_view(
    connect: Callable[..., Awaitable[Client]], befriend: Callable[..., Awaitable[None]]
) -> Callable[..., Awaitable[Pair]]:
    """``await in_view(server)``: two new friends, Alice at SF and Bob at NEAR (1.4 km away),
    both connected to ``server``, Alice has her ``init`` and Bob's first ``friend_location``.

    Returns (a, b, alice, bob).
    """

    async def make(server: Server) -> Pair:
        a, b = new_user(), new_user()
        await befriend((a, b))
        alice, bob = await connect(server, a), await connect(server, b)
        await alice.location(*SF)
        await alice.expect("init")
        await bob.location(*NEAR)
        await alice.expect("friend_location", user_id=b)
        return a, b, alice, bob

    return make


@pytest.fixture
def online(connect: Callable[..., Awaitable[Client]]) -> Callable[..., Awaitable[Pair]]:
    """``await online(one, two)``: two new users who are not friends yet, Alice at SF on server
    ``one`` and Bob at NEAR on server ``two``, each with their ``init``. Returns (a, b, alice, bob)."""

    async def make(one: Server, two: Server) -> Pair:
        a, b = new_user(), new_user()
        alice, bob = await connect(one, a), await connect(two, b)
        await alice.location(*SF)
        await alice.expect("init")
        await bob.location(*NEAR)
        await bob.expect("init")
        return a, b, alice, bob

    return make


Api = Callable[..., Awaitable[tuple[int, Any]]]


async def _api_server(settings: Settings) -> tuple[TestServer, aiohttp.ClientSession, Api]:
    server = TestServer(create_app(replace(settings, api_role="all")), host="127.0.0.1")
    await server.start_server()
    http = aiohttp.ClientSession()
    base = str(server.make_url("")).rstrip("/")

    async def call(method: str, path: str, user: int, body: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {mint_token(settings.jwt_secret, user)}"}
        async with http.request(method, base + path, headers=headers, json=body) as resp:
            return resp.status, await resp.json() if resp.content_type.endswith("json") else None

    return server, http, call


@pytest.fixture
async def api_for() -> AsyncIterator[Callable[[Settings], Awaitable[Api]]]:
    """``await api_for(settings)``: a geo-api (role all) with these settings; closed after the test."""
    opened: list[tuple[TestServer, aiohttp.ClientSession]] = []

    async def start(settings: Settings) -> Api:
        server, http, call = await _api_server(settings)
        opened.append((server, http))
        return call

    yield start
    for server, http in opened:
        await http.close()
        await server.close()
