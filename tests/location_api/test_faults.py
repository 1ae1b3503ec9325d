"""Failures of the servers behind the API, on a throwaway stack: replica, Redis, primary."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from deploy.stack import postgres, redis_nodes
from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token
from location_api.keys import cache_key, db_key

from .conftest import Api, ThrowawayStack, create_database, drop_database, eventually, stop_api, with_database

CONSISTENCY = "X-Consistency-Token"


@pytest.fixture(scope="module")
async def faulty(
    throwaway_stack: ThrowawayStack, serve: Callable[[Settings], Awaitable[Api]]
) -> AsyncIterator[tuple[Api, ThrowawayStack, dict[str, str]]]:
    base = throwaway_stack.settings
    await create_database(base.pg_primary, base.pg_replicas, "geo_faults")
    settings = replace(
        base,
        pg_primary=with_database(base.pg_primary, "geo_faults"),
        pg_replicas=tuple(with_database(r, "geo_faults") for r in base.pg_replicas),
    )
    api = await serve(settings)
    headers = {"Authorization": f"Bearer {mint_token(settings.jwt_secret, 1, Role.ADMIN)}"}
    yield api, throwaway_stack, headers
    await stop_api(api)
    await drop_database(base.pg_primary, "geo_faults")


async def create(api: Api, headers: dict[str, str], name: str, lat: float, lon: float) -> tuple[int, str]:
    async with api.http.post(
        "/v1/businesses", json={"name": name, "latitude": lat, "longitude": lon}, headers=headers
    ) as resp:
        assert resp.status == 201, await resp.text()
        return int((await resp.json())["id"]), resp.headers[CONSISTENCY]


async def read_all(api: Api, ids: list[int], token: str | None = None) -> None:
    """GET each business and search around it (sql and memory); all must succeed."""
    headers = {CONSISTENCY: token} if token else {}
    for bid in ids:
        async with api.http.get(f"/v1/businesses/{bid}", headers=headers) as resp:
            assert resp.status == 200, await resp.text()
    for strategy in ("sql", "geohash"):
        params = {"latitude": "10", "longitude": "10", "radius": "50000", "index": strategy}
        async with api.http.get("/v1/search/nearby", params=params, headers=headers) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            assert {b["id"] for b in body["businesses"]} >= set(ids), (strategy, body, await ready(api))


async def visible(api: Api, ids: list[int]) -> bool:
    """Whether reads without a token (eventually consistent) show every business yet."""
    try:
        await read_all(api, ids)
    except AssertionError:
        return False
    return True


async def ready(api: Api) -> dict[str, Any]:
    async with api.http.get("/readyz") as resp:
        return dict(await resp.json())


async def test_replica_stopped_reads_go_to_the_primary_and_come_back(
    faulty: tuple[Api, ThrowawayStack, dict[str, str]],
) -> None:
    api, stack, headers = faulty
    db = api.app[db_key]
    ids = [(await create(api, headers, f"Replica test {i}", 10.0 + i * 0.01, 10.0))[0] for i in range(3)]
    _bid, token = await create(api, headers, "Replica test 3", 10.03, 10.0)

    async def replica_serves() -> bool:
        """Whether one round of reads went to the replica and none to the primary (each
        attempt counts afresh: one that came while the replica had not yet replayed the
        token's write went to the primary, and does not spoil the next)."""
        replica, primary = db.reads["replica-1"], db.reads["primary"]
        await read_all(api, ids, token)  # the token bypasses the cache: every read hits a database
        return db.reads["replica-1"] > replica and db.reads["primary"] == primary

    await eventually(replica_serves, "reads to be served by the replica")

    assert postgres.stop(stack.bins, stack.replica)
    try:
        before = db.reads["primary"]
        await read_all(api, ids, token)  # the failed replica is skipped at once
        assert db.reads["primary"] > before
        assert (await ready(api))["replicas"]["replica-1"]["status"] == "down"
        assert (await ready(api))["status"] == "ready"
        # Writes are unaffected, and their token reads them back from the primary.
        bid, token = await create(api, headers, "Written while the replica is down", 10.05, 10.0)
        ids.append(bid)
        await read_all(api, ids, token)
    finally:
        postgres.up_replica(stack.bins, stack.primary, stack.replica)

    async def back() -> bool:
        return bool((await ready(api))["replicas"]["replica-1"]["status"] == "up")

    await eventually(back, "the replica to be seen up again", timeout=10)
    # The restarted replica first replays what it missed (the token names the newest write).
    await eventually(replica_serves, "reads to return to the replica", timeout=10)


async def test_redis_stopped_search_still_answers(faulty: tuple[Api, ThrowawayStack, dict[str, str]]) -> None:
    api, stack, headers = faulty
    cache = api.app[cache_key]
    bid, token = await create(api, headers, "Redis test", 10.2, 10.0)
    ids = [bid]
    await read_all(api, ids, token)
    await eventually(lambda: visible(api, ids), "the business to show without a token", timeout=2)
    await read_all(api, ids)  # from the cache
    assert cache.up and sum(cache.hits.values()) > 0

    assert redis_nodes.stop(stack.redis)
    try:
        await read_all(api, ids)
        assert not cache.up
        readiness = await ready(api)
        assert readiness["redis"]["status"] == "down" and readiness["status"] == "ready"
        async with api.http.get("/metrics") as resp:
            assert "geo_api_cache_up 0.0" in await resp.text()
        # A write while Redis is down cannot invalidate: its entries are dropped on return.
        bid, token = await create(api, headers, "Written while Redis is down", 10.25, 10.0)
        async with api.http.put(
            f"/v1/businesses/{ids[0]}",
            headers=headers,
            json={"name": "Renamed while Redis is down", "latitude": 10.2, "longitude": 10.0},
        ) as resp:
            assert resp.status == 200
            token = resp.headers[CONSISTENCY]
        ids.append(bid)
        await read_all(api, ids, token)
    finally:
        redis_nodes.start(stack.bins, stack.redis)

    async def redis_back() -> bool:
        return bool((await ready(api))["redis"]["status"] == "up")

    await eventually(redis_back, "Redis to be seen up again", timeout=5)
    await read_all(api, ids, token)
    # The entry cached before Redis went down was dropped: the rename shows without a token.
    async with api.http.get(f"/v1/businesses/{ids[0]}") as resp:
        assert (await resp.json())["name"] == "Renamed while Redis is down"
    async with api.http.get("/metrics") as resp:
        assert "geo_api_cache_up 1.0" in await resp.text()


async def test_primary_stopped_writes_503_reads_still_answer(
    faulty: tuple[Api, ThrowawayStack, dict[str, str]],
) -> None:
    api, stack, headers = faulty
    bid, token = await create(api, headers, "Primary test", 10.3, 10.0)
    ids = [bid]
    await read_all(api, ids, token)

    await eventually(lambda: visible(api, ids), "the business to reach the replica and the indexes", timeout=2)
    assert postgres.stop(stack.bins, stack.primary)
    try:
        async with api.http.post(
            "/v1/businesses", json={"name": "x", "latitude": 1, "longitude": 1}, headers=headers
        ) as resp:
            assert resp.status == 503
            assert int(resp.headers["Retry-After"]) >= 1
            assert resp.content_type == "application/problem+json"
        await read_all(api, ids)  # from memory and from the replica
        assert (await ready(api))["primary"]["status"] == "down"
    finally:
        postgres.up_primary(stack.bins, stack.primary)

    async def writable() -> bool:
        async with api.http.post(
            "/v1/businesses", json={"name": "back", "latitude": 10.4, "longitude": 10.0}, headers=headers
        ) as resp:
            return resp.status == 201

    await eventually(writable, "writes to work again", timeout=10)
