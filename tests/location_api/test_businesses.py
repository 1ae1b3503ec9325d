"""Business CRUD, read-your-writes with the consistency token, and cache invalidation (with the
fences that keep a late fill from a lagging replica out)."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from location_api.cache import Cache
from location_api.cells import cells_containing, geohash12
from location_api.keys import cache_key
from location_api.models import Business

from .conftest import Api, eventually, settled

CONSISTENCY = "X-Consistency-Token"


async def create(api: Api, headers: dict[str, str], **fields: Any) -> tuple[dict[str, Any], str]:
    body = {
        "name": "Test Bakery",
        "latitude": 59.9139,
        "longitude": 10.7522,
        "category": "bakery",
        "address": "Oslo, NO",
        **fields,
    }
    async with api.http.post("/v1/businesses", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        created = await resp.json()
        assert resp.headers["Location"] == f"/v1/businesses/{created['id']}"
        return dict(created), resp.headers[CONSISTENCY]


#: The details of a business that was written without them.
NO_DETAILS = {"phone": None, "website": None, "price_level": None, "rating": None, "review_count": 0}
#: What a write answers its writer besides the business; public reads leave these out.
RECORD_FIELDS = ("owner_id", "created_by", "created_at", "updated_by", "updated_at")


def public(record: dict[str, Any]) -> dict[str, Any]:
    """The business of a write's answer, as a public read shows it (without hours: a business
    without them is neither open nor closed)."""
    return {k: v for k, v in record.items() if k not in RECORD_FIELDS} | {"open_now": None, "next_change": None}


async def test_crud_round_trip(api: Api, admin_headers: dict[str, str]) -> None:
    created, token = await create(api, admin_headers, latitude=-16.5, longitude=179.999999)
    bid = created["id"]
    assert public(created) == {
        "id": bid,
        "name": "Test Bakery",
        "latitude": -16.5,
        "longitude": 179.999999,
        "category": "bakery",
        "address": "Oslo, NO",
        "categories": ["bakery"],
        "time_zone": "Pacific/Fiji",  # not written: the zone of the coordinates
        "hours": None,
        **NO_DETAILS,
        "open_now": None,
        "next_change": None,
    }
    # An admin's business is the operator's (no owner); admin_headers is user 1.
    assert (created["owner_id"], created["created_by"], created["updated_by"]) == (None, 1, 1)

    async with api.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY: token}) as resp:
        assert resp.status == 200
        assert await resp.json() == public(created)

    changed = {"name": "Moved Bakery", "latitude": 78.22, "longitude": 15.65}
    async with api.http.put(f"/v1/businesses/{bid}", json=changed, headers=admin_headers) as resp:
        assert resp.status == 200, await resp.text()
        updated = await resp.json()
        token = resp.headers[CONSISTENCY]
    # PUT replaces every field: the omitted ones go back to empty.
    assert public(updated) == {
        "id": bid,
        **changed,
        "category": "",
        "address": "",
        "categories": [],  # no category
        "time_zone": "Arctic/Longyearbyen",  # moved: the zone of the new coordinates
        "hours": None,
        **NO_DETAILS,
        "open_now": None,
        "next_change": None,
    }
    assert updated["created_at"] == created["created_at"]
    assert datetime.fromisoformat(updated["updated_at"]) > datetime.fromisoformat(created["updated_at"])
    async with api.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY: token}) as resp:
        assert await resp.json() == public(updated)

    async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 204
        token = resp.headers[CONSISTENCY]
    async with api.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY: token}) as resp:
        assert resp.status == 404
        assert resp.content_type == "application/problem+json"
    async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 404
    async with api.http.put(f"/v1/businesses/{bid}", json=changed, headers=admin_headers) as resp:
        assert resp.status == 404


async def test_a_read_with_the_token_sees_the_write_at_once(api: Api, admin_headers: dict[str, str]) -> None:
    for i in range(20):
        lat, lon = 10.0 + i * 0.01, -30.0  # open Atlantic: nothing else near
        created, token = await create(api, admin_headers, name=f"Token {i}", latitude=lat, longitude=lon)
        async with api.http.get(f"/v1/businesses/{created['id']}", headers={CONSISTENCY: token}) as resp:
            assert resp.status == 200, f"write {i} not visible to its own read"
        for strategy in ("geohash", "sql"):
            params = {"latitude": str(lat), "longitude": str(lon), "radius": "10", "index": strategy}
            async with api.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY: token}) as resp:
                body = await resp.json()
            assert [b["id"] for b in body["businesses"]] == [created["id"]], (i, strategy)


async def test_update_invalidates_the_cache_of_both_cells(api: Api, admin_headers: dict[str, str]) -> None:
    created, token = await create(api, admin_headers, name="Cached", latitude=-33.0, longitude=-80.0)
    bid = created["id"]
    await settled(api)  # the refresher's invalidation of the create cannot undo the fills below
    near_old = {"latitude": "-33.0", "longitude": "-80.0", "radius": "100", "index": "sql"}
    near_new = {"latitude": "-34.0", "longitude": "-81.0", "radius": "100", "index": "sql"}
    # Fill the cache: the business by id, and the cells around both positions.
    for params in (near_old, near_new):
        async with api.http.get("/v1/search/nearby", params=params, headers={CONSISTENCY: token}):
            pass
    async with api.http.get(f"/v1/businesses/{bid}", headers={CONSISTENCY: token}):
        pass
    cache = api.app[cache_key]
    redis = aioredis.Redis.from_url(api.settings.redis_url)
    prefix = f"{api.settings.redis_namespace}:api:"
    try:
        old_keys = [f"{prefix}cell2:{c.bits}:{c.code}" for c in cells_containing(geohash12(-33.0, -80.0))]
        new_keys = [f"{prefix}cell2:{c.bits}:{c.code}" for c in cells_containing(geohash12(-34.0, -81.0))]
        assert await redis.exists(f"{prefix}detail2:{bid}") == 1  # filled by the read by id
        assert await redis.exists(*old_keys) >= 1 and await redis.exists(*new_keys) >= 1

        async with api.http.put(
            f"/v1/businesses/{bid}",
            json={"name": "Cached", "latitude": -34.0, "longitude": -81.0},
            headers=admin_headers,
        ) as resp:
            assert resp.status == 200
        assert await redis.exists(f"{prefix}biz:{bid}", f"{prefix}detail2:{bid}", *old_keys, *new_keys) == 0

        # Without a token reads are eventually consistent: served from the cache or any
        # replica, the move shows up once the replica has replayed it.
        async def moved() -> bool:
            async with api.http.get(f"/v1/businesses/{bid}") as resp:
                by_id = (await resp.json())["latitude"] == -34.0
            async with api.http.get("/v1/search/nearby", params=near_new) as resp:
                at_new = [b["id"] for b in (await resp.json())["businesses"]] == [bid]
            async with api.http.get("/v1/search/nearby", params=near_old) as resp:
                left_old = (await resp.json())["businesses"] == []
            return by_id and at_new and left_old

        await eventually(moved, "the move to show without a token", timeout=2)

        # A read that saw the new row may still not fill the cache: it is refused when the
        # replica replayed the write after the read's position was taken (the fence is
        # conservative). The next read then fills it, and the one after is a hit.
        async def cache_hit() -> bool:
            hits_before = cache.hits["detail"]
            async with api.http.get(f"/v1/businesses/{bid}") as resp:
                assert resp.status == 200 and (await resp.json())["latitude"] == -34.0
            return cache.hits["detail"] == hits_before + 1

        await eventually(cache_hit, "a read of the moved business to be a cache hit", timeout=2)

        async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
            assert resp.status == 204
        assert await redis.exists(f"{prefix}biz:{bid}", f"{prefix}detail2:{bid}", *new_keys) == 0

        async def gone() -> bool:
            async with api.http.get(f"/v1/businesses/{bid}") as resp:
                missing = resp.status == 404
            async with api.http.get("/v1/search/nearby", params=near_new) as resp:
                return missing and (await resp.json())["businesses"] == []

        await eventually(gone, "the delete to show without a token", timeout=2)
    finally:
        await redis.aclose()


@asynccontextmanager
async def scratch_cache(api: Api, tag: str) -> AsyncIterator[tuple[Cache, aioredis.Redis, str]]:
    """A cache in a namespace of its own on the API's Redis, a plain client beside it, and the
    namespace; the entries are dropped afterwards."""
    namespace = f"{api.settings.redis_namespace}-{tag}-{secrets.token_hex(3)}"
    cache = Cache(api.settings.redis_url, namespace, 60)
    admin = aioredis.Redis.from_url(api.settings.redis_url)
    try:
        yield cache, admin, namespace
    finally:
        await cache.flush()
        await cache.close()
        await admin.aclose()


async def test_a_fill_from_before_a_write_cannot_outlive_the_invalidation(api: Api) -> None:
    # The race the fences close: a read misses, a lagging replica serves the old row, the
    # write's deletions (the writer's and the refresher's) run, and only then does the read's
    # fill reach Redis. Driven here step by step on the real Redis.
    old = Business(424242, "Old name", 10.0, 20.0, "cafe", "")
    cell = cells_containing(geohash12(10.0, 20.0))[0]
    async with scratch_cache(api, "fence") as (cache, _admin, _namespace):
        await cache.invalidate(old.id, [geohash12(10.0, 20.0)], 5_000)
        await cache.put_businesses([old], 4_999)  # read before the write's position: dropped
        await cache.put_cells({cell: [(old.id, 10.0, 20.0, "cafe")]}, 4_999)
        await cache.put_detail(old.id, [*old, None, None], 4_999)
        assert await cache.get_businesses([old.id]) == {}
        assert await cache.get_cells([cell]) == {}
        assert await cache.get_detail(old.id) is None
        # A later deletion with a lower position (another instance, late) keeps the fence.
        await cache.invalidate(old.id, [geohash12(10.0, 20.0)], 100)
        await cache.put_businesses([old], 4_999)
        assert await cache.get_businesses([old.id]) == {}
        # A read at or after the write's position is fresh: cached.
        fresh = old._replace(name="New name")
        await cache.put_businesses([fresh], 5_000)
        await cache.put_cells({cell: [(old.id, 10.0, 20.0, "cafe")]}, 5_001)
        await cache.put_detail(old.id, [*fresh, None, None], 5_000)
        assert await cache.get_businesses([old.id]) == {old.id: fresh}
        assert await cache.get_detail(old.id) == [*fresh, None, None]
        assert await cache.get_cells([cell]) == {cell: [(old.id, 10.0, 20.0, "cafe")]}
        # Keys never written are filled whatever the position.
        other = old._replace(id=424243)
        await cache.put_businesses([other], 1)
        assert await cache.get_businesses([other.id]) == {other.id: other}
        assert cache.up


async def test_an_invalidation_lost_while_redis_was_unreachable_lets_no_stale_fill_in(api: Api) -> None:
    # Redis stops answering (CLIENT PAUSE) while a write's invalidation is sent, so it is
    # lost. The cache is not read until Redis answers again and every entry is dropped; the
    # fences survive the drop, and a fill read before the lost write's position is refused
    # for every key: a lagging replica cannot put back what the invalidation should have
    # removed.
    old = Business(525252, "Old name", 30.0, 40.0, "cafe", "")
    fenced = old._replace(id=525253)
    async with scratch_cache(api, "lost") as (cache, admin, namespace):
        await cache.invalidate(fenced.id, [], 9_000)  # an earlier write, invalidated in time
        await cache.put_businesses([old], 2_000)
        assert await cache.get_businesses([old.id]) == {old.id: old}
        await admin.execute_command("CLIENT", "PAUSE", 1_500, "ALL")
        await cache.invalidate(old.id, [geohash12(30.0, 40.0)], 5_000)  # times out: lost
        assert not cache.up
        assert await cache.get_businesses([old.id]) == {}  # not read while entries may be stale
        await eventually(cache.check, "Redis to answer again")
        assert await admin.exists(f"{namespace}:api:biz:{old.id}") == 0  # dropped
        await cache.put_businesses([old], 4_999)  # read before the lost write: refused
        await cache.put_businesses([fenced], 6_000)  # after it, but before its own kept fence
        assert await cache.get_businesses([old.id, fenced.id]) == {}
        fresh = old._replace(name="New name")
        await cache.put_businesses([fresh, fenced], 9_000)  # fresh for both: cached
        assert await cache.get_businesses([old.id, fenced.id]) == {old.id: fresh, fenced.id: fenced}
        assert cache.up


async def test_dropping_the_whole_cache_keeps_the_fences_and_refuses_older_fills(api: Api) -> None:
    # What the refresher does after a bulk load, whose writes invalidate nothing themselves.
    a = Business(626262, "A", 1.0, 2.0, "cafe", "")
    b = a._replace(id=626263)
    cell = cells_containing(geohash12(1.0, 2.0))[0]
    async with scratch_cache(api, "drop") as (cache, admin, namespace):
        await cache.invalidate(b.id, [], 8_000)
        await cache.put_businesses([a], 10)
        await cache.put_cells({cell: [(a.id, 1.0, 2.0, "cafe")]}, 10)
        await cache.drop_all(7_000)
        assert await cache.get_businesses([a.id]) == {} and await cache.get_cells([cell]) == {}
        assert await admin.get(f"{namespace}:api:biz:{b.id}:inv") == b"8000"  # kept
        assert await admin.get(f"{namespace}:api:all:inv") == b"7000"
        await cache.put_businesses([a, b], 6_999)
        await cache.put_cells({cell: [(a.id, 1.0, 2.0, "cafe")]}, 6_999)
        assert await cache.get_businesses([a.id, b.id]) == {} and await cache.get_cells([cell]) == {}
        await cache.drop_all(3_000)  # a lower position never lowers the fence
        assert await admin.get(f"{namespace}:api:all:inv") == b"7000"
        await cache.put_businesses([a, b], 7_000)
        await cache.put_cells({cell: [(a.id, 1.0, 2.0, "cafe")]}, 7_000)
        assert await cache.get_businesses([a.id, b.id]) == {a.id: a}  # b's own fence is higher
        assert await cache.get_cells([cell]) == {cell: [(a.id, 1.0, 2.0, "cafe")]}
