"""Nearby search against a brute-force scan of the GeoNames businesses, for every strategy."""

from __future__ import annotations

import asyncio
import math
import random
from typing import Any

import pytest

from geo_common.places import load_places, offset_point
from location_api.demo import CATEGORIES
from location_api.contract import STRATEGIES

from .conftest import Api, Oracle, caught_up

#: Places where geometry is hard: the antimeridian (Fiji), near and at the poles, (0, 0).
HARD_CASES = [
    pytest.param(-16.80, 179.95, 50_000.0, id="fiji-west-of-180"),
    pytest.param(-16.80, -179.95, 50_000.0, id="fiji-east-of-180"),
    pytest.param(-16.80, 180.0, 50_000.0, id="fiji-at-180"),
    pytest.param(-16.80, -180.0, 50_000.0, id="fiji-at-minus-180"),
    pytest.param(-16.4, 179.4, 5_000.0, id="labasa-5km"),
    pytest.param(-16.80, 180.0, 100.0, id="on-the-antimeridian-100m"),
    pytest.param(78.2232, 15.6267, 50_000.0, id="svalbard-longyearbyen"),
    pytest.param(79.0, 12.0, 50_000.0, id="svalbard-ny-alesund"),
    pytest.param(82.5018, -62.3481, 50_000.0, id="alert"),
    pytest.param(89.99, 45.0, 50_000.0, id="near-north-pole"),
    pytest.param(89.99, -135.0, 5_000.0, id="near-north-pole-5km"),
    pytest.param(90.0, 0.0, 50_000.0, id="north-pole"),
    pytest.param(90.0, 0.0, 1.0, id="north-pole-1m"),
    pytest.param(-90.0, 0.0, 50_000.0, id="south-pole"),
    pytest.param(-90.0, 180.0, 1.0, id="south-pole-1m"),
    pytest.param(0.0, 0.0, 50_000.0, id="null-island"),
    pytest.param(0.0, 0.0, 1.0, id="null-island-1m"),
    pytest.param(-1e-12, -1e-12, 1.0, id="null-island-tiny-negative"),
    pytest.param(51.5007, -0.1246, 50_000.0, id="london-dense-50km"),
]


#: Where the hard cases put businesses of their own (GeoNames has few there): rings around
#: each point out to 60 km, plus points exactly on the antimeridian, the poles and the axes.
HARD_CENTRES = [
    (-16.80, 180.0),
    (78.2232, 15.6267),
    (79.0, 12.0),
    (82.5018, -62.3481),
    (89.99, 45.0),
    (-89.95, 0.0),
    (0.0, 0.0),
]
HARD_EXACT = [
    (-16.80, 180.0),
    (-16.80, -180.0),
    (-16.7, 179.9999999),
    (-16.9, -179.9999999),
    (90.0, 0.0),
    (90.0, 123.0),
    (-90.0, -45.0),
    (0.0, 0.0),
    (0.0, 1e-9),
    (-1e-9, 0.0),
    (1e-20, -1e-20),
    (0.0, -180.0),
]


@pytest.fixture(scope="module")
async def hard_businesses(api: Api, admin_headers: dict[str, str]) -> list[int]:
    rng = random.Random(5)
    points = list(HARD_EXACT)
    for lat, lon in HARD_CENTRES:
        points += [offset_point(lat, lon, rng.uniform(0, 60_000), rng.uniform(0, 2 * math.pi)) for _ in range(40)]
    ids = []
    for i, (lat, lon) in enumerate(points):
        body = {"name": f"Hard {i}", "latitude": lat, "longitude": lon, "category": "hard"}
        async with api.http.post("/v1/businesses", json=body, headers=admin_headers) as resp:
            assert resp.status == 201, await resp.text()
            ids.append((await resp.json())["id"])
    return ids


@pytest.fixture(scope="module")
async def oracle(api: Api, hard_businesses: list[int]) -> Oracle:
    await caught_up(api)
    return await Oracle.load(api.settings)


async def search(api: Api, **params: Any) -> dict[str, Any]:
    query = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in params.items() if v is not None}
    async with api.http.get("/v1/search/nearby", params=query) as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return dict(body)


