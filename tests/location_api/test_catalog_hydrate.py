"""A catalog of positions only (GEO_API_CARDS_MAX below the catalog): each page's businesses are
read by id, from Redis then a replica, and the answers are those of a catalog with cards."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
import numpy as np
import orjson
import pytest

from geo_common.places import scatter
from geo_common.settings import Settings
from location_api.catalog import Catalog
from location_api.filters import NO_FILTERS, SearchFilters
from location_api.cells import geohash12
from location_api.keys import cache_key, db_key, refresher_key
from location_api.models import Business, SearchQuery
from location_api.search import plain_body, search_memory

from tests.ports import free_port

from .conftest import (
    Api,
    Oracle,
    caught_up,
    drop_database,
    eventually,
    primary_lsn,
    replicas_caught_up,
    small_database,
    stop_api,
)

SEARCH = "/v1/search/nearby"
CONSISTENCY = "X-Consistency-Token"

Params = dict[str, str]


@pytest.fixture(scope="module")
async def positions(api: Api, api_settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> Api:
    """An instance over the same businesses as ``api``, holding positions only, its cache apart."""
    started = await serve(
        replace(api_settings, api_cards_max=0, redis_namespace=f"{api_settings.redis_namespace}-positions")
    )
    await caught_up(started)
    await caught_up(api)
    return started


@pytest.fixture(scope="module")
async def no_redis(api: Api, api_settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> Api:
    """The same, with no Redis where its URL points; built once, never polling (nothing is
    written meanwhile), so every query it makes is a search's."""
    await caught_up(api)
    return await serve(
        replace(api_settings, api_cards_max=0, api_refresh_s=3_600.0, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    )


async def answer(api: Api, params: Params, headers: dict[str, str] | None = None) -> tuple[int, str, bytes]:
    """One search's status, content type and body. Every call names the same request id, so
    the problem documents of two catalogs compare byte for byte (their ``instance`` is it)."""
    headers = {"X-Request-Id": "catalog-comparison", **(headers or {})}
    async with api.http.get(SEARCH, params=params, headers=headers) as resp:
        return resp.status, resp.content_type, await resp.read()


def searches(n: int, seed: int) -> list[Params]:
    """Plain searches and the other shapes (radius, limit, expand, index) around GeoNames places."""
    rng = random.Random(seed)
    out: list[Params] = []
    for lat, lon in scatter(n, seed=seed, spread_m=3_000.0):
        params = {"latitude": repr(lat), "longitude": repr(lon)}
        params["radius"] = str(rng.choice([100, 1_000, 5_000, 20_000, 50_000]))
        params["limit"] = str(rng.choice([1, 20, 100]))
        shape = rng.random()
        if shape < 0.15:
            params["expand"] = "true"
            params["radius"] = "100"
        elif shape < 0.45:
            params["index"] = rng.choice(["geohash", "quadtree", "s2", "sql"])
        out.append(params)
    return out


HARD = [
    {"latitude": "-16.8", "longitude": "180.0", "radius": "50000", "limit": "100"},
    {"latitude": "-16.8", "longitude": "-179.95", "radius": "50000", "index": "s2"},
    {"latitude": "90.0", "longitude": "0.0", "radius": "50000"},
    {"latitude": "51.5007", "longitude": "-0.1246", "radius": "50000", "limit": "100"},
    {"latitude": "0.0", "longitude": "0.0", "radius": "50000", "expand": "true"},
]


async def pages(api: Api, params: Params) -> list[bytes]:
    """Every page of a search, following the cursors."""
    bodies = []
    cursor = None
    while True:
        status, _type, body = await answer(api, params if cursor is None else {**params, "cursor": cursor})
        assert status == 200, body
        bodies.append(body)
        cursor = orjson.loads(body)["next_cursor"]
        if cursor is None:
            return bodies


# --------------------------------------------------------------------------- the same answers


async def test_hydrated_answers_are_the_in_memory_answers_byte_for_byte(api: Api, positions: Api) -> None:
    cache = positions.app[cache_key]
    assert positions.app[refresher_key].catalog is not None
    assert positions.app[refresher_key].catalog.cards is None  # type: ignore[union-attr]
    queries = [*searches(120, seed=11), *HARD]
    for round_ in ("filled from the replica", "read from Redis"):
        before = cache.hits["business"]
        for params in queries:
            assert await answer(positions, params) == await answer(api, params), (round_, params)
        if round_ == "read from Redis":
            assert cache.hits["business"] > before


async def test_paging_and_categories_are_the_in_memory_answers(api: Api, positions: Api) -> None:
    """Each page of a long search, and category searches (answered by sql without categories)."""
    for params in (
        {"latitude": "51.5007", "longitude": "-0.1246", "radius": "5000", "limit": "7"},
        {"latitude": "48.85", "longitude": "2.35", "radius": "3000", "limit": "13", "index": "quadtree"},
        {"latitude": "48.85", "longitude": "2.35", "radius": "20000", "limit": "5", "category": "cafe"},
        {
            "latitude": "35.68",
            "longitude": "139.69",
            "radius": "100",
            "limit": "3",
            "category": "bank",
            "expand": "true",
        },
    ):
        assert await pages(positions, params) == await pages(api, params), params


async def test_with_redis_down_each_page_is_one_query_on_the_replica(api: Api, no_redis: Api) -> None:
    """No cache: every page's businesses come from the replica, all of them in one query."""
    cache, db = no_redis.app[cache_key], no_redis.app[db_key]
    for params in [*searches(30, seed=12), *HARD]:
        assert await answer(no_redis, params) == await answer(api, params), params
    assert not cache.up
    params = {"latitude": "51.5007", "longitude": "-0.1246", "radius": "50000", "limit": "100"}
    before = sum(db.reads.values())
    status, _type, body = await answer(no_redis, params)
    assert status == 200 and len(orjson.loads(body)["businesses"]) == 100
    assert sum(db.reads.values()) == before + 1


BAD: list[Params] = [
    {"latitude": "91", "longitude": "2"},
    {"latitude": "nan", "longitude": "2"},
    {"latitude": "48.85", "longitude": "2.35", "limit": "101"},
    {"latitude": "48.85", "longitude": "2.35", "radius": "50000.01"},
    {"latitude": "48.85", "longitude": "2.35", "category": "x" * 1_000},
    {"latitude": "48.85", "longitude": "2.35", "cursor": "not-a-cursor"},
    {"latitude": "48.85", "longitude": "2.35", "index": "rtree"},
]


async def test_bad_input_is_refused_alike(api: Api, positions: Api) -> None:
    """Problems are problem+json, the same in both kinds of catalog; cursors cannot be forged."""
    status, _type, body = await answer(positions, {"latitude": "48.85", "longitude": "2.35", "limit": "2"})
    cursor = orjson.loads(body)["next_cursor"]
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    tampered = [
        {"latitude": "48.85", "longitude": "2.35", "limit": "2", "cursor": flipped},
        {"latitude": "48.86", "longitude": "2.35", "limit": "2", "cursor": cursor},
        {"latitude": "48.85", "longitude": "2.35", "limit": "2", "category": "cafe", "cursor": cursor},
    ]
    for params in [*BAD, *tampered]:
        got = await answer(positions, params)
        assert got[:2] == (400, "application/problem+json"), params
        assert got == await answer(api, params), params
    for token in ("yesterday", "FFFFFFFF/FFFFFFFF"):
        got = await answer(positions, {"latitude": "48.85", "longitude": "2.35"}, {CONSISTENCY: token})
        assert got[:2] == (400, "application/problem+json")


# --------------------------------------------------------------------------- between page and read


@pytest.fixture(scope="module")
async def small(settings: Settings) -> AsyncIterator[Settings]:
    """A database of the first 3,000 GeoNames places."""
    loaded = await small_database(settings, "hydrate", places=3_000)
    yield loaded
    await drop_database(settings.pg_primary, loaded.pg_primary.rpartition("/")[2])


@pytest.fixture(scope="module")
async def frozen(small: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    """A read instance holding positions only, never polling by itself: the test says when its
    index catches up (``Refresher.poll``), so writes can land between a page and its reading.
    Every query it sends is a search's or a poll's (a read role prunes no change log)."""
    started = await serve(replace(small, api_role="read", api_cards_max=0, api_refresh_s=3_600.0))
    refresher = started.app[refresher_key]

    async def complete() -> bool:  # built from a replica that may not have replayed the load yet
        await refresher.poll()
        return refresher.catalog is not None and len(refresher.catalog) == 3_000

    await eventually(complete, "the instance to hold every place", timeout=30)
    yield started
    await stop_api(started)


@pytest.fixture(scope="module")
async def writer(small: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[Api]:
    """A write instance over the same database and cache."""
    started = await serve(replace(small, api_role="write"))
    yield started
    await stop_api(started)


#: Places among the first 3,000 GeoNames places with over a hundred of them within 50 km.
VIENNA = {"latitude": "48.2082", "longitude": "16.3738"}
YEREVAN = {"latitude": "40.1792", "longitude": "44.4991"}


async def search_json(api: Api, params: Params, headers: dict[str, str] | None = None) -> dict[str, Any]:
    status, _type, body = await answer(api, params, headers)
    assert status == 200, body
    return dict(orjson.loads(body))


async def test_a_page_is_one_query_then_read_from_redis(frozen: Api) -> None:
    cache, db = frozen.app[cache_key], frozen.app[db_key]
    params = {**VIENNA, "radius": "50000", "limit": "100"}
    reads, hits, misses = sum(db.reads.values()), cache.hits["business"], cache.misses["business"]
    shown = len((await search_json(frozen, params))["businesses"])
    assert shown > 20
    assert sum(db.reads.values()) == reads + 1
    assert (cache.hits["business"], cache.misses["business"]) == (hits, misses + shown)
    await search_json(frozen, params)
    assert sum(db.reads.values()) == reads + 1
    assert cache.hits["business"] == hits + shown


async def test_deleted_renamed_or_moved_after_the_page(frozen: Api, writer: Api, admin_headers: dict[str, str]) -> None:
    """Between the index's page and the read: a deleted or moved business leaves the page, a
    renamed one shows its new name; the total and the cursor stay the index's. Once the
    index catches up, the page is the database's."""
    params = {**YEREVAN, "radius": "50000", "limit": "10"}
    first = await search_json(frozen, params)
    ids = [b["id"] for b in first["businesses"]]
    assert len(ids) == 10 and first["next_cursor"] is not None
    gone, renamed, moved = ids[1], ids[3], ids[5]
    async with writer.http.delete(f"/v1/businesses/{gone}", headers=admin_headers) as resp:
        assert resp.status == 204
    fields = {k: v for k, v in first["businesses"][3].items() if k not in ("id", "distance_m")}
    async with writer.http.put(
        f"/v1/businesses/{renamed}", json={**fields, "name": "Renamed meanwhile"}, headers=admin_headers
    ) as resp:
        assert resp.status == 200
    far = {k: v for k, v in first["businesses"][5].items() if k not in ("id", "distance_m")}
    far["latitude"] = -far["latitude"] if abs(far["latitude"]) > 5 else far["latitude"] + 10.0
    async with writer.http.put(f"/v1/businesses/{moved}", json=far, headers=admin_headers) as resp:
        assert resp.status == 200

    await replicas_caught_up(frozen.settings)  # the page's businesses are read from a replica
    second = await search_json(frozen, params)
    assert (second["total"], second["next_cursor"]) == (first["total"], first["next_cursor"])
    expected = [dict(b, name="Renamed meanwhile") if b["id"] == renamed else b for b in first["businesses"]]
    assert second["businesses"] == [b for b in expected if b["id"] not in (gone, moved)]

    refresher = frozen.app[refresher_key]
    assert await refresher.poll() >= 3
    oracle = await Oracle.load(frozen.settings)
    lat, lon = float(params["latitude"]), float(params["longitude"])
    within = oracle.within(lat, lon, 50_000.0)
    third = await search_json(frozen, params)
    assert third["total"] == len(within) == first["total"] - 2
    assert third["businesses"] == [oracle.body(bid, d) for bid, d in within[:10]]
    at_new_place = await search_json(
        frozen, {"latitude": repr(far["latitude"]), "longitude": repr(far["longitude"]), "radius": "1"}
    )
    assert [b["id"] for b in at_new_place["businesses"]] == [moved]


async def test_writes_show_after_a_poll_and_a_token_is_honoured(
    frozen: Api, writer: Api, admin_headers: dict[str, str]
) -> None:
    """Live changes keep the index of positions in step: a write through SQL (no cache
    invalidation of its own) and one through the API with its consistency token."""
    conn = await asyncpg.connect(frozen.settings.pg_primary)
    try:
        bid = await conn.fetchval(
            "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ('By SQL', -60.0, -130.0, $1)"
            " RETURNING id",
            geohash12(-60.0, -130.0),
        )
    finally:
        await conn.close()
    params = {"latitude": "-60.0", "longitude": "-130.0", "radius": "1000"}
    assert (await search_json(frozen, params))["businesses"] == []
    inserted, refresher = await primary_lsn(frozen.settings), frozen.app[refresher_key]

    async def polled() -> bool:  # a poll reads a replica, which may not have replayed the insert yet
        await refresher.poll()
        return refresher.applied_lsn >= inserted

    await eventually(polled, "the index to apply the insert")
    assert [b["name"] for b in (await search_json(frozen, params))["businesses"]] == ["By SQL"]

    body = {"name": "By the API", "latitude": -60.0, "longitude": -130.001}
    async with writer.http.post("/v1/businesses", json=body, headers=admin_headers) as resp:
        assert resp.status == 201
        created, token = (await resp.json())["id"], resp.headers[CONSISTENCY]
    written = await primary_lsn(frozen.settings)
    db = frozen.app[db_key]
    # Ahead of the index, sql answers (cells, then businesses: two reads); once the index has
    # the write, the index does, its page read at the token (one read, never from Redis).
    for reads in (2, 1):
        before = sum(db.reads.values())
        found = await search_json(frozen, params, {CONSISTENCY: token})
        assert [b["id"] for b in found["businesses"]] == [bid, created]
        assert sum(db.reads.values()) == before + reads

        async def applied() -> bool:
            await refresher.poll()
            return refresher.applied_lsn >= written

        await eventually(applied, "the index to apply the write")


# --------------------------------------------------------------------------- the catalog itself


def catalogs(n: int = 3_000) -> tuple[Catalog, Catalog]:
    """A catalog with cards and one of positions only, of the same scattered businesses."""
    rows = [(i, f"B{i}", lat, lon, "cafe" if i % 3 else "bank", "") for i, (lat, lon) in enumerate(scatter(n, seed=3))]
    ids = np.array([r[0] for r in rows], np.int64)
    lats, lons = np.array([r[2] for r in rows]), np.array([r[3] for r in rows])
    with_cards = Catalog.build(rows, max_radius_m=50_000.0, strategies=("geohash", "quadtree", "s2"))
    return with_cards, Catalog.of_positions(
        ids, lats, lons, max_radius_m=50_000.0, strategies=("geohash", "quadtree", "s2")
    )


def test_positions_only_pages_are_the_pages_with_cards() -> None:
    with_cards, bare = catalogs()
    assert (len(bare), bare.cards) == (len(with_cards), None)
    for lat, lon in scatter(100, seed=4):
        for strategy in ("geohash", "quadtree", "s2"):
            query = SearchQuery(lat, lon, 20_000.0, 10, NO_FILTERS, False, None, strategy)
            a, b = (search_memory(c, strategy, query, None, 50_000.0) for c in (with_cards, bare))
            assert (a.total, a.radius_m, a.hits, a.next_position) == (b.total, b.radius_m, b.hits, b.next_position)
            assert b.prefixes == {}
    query = SearchQuery(0.0, 0.0, 1_000.0, 10, SearchFilters(categories=frozenset({"cafe"})), False, None, "geohash")
    with pytest.raises(ValueError, match="positions only"):
        search_memory(bare, "geohash", query, None, 50_000.0)
    assert plain_body(bare, "geohash", "latitude=1&longitude=2", 50_000.0, b"k" * 32) is None


def test_positions_only_follow_inserts_moves_and_deletes() -> None:
    _, bare = catalogs(100)
    count = len(bare)
    cafe = Business(10_000, "New", 10.0, 20.0, "cafe", "")
    assert bare.apply(cafe.id, cafe) is None  # what it held is not known
    assert (bare.position(cafe.id), len(bare)) == ((10.0, 20.0), count + 1)
    moved = cafe._replace(latitude=-10.0)
    assert bare.apply(cafe.id, moved) is None and bare.apply(cafe.id, moved) is None  # idempotent
    for index in bare.indexes.values():
        assert index.within(-10.0, 20.0, 1.0) == [(cafe.id, 0.0)] and index.within(10.0, 20.0, 1.0) == []
    assert bare.apply(cafe.id, None) is None and bare.apply(cafe.id, None) is None
    assert (bare.position(cafe.id), bare.business(cafe.id), len(bare)) == (None, None, count)
    assert all(cafe.id not in index for index in bare.indexes.values())
    assert (
        Catalog.of_positions(
            np.array([], np.int64), np.array([]), np.array([]), max_radius_m=1.0, strategies=()
        ).position(1)
        is None
    )


async def test_inserts_past_the_card_budget_leave_positions_only(
    small: Settings, serve: Callable[[Settings], Awaitable[Api]]
) -> None:
    """The budget holds after the load too: the poll that takes a catalog with cards past it
    rebuilds it with positions only, and searches answer the same, the new business included."""
    conn = await asyncpg.connect(small.pg_primary)
    try:
        held = await conn.fetchval("SELECT count(*) FROM businesses")  # earlier tests wrote some
    finally:
        await conn.close()
    started = await serve(replace(small, api_role="read", api_cards_max=held + 1, api_refresh_s=3_600.0))
    try:
        refresher = started.app[refresher_key]

        async def complete() -> bool:
            await refresher.poll()
            return refresher.catalog is not None and len(refresher.catalog) == held

        await eventually(complete, "the instance to hold every place", timeout=30)
        assert refresher.catalog is not None and refresher.catalog.cards is not None
        places = [(-61.0, -140.0), (-61.0, -140.001)]
        conn = await asyncpg.connect(small.pg_primary)
        try:
            for i, (lat, lon) in enumerate(places):
                await conn.execute(
                    "INSERT INTO businesses (name, latitude, longitude, geohash) VALUES ($1, $2, $3, $4)",
                    f"Past the budget {i}",
                    lat,
                    lon,
                    geohash12(lat, lon),
                )
        finally:
            await conn.close()
        inserted = await primary_lsn(small)

        async def polled() -> bool:
            await refresher.poll()
            return refresher.applied_lsn >= inserted

        await eventually(polled, "the index to apply the inserts")
        catalog = refresher.catalog
        assert catalog is not None and catalog.cards is None and len(catalog) == held + 2
        params = {"latitude": "-61.0", "longitude": "-140.0", "radius": "1000"}
        names = [b["name"] for b in (await search_json(started, params))["businesses"]]
        assert names == ["Past the budget 0", "Past the budget 1"]
    finally:
        await stop_api(started)
