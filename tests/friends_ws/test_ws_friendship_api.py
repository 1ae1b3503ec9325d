"""The friendship endpoints of geo-api, and their effect on live WebSocket connections.

The routes are served by the real geo-api application (role ``all``), as ``geo-api`` serves them.
The HTTP contract itself (requests, lists, blocks, privacy) is tested without WebSockets in
tests/location_api/test_friend_*.py; here, what live connections see of it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from geo_common import history_db
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.app import create_app
from tests.friends_ws.ws_helpers import NEAR, SF, TIMEOUT_FACTOR, new_user
from tests.ports import free_port


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[str]:
    server = TestServer(create_app(replace(settings, api_role="all")), host="127.0.0.1")
    await server.start_server()
    yield str(server.make_url("")).rstrip("/")
    await server.close()


def auth(settings: Settings, user_id: int, role: Role = Role.USER) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings.jwt_secret, user_id, role)}"}


async def test_friends_added_and_removed_while_both_are_online(api, servers, online, settings) -> None:  # type: ignore[no-untyped-def]
    one, two = await servers(), await servers()
    a, b, alice, bob = await online(one, two)
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/v1/users/{a}/friends/{b}", headers=auth(settings, a)) as resp:
            assert resp.status == 202, await resp.text()
            assert await resp.json() == {"user_id": a, "friend_id": b, "state": "requested"}
        # Only an accepted friendship shares anything.
        assert [f for f in await alice.quiet(0.3) if f.get("type") == "friend_location"] == []
        async with http.post(f"{api}/v1/users/{b}/friends/{a}", headers=auth(settings, b)) as resp:
            assert resp.status == 201, await resp.text()
            assert await resp.json() == {"user_id": b, "friend_id": a, "state": "friends"}
            token = resp.headers["X-Consistency-Token"]
        # Within a second both live connections follow each other: the cache shows Bob at once.
        await alice.expect("friend_location", user_id=b, timeout=1.0 * TIMEOUT_FACTOR)
        await bob.expect("friend_location", user_id=a, timeout=1.0 * TIMEOUT_FACTOR)
        await bob.location(*SF)
        await alice.expect("friend_location", user_id=b)
        async with http.post(f"{api}/v1/users/{a}/friends/{b}", headers=auth(settings, a)) as resp:
            assert resp.status == 200 and (await resp.json())["state"] == "friends"
        async with http.get(
            f"{api}/v1/users/{b}/friends", headers={**auth(settings, b), "X-Consistency-Token": token}
        ) as resp:
            assert resp.status == 200
            assert [f["user_id"] for f in (await resp.json())["friends"]] == [a]  # mutual
        async with http.delete(f"{api}/v1/users/{b}/friends/{a}", headers=auth(settings, b)) as resp:
            assert resp.status == 200
            assert await resp.json() == {"user_id": b, "friend_id": a, "removed": "friendship"}
        await alice.expect("friend_left", user_id=b, reason="unfriended", timeout=1.0 * TIMEOUT_FACTOR)
        await bob.expect("friend_left", user_id=a, reason="unfriended", timeout=1.0 * TIMEOUT_FACTOR)
        async with http.delete(f"{api}/v1/users/{b}/friends/{a}", headers=auth(settings, b)) as resp:
            assert resp.status == 200  # idempotent: told again, nothing left to end
            assert (await resp.json())["removed"] == "nothing"
        await bob.location(*NEAR)
        assert [f for f in await alice.quiet(0.3) if f.get("user_id") == b] == []


async def test_only_the_user_or_an_admin_may_change_friendships(api, settings) -> None:  # type: ignore[no-untyped-def]
    a, b, c = new_user(), new_user(), new_user()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{api}/v1/users/{a}/friends/{b}") as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.post(f"{api}/v1/users/{a}/friends/{b}", headers=auth(settings, c)) as resp:
            assert resp.status == 403
            assert (await resp.json())["type"] == "/problems/forbidden"
        async with http.get(f"{api}/v1/users/{a}/friends", headers=auth(settings, c)) as resp:
            assert resp.status == 403
        async with http.post(f"{api}/v1/users/{a}/friends/{b}", headers=auth(settings, c, Role.ADMIN)) as resp:
            assert resp.status == 201  # an admin makes them friends directly
            assert (await resp.json())["state"] == "friends"
        async with http.post(f"{api}/v1/users/{a}/friends/{a}", headers=auth(settings, a)) as resp:
            assert resp.status == 400
            assert (await resp.json())["errors"][0]["field"] == "friend_id"
        async with http.post(f"{api}/v1/users/0/friends/{a}", headers=auth(settings, a)) as resp:
            assert resp.status == 400
        async with http.get(f"{api}/v1/users/{c}/friends", headers=auth(settings, c)) as resp:
            assert resp.status == 200 and (await resp.json())["friends"] == []  # never seen: no friends


async def test_erasing_locations_deletes_history_and_cache(api, servers, connect, in_view, settings, primary) -> None:  # type: ignore[no-untyped-def]
    server = await servers(history_flush_ms=20)
    a, b, alice, bob = await in_view(server)
    await bob.send(type="settings", radius_m=1000)
    await bob.expect("settings")
    for _ in range(100):  # the history writer flushes every 20 ms
        if await history_db.history_of(primary, b):
            break
        await asyncio.sleep(0.02 * TIMEOUT_FACTOR)
    assert len(await history_db.history_of(primary, b)) == 1
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{api}/v1/users/{b}/locations", headers=auth(settings, b)) as resp:
            assert resp.status == 200, await resp.text()
            body = await resp.json()
    assert body["user_id"] == b and body["history_rows_deleted"] == 1
    assert body["cached_location_deleted"] is True and body["home_region_cleared"] is True
    assert isinstance(body["instances_notified"], int)
    assert await history_db.history_of(primary, b) == []
    assert await primary.fetchval("SELECT home_region FROM users WHERE id = $1", b) is None
    await alice.expect("friend_left", user_id=b, reason="offline")
    fresh = await connect(server, a)
    await fresh.location(*SF)
    assert (await fresh.expect("init"))["friends"] == []


async def test_redis_down_friendship_writes_are_kept_and_answer_503_then_fail_fast(settings: Settings) -> None:
    import time

    from geo_common.regions import DEFAULT_REGION

    dead = f"redis://127.0.0.1:{free_port()}/0"  # a loopback port nothing listens on
    down = replace(
        settings,
        api_role="all",
        redis_url=dead,
        pubsub_backend="redis",
        regions=(),
        breaker_failures=2,
        breaker_reset_s=30.0,
    )
    server = TestServer(create_app(down), host="127.0.0.1")
    await server.start_server()
    api = str(server.make_url("")).rstrip("/")
    a, b, c = new_user(), new_user(), new_user()
    try:
        async with aiohttp.ClientSession() as http:
            for friend in (b, c):  # two requests stored but not announced: the breaker opens
                async with http.post(f"{api}/v1/users/{a}/friends/{friend}", headers=auth(settings, a)) as resp:
                    assert resp.status == 503, await resp.text()
                    assert resp.content_type == "application/problem+json"
                    assert (await resp.json())["type"] == "/problems/presence-unavailable"
                    assert resp.headers["Retry-After"] == "1"
            started = time.monotonic()
            async with http.delete(f"{api}/v1/users/{a}/locations", headers=auth(settings, a)) as resp:
                assert resp.status == 503
                body = await resp.json()
                assert "Redis is unavailable" in body["detail"]
                assert 1 <= int(resp.headers["Retry-After"]) <= 30
            assert time.monotonic() - started < 0.5  # refused by the open breaker, not a timeout
            async with http.get(f"{api}/metrics") as resp:
                text = await resp.text()
            assert f'geo_circuit_breaker_state{{dependency="redis-presence-{DEFAULT_REGION}",state="open"}} 1.0' in text
            # Nothing reported as stored was lost: both requests are in the database (read
            # from the replica, which may be a moment behind: the 503s carry no token).
            asked: list[int] = []
            for _ in range(40):
                async with http.get(f"{api}/v1/users/{a}/friends?state=outgoing", headers=auth(settings, a)) as resp:
                    assert resp.status == 200
                    asked = sorted(f["user_id"] for f in (await resp.json())["outgoing"])
                if asked == sorted((b, c)):
                    break
                await asyncio.sleep(0.05 * TIMEOUT_FACTOR)
            assert asked == sorted((b, c))
    finally:
        await server.close()