async def all_pages(api: Api, **params: Any) -> tuple[list[dict[str, Any]], set[int]]:
    """Follow next_cursor to the end; returns every business and the totals reported."""
    seen: list[dict[str, Any]] = []
    totals: set[int] = set()
    cursor = None
    while True:
        body = await search(api, cursor=cursor, **params)
        seen.extend(body["businesses"])
        totals.add(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen, totals


@pytest.mark.parametrize(("lat", "lon", "radius"), HARD_CASES)
async def test_hard_cases_match_brute_force_for_every_strategy(
    api: Api, oracle: Oracle, lat: float, lon: float, radius: float
) -> None:
    expected = [oracle.body(bid, d) for bid, d in oracle.within(lat, lon, radius)]
    if radius >= 5_000.0:
        assert expected, "a hard case with nothing to find tests little"
    for strategy in (None, *STRATEGIES):  # None: the default, whose plain first page takes the straight line
        got, totals = await all_pages(api, latitude=lat, longitude=lon, radius=radius, limit=100, index=strategy)
        assert got == expected, strategy
        assert totals <= {len(expected)}, strategy


def _random_queries(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    places = load_places()
    queries = []
    for i in range(n):
        if i % 2:
            # Uniform on the sphere (mostly ocean: many empty answers).
            lat = math.degrees(math.asin(rng.uniform(-1.0, 1.0)))
            lon = rng.uniform(-180.0, 180.0)
        else:
            p = places[rng.randrange(len(places))]
            lat, lon = offset_point(p.latitude, p.longitude, rng.uniform(0, 20_000), rng.uniform(0, 2 * math.pi))
        queries.append(
            {
                "latitude": lat,
                "longitude": lon,
                "radius": round(math.exp(rng.uniform(0.0, math.log(50_000.0))), 3),
                "limit": rng.randint(1, 100),
                "category": rng.choice(CATEGORIES) if rng.random() < 0.25 else None,
            }
        )
    return queries


async def test_200_random_points_match_brute_force_for_every_strategy(api: Api, oracle: Oracle) -> None:
    for q in _random_queries(200, seed=20240601):
        hits = oracle.within(q["latitude"], q["longitude"], q["radius"], q["category"])
        page = [oracle.body(bid, d) for bid, d in hits[: q["limit"]]]
        # None: no index parameter, so a search without a category is the plain one that
        # location_api.search.plain_body answers in one call.
        strategies = (None, *STRATEGIES)
        bodies = await asyncio.gather(*(search(api, **q, index=s) for s in strategies))
        for strategy, body in zip(strategies, bodies):
            assert body["total"] == len(hits), (strategy, q)
            assert body["radius_m"] == q["radius"]
            assert body["businesses"] == page, (strategy, q)
            assert (body["next_cursor"] is None) == (len(hits) <= q["limit"]), (strategy, q)
        # The cursor is not tied to a strategy: every body, cursor included, is identical.
        assert all(b == bodies[0] for b in bodies), q


async def test_paging_returns_every_match_once_in_order(api: Api, oracle: Oracle) -> None:
    expected = [oracle.body(bid, d) for bid, d in oracle.within(48.8566, 2.3522, 20_000.0)]
    assert len(expected) > 50
    for strategy in STRATEGIES:
        got, totals = await all_pages(api, latitude=48.8566, longitude=2.3522, radius=20_000, limit=7, index=strategy)
        assert got == expected, strategy
        assert totals == {len(expected)}


async def test_expand_widens_the_radius_until_limit_matches(api: Api, oracle: Oracle) -> None:
    # Mid-Atlantic, near the Azores: nothing within 1 km, enough within some tens of km.
    lat, lon, limit = 38.6, -27.5, 2
    radius = 1_000.0
    while len(oracle.within(lat, lon, radius)) < limit and radius < 50_000.0:
        radius = min(radius * 2, 50_000.0)
    hits = oracle.within(lat, lon, radius)
    assert radius > 1_000.0 and len(hits) >= limit, "pick a point where expansion is needed"
    for strategy in STRATEGIES:
        body = await search(api, latitude=lat, longitude=lon, radius=1000, limit=limit, expand=True, index=strategy)
        assert body["radius_m"] == radius
        assert body["total"] == len(hits)
        assert body["businesses"] == [oracle.body(bid, d) for bid, d in hits[:limit]]
        # The following pages keep the widened radius.
        rest, _totals = await all_pages(
            api, latitude=lat, longitude=lon, radius=1000, limit=limit, expand=True, index=strategy
        )
        assert [b["id"] for b in rest] == [bid for bid, _ in hits]


async def test_expand_stops_at_the_largest_radius(api: Api, oracle: Oracle) -> None:
    body = await search(api, latitude=-50.0, longitude=-140.0, radius=10, limit=3, expand=True)
    assert body == {"total": 0, "radius_m": 50_000.0, "businesses": [], "next_cursor": None}


async def test_category_filter_is_any_of_several_whatever_their_case(api: Api, oracle: Oracle) -> None:
    bakeries = oracle.within(48.8566, 2.3522, 30_000.0, "bakery")
    assert bakeries, "the demo data has bakeries in Paris"
    for category, total in (
        ("bakery", len(bakeries)),
        ("BAKERY", len(bakeries)),
        ("bak", 0),
        ("bakery,Cafe", len(oracle.within(48.8566, 2.3522, 30_000.0, "bakery,cafe"))),
    ):
        for strategy in STRATEGIES:
            body = await search(
                api, latitude=48.8566, longitude=2.3522, radius=30000, limit=100, category=category, index=strategy
            )
            assert body["total"] == total, (category, strategy)
            # a business matches by its main category or a further one
            want = [bid for bid, _ in oracle.within(48.8566, 2.3522, 30_000.0, category)][:100]
            assert [b["id"] for b in body["businesses"]] == want, (category, strategy)
    assert len(oracle.within(48.8566, 2.3522, 30_000.0, "bakery,cafe")) > len(bakeries)


async def test_category_pages_and_expansion_count_only_that_category(api: Api, oracle: Oracle) -> None:
    expected = [oracle.body(bid, d) for bid, d in oracle.within(48.8566, 2.3522, 30_000.0, "bakery")]
    assert len(expected) > 14
    lat, lon = 38.6, -27.5  # the Azores: a radius of 1 km holds no bakery, 50 km a few
    widened = oracle.within(lat, lon, 50_000.0, "bakery")
    assert 0 < len(widened) < 50, len(widened)
    for strategy in STRATEGIES:
        got, totals = await all_pages(
            api, latitude=48.8566, longitude=2.3522, radius=30_000, limit=7, category="bakery", index=strategy
        )
        assert got == expected, strategy
        assert totals == {len(expected)}
        body = await search(
            api, latitude=lat, longitude=lon, radius=1000, limit=50, expand=True, category="bakery", index=strategy
        )
        assert body["radius_m"] == 50_000.0 and body["total"] == len(widened), strategy
        assert body["businesses"] == [oracle.body(bid, d) for bid, d in widened], strategy


async def test_paging_returns_every_match_once_while_businesses_are_inserted(
    api: Api, oracle: Oracle, admin_headers: dict[str, str]
) -> None:
    lat, lon, radius = 48.8566, 2.3522, 15_000.0
    before = {bid for bid, _ in oracle.within(lat, lon, radius)}
    assert len(before) > 40
    rng = random.Random(11)
    for strategy in STRATEGIES:
        inserted: list[int] = []
        paging_done = asyncio.Event()

        async def insert(strategy: str, inserted: list[int], paging_done: asyncio.Event) -> None:
            # Half inside the circle, nearer and farther than any page's cursor; half outside.
            while not paging_done.is_set():
                distance = rng.uniform(0, 2 * radius)
                plat, plon = offset_point(lat, lon, distance, rng.uniform(0, 2 * math.pi))
                body = {"name": f"Concurrent {strategy}", "latitude": plat, "longitude": plon}
                async with api.http.post("/v1/businesses", json=body, headers=admin_headers) as resp:
                    assert resp.status == 201
                    inserted.append((await resp.json())["id"])
                await asyncio.sleep(0.005)

        writer = asyncio.create_task(insert(strategy, inserted, paging_done))
        seen: list[tuple[float, int]] = []
        cursor = None
        try:
            while True:
                body = await search(
                    api, latitude=lat, longitude=lon, radius=radius, limit=5, index=strategy, cursor=cursor
                )
                seen.extend((b["distance_m"], b["id"]) for b in body["businesses"])
                cursor = body["next_cursor"]
                if cursor is None:
                    break
                await asyncio.sleep(0.02)  # let writes land between pages
        finally:
            paging_done.set()
            await writer
        ids = [bid for _, bid in seen]
        assert len(inserted) >= 3, "the writer ran alongside the paging"
        assert len(ids) == len(set(ids)), f"{strategy}: a business came twice"
        assert before <= set(ids), f"{strategy}: missing {sorted(before - set(ids))[:5]}"
        assert set(ids) - before <= set(inserted), strategy
        assert seen == sorted(seen), f"{strategy}: pages out of (distance, id) order"
        for bid in inserted:
            async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
                assert resp.status == 204
        await caught_up(api)
