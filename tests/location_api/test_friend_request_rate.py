"""Friend requests per minute: beyond ``GEO_MAX_FRIEND_REQUESTS_PER_MIN`` a user's requests are
refused (429) before anything is stored or announced; admins and other users are not held up.

The real geo-api (role ``all``) on port 0 over the session's database and Redis, with a limit
of three; what it announces is read back from the session's real pub/sub.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import asyncpg
import orjson
import pytest
import redis.asyncio as aioredis
from aiohttp.test_utils import TestServer

from geo_common.presence import control_channel
from geo_common.regions import RegionMap
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.app import create_app
from pubsub import create_pubsub
from tests.conftest import TIMEOUT_FACTOR
from tests.friends_ws.ws_helpers import new_user

LIMIT = 3
ADMIN = 1


@pytest.fixture
async def limited(settings: Settings) -> AsyncIterator[tuple[str, Settings]]:
    """geo-api with a limit of three friend requests a minute: its base URL and settings."""
    small = replace(settings, api_role="all", max_friend_requests_per_min=LIMIT)
    server = TestServer(create_app(small), host="127.0.0.1")
    await server.start_server()
    try:
        yield str(server.make_url("")).rstrip("/"), small
    finally:
        await server.close()


async def ask(
    http: aiohttp.ClientSession, base: str, settings: Settings, a: int, b: int, *, admin: bool = False
) -> tuple[int, Any, Mapping[str, str]]:
    """``a`` asks ``b`` (with ``a``'s token, or an admin's): (status, body, headers)."""
    token = mint_token(settings.jwt_secret, ADMIN if admin else a, Role.ADMIN if admin else Role.USER)
    async with http.post(f"{base}/v1/users/{a}/friends/{b}", headers={"Authorization": f"Bearer {token}"}) as resp:
        return resp.status, orjson.loads(await resp.read()), resp.headers


async def test_requests_beyond_the_limit_are_refused_unstored_and_unannounced(
    limited: tuple[str, Settings],
) -> None:
    base, settings = limited
    asker, late, other = new_user(), new_user(), new_user()
    asked = [new_user() for _ in range(LIMIT)]
    region = RegionMap.from_settings(settings).default
    heard: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    bus = create_pubsub(
        region.pubsub_backend,
        region.pubsub_nodes,
        on_message=lambda channel, data: heard.put_nowait((channel, orjson.loads(data))),
    )
    await bus.start()
    primary = await asyncpg.connect(settings.pg_primary)
    try:
        late_channel = control_channel(settings.redis_namespace, region.name, late)
        await bus.subscribe([late_channel])
        async with aiohttp.ClientSession() as http:
            for friend in asked:
                status, body, _ = await ask(http, base, settings, asker, friend)
                assert (status, body["state"]) == (202, "requested"), body

            status, problem, headers = await ask(http, base, settings, asker, late)
            assert status == 429, problem
            assert headers["Content-Type"].startswith("application/problem+json")
            assert problem["type"] == "/problems/too-many-requests"
            assert [e["field"] for e in problem["errors"]] == ["id"]
            assert 1 <= int(headers["Retry-After"]) <= 60
            # Asking again does not get through either: every attempt counts.
            assert (await ask(http, base, settings, asker, late))[0] == 429

            # Nothing stored: the three requests only.
            stored = await primary.fetch("SELECT to_id FROM friend_requests WHERE from_id = $1", asker)
            assert sorted(r["to_id"] for r in stored) == sorted(asked)

            # Nothing announced: the first message on late's channel is another user's request.
            assert (await ask(http, base, settings, other, late))[0] == 202
            channel, message = await asyncio.wait_for(heard.get(), 5 * TIMEOUT_FACTOR)
            assert (channel, message["t"], message["u"]) == (late_channel, "request", other)

            # An admin is not limited, acting for the same user.
            status, body, _ = await ask(http, base, settings, asker, late, admin=True)
            assert (status, body["state"]) == (201, "friends"), body
    finally:
        await primary.close()
        await bus.close()


async def test_the_window_is_per_user_and_expires(limited: tuple[str, Settings]) -> None:
    base, settings = limited
    first, second = new_user(), new_user()
    async with aiohttp.ClientSession() as http:
        assert [(await ask(http, base, settings, first, new_user()))[0] for _ in range(LIMIT + 1)] == [202] * LIMIT + [
            429
        ]
        assert (await ask(http, base, settings, second, new_user()))[0] == 202  # another user's window

        # The window is a counter that expires: once it has, the user may ask again.
        region = RegionMap.from_settings(settings).default
        redis = aioredis.Redis.from_url(region.redis_url)
        try:
            key = f"{settings.redis_namespace}:api:friend-requests:{first}"
            assert 0 < await redis.ttl(key) <= 60
            await redis.pexpire(key, 1)
            await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
        assert (await ask(http, base, settings, first, new_user()))[0] == 202


async def test_accepting_a_request_is_not_counted(limited: tuple[str, Settings]) -> None:
    base, settings = limited
    popular = new_user()
    askers = [new_user() for _ in range(LIMIT + 2)]
    async with aiohttp.ClientSession() as http:
        for asker in askers:
            assert (await ask(http, base, settings, asker, popular))[0] == 202
        # More acceptances than the limit allows requests: each asks nothing of anyone.
        for asker in askers:
            status, body, _ = await ask(http, base, settings, popular, asker)
            assert (status, body["state"]) == (201, "friends"), body
        # The window is untouched: the user can still ask LIMIT new people.
        assert [(await ask(http, base, settings, popular, new_user()))[0] for _ in range(LIMIT + 1)] == [
            202
        ] * LIMIT + [429]
