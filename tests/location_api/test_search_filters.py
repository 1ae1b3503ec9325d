"""Filters, sorts, k nearest and area search through the API, on every strategy, against a
scan of the demo businesses and their synthetic details; paging under concurrent inserts;
every malformed parameter named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import orjson
import pytest

from geo_index import haversine_m
from location_api.area import Box
from location_api.contract import STRATEGIES
from location_api.cursor import decode_cursor
from location_api.hours import is_open, parse_hours
from location_api.consistency import CONSISTENCY_HEADER, issue_token
from location_api.keys import cursor_secret_key, refresher_key
from location_api.search import area_body
from location_api.text_match import TextQuery, words
from location_api.time_zones import zone, zone_at
from location_api.search_params import parse_search
from multidict import MultiDict
from yarl import URL

from .conftest import Api, caught_up, settled
from .test_business_hours import fields_refused
from .test_businesses import create

PARIS = (48.8566, 2.3522)
#: A Friday evening in Paris (19:30 local, summer time).
FRIDAY_EVENING = "2026-07-03T17:30:00Z"


class Listing:
    """Every demo business with what the filters read, and the expected answer of a search."""

    def __init__(self, rows: list[asyncpg.Record]) -> None:
        self.rows = {r["id"]: r for r in rows}

    @classmethod
    async def load(cls, api: Api) -> Listing:
        conn = await asyncpg.connect(api.settings.pg_primary)
        try:
            rows = await conn.fetch(
                """SELECT b.id, b.name, b.latitude, b.longitude, b.category, d.time_zone, d.hours::text AS hours,
                          d.price_level, d.rating, coalesce(d.more_categories, '{}') AS more
                     FROM businesses b LEFT JOIN business_details d ON d.business_id = b.id"""
            )
        finally:
            await conn.close()
        return cls(rows)

    def passes(self, row: asyncpg.Record, params: dict[str, str]) -> bool:
        categories = {c.casefold() for c in (row["category"], *row["more"])}
        if "category" in params and categories.isdisjoint(params["category"].casefold().split(",")):
            return False
        if "price" in params and str(row["price_level"]) not in params["price"].split(","):
            return False
        if "min_rating" in params and (row["rating"] is None or row["rating"] < float(params["min_rating"])):
            return False
        if "open_at" in params:
            if row["hours"] is None:
                return False
            local = zone(row["time_zone"] or zone_at(row["latitude"], row["longitude"]))
            at = datetime.fromisoformat(params["open_at"].replace("Z", "+00:00"))
            if not is_open(parse_hours(orjson.loads(row["hours"])), local, at):
                return False
        return "q" not in params or self.relevance(row, params["q"]) > 0

    @staticmethod
    def relevance(row: asyncpg.Record, q: str) -> int:
        return TextQuery(words(q)).score([row["name"], row["category"], *row["more"]])

    def expected(
        self, lat: float, lon: float, radius: float, params: dict[str, str], box: Box | None = None
    ) -> list[int]:
        """The ids a search must return, in its order."""
        found = []
        for row in self.rows.values():
            d = haversine_m(lat, lon, row["latitude"], row["longitude"])
            if d > radius or (box is not None and not box.contains(row["latitude"], row["longitude"])):
                continue
            if self.passes(row, params):
                if params.get("sort") == "rating":
                    rank = 1.0 if row["rating"] is None else -row["rating"]
                elif params.get("sort") == "relevance":
                    rank = -float(self.relevance(row, params["q"]))
                else:
                    rank = 0.0
                found.append((rank, d, row["id"]))
        return [bid for _, _, bid in sorted(found)]


#: Businesses of this module's own where GeoNames has few: inside a cap around the North
#: Pole (the pole itself included), and one just outside it.
POLAR = [(90.0, 0.0), (89.9, 10.0), (89.85, -170.0), (89.81, 179.99), (89.7, 0.0)]


@pytest.fixture(scope="module")
async def listing(api: Api, admin_headers: dict[str, str]) -> Listing:
    for i, (lat, lon) in enumerate(POLAR):
        await create(api, admin_headers, name=f"Polar Station {i}", latitude=lat, longitude=lon)
    await caught_up(api)
    return await Listing.load(api)


async def get(api: Api, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with api.http.get(path, params={k: str(v) for k, v in params.items()}) as resp:
        return resp.status, dict(await resp.json())


async def every_page(api: Api, path: str, params: dict[str, Any]) -> tuple[list[int], set[int]]:
    """The ids of every page, following next_cursor, and the totals reported."""
    ids: list[int] = []
    totals: set[int] = set()
    cursor = None
    while True:
        status, body = await get(api, path, {**params, **({} if cursor is None else {"cursor": cursor})})
        assert status == 200, body
        ids += [b["id"] for b in body["businesses"]]
        totals.add(body["total"])
        cursor = body["next_cursor"]
        if cursor is None:
            return ids, totals


FILTERS = [
    pytest.param({"price": "1,2"}, id="price"),
    pytest.param({"min_rating": "4.2"}, id="min-rating"),
    pytest.param({"category": "Bakery,cafe"}, id="categories"),
    pytest.param({"open_at": FRIDAY_EVENING}, id="open-at"),
    pytest.param({"q": "saint"}, id="q"),
    pytest.param({"q": "sant"}, id="q-typo"),
    pytest.param({"open_at": FRIDAY_EVENING, "category": "restaurant"}, id="open-at+category"),
    pytest.param({"category": "bakery,cafe,grocery", "price": "1", "min_rating": "3.5"}, id="three"),
    pytest.param({"sort": "rating"}, id="sort-rating"),
    pytest.param({"sort": "rating", "open_at": FRIDAY_EVENING}, id="sort-rating+open-at"),
    pytest.param({"sort": "relevance", "q": "sainte"}, id="sort-relevance"),
]


@pytest.mark.parametrize("params", FILTERS)
async def test_a_filtered_search_pages_through_the_scan_s_answer_on_every_strategy(
    api: Api, listing: Listing, params: dict[str, str]
) -> None:
    lat, lon = PARIS
    want = listing.expected(lat, lon, 20_000.0, params)
    assert len(want) > 7, "a filter that leaves less than a page tests little paging"
    for strategy in STRATEGIES:
        got, totals = await every_page(
            api,
            "/v1/search/nearby",
            {"latitude": lat, "longitude": lon, "radius": 20_000, "limit": 7, "index": strategy, **params},
        )
        assert got == want, strategy
        assert totals == {len(want)}, strategy


async def test_k_nearest_is_the_scan_s_first_k_with_or_without_filters(api: Api, listing: Listing) -> None:
    for lat, lon in (PARIS, (-16.8, 179.95), (69.7, 170.3)):  # Paris, Fiji, Chukotka
        for params in ({}, {"category": "bakery"}):
            want = listing.expected(lat, lon, api.settings.max_radius_m, params)[:5]
            for strategy in STRATEGIES:
                status, body = await get(
                    api, "/v1/search/nearby", {"latitude": lat, "longitude": lon, "k": 5, "index": strategy, **params}
                )
                assert status == 200, body
                assert [b["id"] for b in body["businesses"]] == want, (lat, lon, params, strategy)
                assert body["next_cursor"] is None


AREAS = [
    pytest.param(Box(2.25, 48.80, 2.45, 48.92), {}, id="paris"),
    pytest.param(
        Box(2.25, 48.80, 2.45, 48.92), {"category": "bakery", "sort": "rating"}, id="paris-bakeries-by-rating"
    ),
    pytest.param(Box(179.0, -17.5, -179.5, -16.0), {}, id="fiji-across-180"),
    pytest.param(Box(-180.0, 89.8, 180.0, 90.0), {}, id="north-pole-cap"),
    pytest.param(Box(-180.0, 78.0, 180.0, 90.0), {}, id="too-large"),
]


@pytest.mark.parametrize(("box", "params"), AREAS)
async def test_an_area_search_returns_the_box_s_businesses_from_its_centre(
    api: Api, listing: Listing, box: Box, params: dict[str, str]
) -> None:
    bbox = ",".join(repr(v) for v in box)
    if box.reach_m() > api.settings.max_radius_m:
        status, problem = await get(api, "/v1/search/area", {"bbox": bbox})
        assert status == 400 and [e["field"] for e in problem["errors"]] == ["bbox"]
        assert "too large" in problem["detail"]
        return
    lat, lon = box.centre()
    want = listing.expected(lat, lon, box.reach_m() + 1.0, params, box)
    assert want, "an empty area tests little"
    for strategy in STRATEGIES:
        got, totals = await every_page(api, "/v1/search/area", {"bbox": bbox, "limit": 9, "index": strategy, **params})
        assert got == want and totals == {len(want)}, strategy


@pytest.mark.parametrize(
    "box",
    [Box(2.25, 48.80, 2.45, 48.92), Box(179.0, 89.7, -179.0, 89.95), Box(-180.0, 89.8, 180.0, 90.0)],
    ids=["paris", "polar-across-180", "north-pole-cap"],
)
async def test_a_plain_box_is_answered_in_one_call_with_the_general_path_s_bytes(
    api: Api, listing: Listing, box: Box
) -> None:
    # bbox and limit alone take the compiled path (location_api/_carea.c), its commas plain or
    # as browsers send them; sort=distance, the default, sends the same request down the
    # general path, and a consistency token too: all answer the same bytes, cursor included.
    # (listing: the module's polar stations, one of them at 179.99 degrees east.)
    catalog = api.app[refresher_key].catalog
    assert catalog is not None
    answers = set()
    for comma in (",", "%2C", "%2c"):
        query = f"bbox={comma.join(repr(v) for v in box)}&limit=9"
        assert area_body(catalog, api.settings.api_index, query, api.settings.max_radius_m, api.app[cursor_secret_key])
        token = {CONSISTENCY_HEADER: issue_token(api.settings.jwt_secret, 1)}  # long applied
        for extra, headers in (("", {}), ("&sort=distance", {}), ("", token)):
            async with api.http.get(
                URL(api.url(f"/v1/search/area?{query}{extra}"), encoded=True), headers=headers
            ) as resp:
                assert resp.status == 200, await resp.text()
                answers.add(await resp.read())
    assert len(answers) == 1
    assert orjson.loads(answers.pop())["businesses"], "an empty area tests little"


async def test_typos_in_q_find_the_business_and_the_exact_spelling_ranks_first(
    api: Api, admin_headers: dict[str, str]
) -> None:
    where = {"latitude": -36.85, "longitude": 174.76}
    exact, _ = await create(api, admin_headers, name="Zephyrine Patisserie", **where)
    typo, token = await create(api, admin_headers, name="Zephyrina Patisserie", **where)
    await caught_up(api)
    for q, found in (
        ("zephyrine", [exact["id"], typo["id"]]),  # exact, then the one a letter away
        ("zephyr", [exact["id"], typo["id"]]),  # a start of both: equal, by distance then id
        ("zehpyrine patiserie", [exact["id"], typo["id"]]),
        ("zephyrina", [typo["id"], exact["id"]]),
        ("zphyrnea", []),  # three edits from both
    ):
        for strategy in STRATEGIES:
            status, body = await get(
                api, "/v1/search/nearby", {**where, "q": q, "sort": "relevance", "radius": 1000, "index": strategy}
            )
            assert status == 200, body
            assert [b["id"] for b in body["businesses"]] == found, (q, strategy)


async def test_open_at_reads_each_business_in_its_own_zone(api: Api, admin_headers: dict[str, str]) -> None:
    nine_to_five = {"weekly": {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    auckland, _ = await create(
        api, admin_headers, name="Kiwi Hours", latitude=-36.8485, longitude=174.7633, hours=nine_to_five
    )
    honolulu, _ = await create(
        api, admin_headers, name="Aloha Hours", latitude=21.3069, longitude=-157.8583, hours=nine_to_five
    )
    await caught_up(api)
    # 22:00 UTC: 10:00 (or 11:00 in summer) in Auckland the next day, 12:00 in Honolulu
    # (open, both); 06:00 UTC: 18:00/19:00 in Auckland (closed), 20:00 in Honolulu (closed);
    # 20:30 UTC: 08:30/09:30 in Auckland, 10:30 in Honolulu.
    for instant, open_ids in (
        ("2026-07-01T22:00:00Z", {auckland["id"], honolulu["id"]}),
        ("2026-07-01T06:00:00Z", set()),
        ("2026-07-01T20:30:00Z", {honolulu["id"]}),  # 08:30 in Auckland (winter): not yet
        ("2026-01-01T20:30:00Z", {auckland["id"], honolulu["id"]}),  # 09:30 in Auckland (summer)
    ):
        for business in (auckland, honolulu):
            status, body = await get(
                api,
                "/v1/search/nearby",
                {
                    "latitude": business["latitude"],
                    "longitude": business["longitude"],
                    "radius": 100,
                    "open_at": instant,
                },
            )
            assert status == 200
            ids = {b["id"] for b in body["businesses"]} & {auckland["id"], honolulu["id"]}
            assert ids == (open_ids & {business["id"]}), (instant, business["name"])


async def test_open_now_pages_keep_the_first_page_s_instant(api: Api, admin_headers: dict[str, str]) -> None:
    lat, lon = -45.0, -100.0  # open ocean: only these
    always = {"weekly": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    for i in range(5):
        await create(api, admin_headers, name=f"Night Owl {i}", latitude=lat, longitude=lon + i * 1e-3, hours=always)
    await caught_up(api)
    first_page = {"latitude": lat, "longitude": lon, "open_now": "true", "limit": 2}
    status, body = await get(api, "/v1/search/nearby", first_page)
    assert status == 200 and body["total"] == 5 and body["next_cursor"], body
    query = parse_search(MultiDict({k: str(v) for k, v in first_page.items()}), max_radius_m=api.settings.max_radius_m)
    first = decode_cursor(api.app[cursor_secret_key], query, body["next_cursor"])
    assert abs(first.at - datetime.now(UTC).timestamp()) < 600
    await asyncio.sleep(0.01)
    status, second = await get(api, "/v1/search/nearby", {**first_page, "cursor": body["next_cursor"]})
    assert status == 200 and len(second["businesses"]) == 2
    assert decode_cursor(api.app[cursor_secret_key], query, second["next_cursor"]).at == first.at


@pytest.mark.parametrize("params", FILTERS)
async def test_filtered_paging_returns_each_business_once_under_concurrent_inserts(
    api: Api, admin_headers: dict[str, str], listing: Listing, params: dict[str, str]
) -> None:
    lat, lon = PARIS
    query = {"latitude": lat, "longitude": lon, "radius": 20_000, "limit": 3, **params}
    before = set(listing.expected(lat, lon, 20_000.0, params))
    assert len(before) > 6
    always = {"weekly": {day: [["00:00", "24:00"]] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}}
    await settled(api)

    async def insert(n: int) -> None:
        # Businesses that pass most filters, among the pages being read (and moving them on).
        for i in range(n):
            await create(
                api,
                admin_headers,
                name=f"Sainte Boulangerie Concurrente {i}",
                latitude=lat + i * 1e-3,
                longitude=lon,
                categories=["bakery", "restaurant"],
                hours=always,
                price_level=1,
                rating=4.0 + (i % 10) / 10,
                review_count=3,
            )
            await asyncio.sleep(0.01)

    for strategy in STRATEGIES:
        writer = asyncio.create_task(insert(6))
        ids, _ = await every_page(api, "/v1/search/nearby", {**query, "index": strategy})
        await writer
        assert len(ids) == len(set(ids)), strategy  # none twice
        assert before <= set(ids), strategy  # none that was there all along missed


@pytest.mark.parametrize(
    ("path", "params", "at_fault"),
    [
        ("/v1/search/nearby", {"category": ""}, ["category"]),
        ("/v1/search/nearby", {"category": ",".join("abcdefghijk")}, ["category"]),
        ("/v1/search/nearby", {"price": "5"}, ["price"]),
        ("/v1/search/nearby", {"price": "1,,2"}, ["price"]),
        ("/v1/search/nearby", {"min_rating": "5.5"}, ["min_rating"]),
        ("/v1/search/nearby", {"min_rating": "nan"}, ["min_rating"]),
        ("/v1/search/nearby", {"open_now": "maybe"}, ["open_now"]),
        ("/v1/search/nearby", {"open_at": "2026-07-03T17:30:00"}, ["open_at"]),  # no offset
        ("/v1/search/nearby", {"open_at": "2026-02-30T10:00:00Z"}, ["open_at"]),
        ("/v1/search/nearby", {"open_at": "0001-01-01T00:00+01:00"}, ["open_at"]),
        ("/v1/search/nearby", {"open_at": FRIDAY_EVENING, "open_now": "true"}, ["open_at"]),
        ("/v1/search/nearby", {"q": "!!!"}, ["q"]),
        ("/v1/search/nearby", {"q": "x" * 101}, ["q"]),
        ("/v1/search/nearby", {"q": "a b c d e f g h i"}, ["q"]),
        ("/v1/search/nearby", {"sort": "price"}, ["sort"]),
        ("/v1/search/nearby", {"sort": "relevance"}, ["sort"]),
        ("/v1/search/nearby", {"k": "0"}, ["k"]),
        ("/v1/search/nearby", {"k": "5", "radius": "100"}, ["k"]),
        ("/v1/search/nearby", {"bbox": "1,2,3,4"}, ["bbox"]),
        ("/v1/search/area", {}, ["bbox"]),
        ("/v1/search/area", {"bbox": "1,2,3"}, ["bbox"]),
        ("/v1/search/area", {"bbox": "2.2,48.9,2.4,48.8"}, ["bbox"]),  # south of north
        ("/v1/search/area", {"bbox": "2.2,48.8,2.4,91"}, ["bbox"]),
        ("/v1/search/area", {"bbox": "2.2,48.8,2.4,48.9", "latitude": "1"}, ["latitude"]),
        ("/v1/search/area", {"bbox": "2.2,48.8,2.4,48.9", "k": "3"}, ["k"]),
    ],
)
async def test_every_malformed_parameter_is_named(
    api: Api, path: str, params: dict[str, str], at_fault: list[str]
) -> None:
    base = {"latitude": "48.85", "longitude": "2.35"} if path.endswith("nearby") else {}
    async with api.http.get(path, params={**base, **params}) as resp:
        assert resp.status == 400 and resp.content_type == "application/problem+json"
        problem = await resp.json()
    assert [e["field"] for e in problem["errors"]] == at_fault, problem


async def test_a_cursor_moves_to_no_other_filter_or_sort(api: Api) -> None:
    lat, lon = PARIS
    first = {"latitude": lat, "longitude": lon, "category": "bakery", "limit": 2}
    status, body = await get(api, "/v1/search/nearby", first)
    assert status == 200 and body["next_cursor"]
    for change in ({"category": "cafe"}, {"category": "bakery", "sort": "rating"}, {"price": "1"}, {"q": "paris"}):
        status, problem = await get(api, "/v1/search/nearby", {**first, **change, "cursor": body["next_cursor"]})
        assert status == 400 and [e["field"] for e in problem["errors"]] == ["cursor"], change
    status, _ = await get(
        api, "/v1/search/nearby", {**first, "limit": 5, "index": "sql", "cursor": body["next_cursor"]}
    )
    assert status == 200


def test_an_instant_s_plus_sent_unencoded_is_read_as_plus() -> None:
    query = parse_search(
        MultiDict(latitude="1", longitude="2", open_at="2026-03-29T01:30:00 01:00"), max_radius_m=50_000.0
    )
    assert query.filters.open_at == datetime(2026, 3, 29, 0, 30, tzinfo=UTC)
    assert query.filters.open_at.utcoffset() == timedelta(hours=1)


async def test_a_business_s_further_categories_are_kept_shown_and_searched(
    api: Api, admin_headers: dict[str, str]
) -> None:
    where = {"latitude": 12.5, "longitude": -33.5}  # open ocean: only these
    both, token = await create(
        api, admin_headers, name="Crumb & Cup", category="Bakery", categories=["Bakery", "Cafe", "cafe"], **where
    )
    assert (both["category"], both["categories"]) == ("Bakery", ["Bakery", "Cafe"])
    plain, _ = await create(api, admin_headers, name="Just Bread", category="bakery", **where)
    assert plain["categories"] == ["bakery"]
    async with api.http.get(f"/v1/businesses/{both['id']}", headers={"X-Consistency-Token": token}) as resp:
        assert (await resp.json())["categories"] == ["Bakery", "Cafe"]
    await caught_up(api)
    for category, found in (("cafe", {both["id"]}), ("BAKERY", {both["id"], plain["id"]}), ("bar", set())):
        for strategy in STRATEGIES:
            status, body = await get(api, "/v1/search/nearby", {**where, "category": category, "index": strategy})
            assert status == 200 and {b["id"] for b in body["businesses"]} == found, (category, strategy)
    # The change reaches every strategy: no longer a cafe.
    async with api.http.put(
        f"/v1/businesses/{both['id']}", json={"name": "Crumb", "categories": ["Bakery"], **where}, headers=admin_headers
    ) as resp:
        assert resp.status == 200 and (await resp.json())["categories"] == ["Bakery"]
    await caught_up(api)
    for strategy in STRATEGIES:
        status, body = await get(api, "/v1/search/nearby", {**where, "category": "cafe", "index": strategy})
        assert status == 200 and body["businesses"] == [], strategy


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"categories": []}, ["categories"]),
        ({"categories": "cafe"}, ["categories"]),
        ({"categories": ["cafe", " "]}, ["categories"]),
        ({"categories": ["c"] * 11}, ["categories"]),
        ({"categories": ["cafe"], "category": "bar"}, ["category"]),
    ],
)
async def test_malformed_categories_are_named(
    api: Api, admin_headers: dict[str, str], fields: dict[str, object], at_fault: list[str]
) -> None:
    assert await fields_refused(api, admin_headers, fields) == at_fault
