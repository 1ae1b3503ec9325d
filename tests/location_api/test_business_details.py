"""A business's contacts, price level and rating through the API: written, read back on its
detail, kept by an owner's write, refused when an owner would rate itself, and every
malformed field named."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from geo_common.tokens import Role

from location_api.keys import cache_key

from .conftest import Api, eventually, settled
from .test_business_hours import detail, fields_refused
from .test_business_owner import auth
from .test_businesses import CONSISTENCY, create

OWNER = 4242
DETAILS = {"phone": "+47 22 12 34 56", "website": "https://fjord.example/menu?day=1", "price_level": 2}


async def put(api: Api, bid: int, headers: dict[str, str], **fields: Any) -> tuple[int, dict[str, Any], str]:
    body = {"name": "Fjord Cafe", "latitude": 59.9, "longitude": 10.7, **fields}
    async with api.http.put(f"/v1/businesses/{bid}", json=body, headers=headers) as resp:
        return resp.status, dict(await resp.json()) if resp.status != 204 else {}, resp.headers.get(CONSISTENCY, "")


async def test_details_are_kept_and_shown_and_only_an_admin_rates(api: Api, admin_headers: dict[str, str]) -> None:
    owner = auth(api, OWNER, Role.OWNER)
    created, token = await create(api, owner, **DETAILS)
    bid = created["id"]
    assert {k: created[k] for k in DETAILS} == DETAILS
    assert (created["rating"], created["review_count"]) == (None, 0)

    # The operator imports the reviews.
    status, rated, token = await put(api, bid, admin_headers, **DETAILS, rating=4.3, review_count=128)
    assert status == 200 and (rated["rating"], rated["review_count"]) == (4.3, 128)
    shown = await detail(api, bid, token)
    assert {k: shown[k] for k in (*DETAILS, "rating", "review_count")} == {
        **DETAILS,
        "rating": 4.3,
        "review_count": 128,
    }

    # The owner changes its phone: the rating stays; the details it leaves out are not known.
    status, kept, token = await put(api, bid, owner, phone="+47 22 00 00 00")
    assert status == 200
    assert (kept["phone"], kept["website"], kept["price_level"]) == ("+47 22 00 00 00", None, None)
    assert (kept["rating"], kept["review_count"]) == (4.3, 128)

    # An owner may not rate itself, on a new business or on this one.
    async with api.http.post(
        "/v1/businesses",
        json={"name": "Self Rated", "latitude": 1.0, "longitude": 1.0, "rating": 5, "review_count": 1},
        headers=owner,
    ) as resp:
        assert resp.status == 403 and resp.content_type == "application/problem+json"
        assert "admin" in (await resp.json())["detail"]
    status, _, _ = await put(api, bid, owner, rating=5, review_count=10_000)
    assert status == 403
    assert (await detail(api, bid, token))["rating"] == 4.3


@pytest.mark.parametrize(
    ("fields", "at_fault"),
    [
        ({"phone": "call us"}, "phone"),
        ({"phone": "12"}, "phone"),
        ({"phone": "+" + "1" * 40}, "phone"),
        ({"phone": 4722123456}, "phone"),
        ({"website": "javascript:alert(1)"}, "website"),
        ({"website": "ftp://fjord.example/"}, "website"),
        ({"website": "https://user:secret@fjord.example/"}, "website"),
        ({"website": "https://fjord.example/a b"}, "website"),
        ({"website": "fjord.example"}, "website"),
        ({"price_level": 5}, "price_level"),
        ({"price_level": "2"}, "price_level"),
        ({"price_level": 2.5}, "price_level"),
        ({"rating": 5.5, "review_count": 3}, "rating"),
        ({"rating": True, "review_count": 3}, "rating"),
        ({"rating": 4.0}, "rating"),
        ({"rating": None, "review_count": 3}, "rating"),
        ({"review_count": -1}, "review_count"),
    ],
)
async def test_malformed_details_are_a_400_naming_the_field(
    api: Api, admin_headers: dict[str, str], fields: dict[str, object], at_fault: str
) -> None:
    assert await fields_refused(api, admin_headers, fields) == [at_fault]


async def test_a_demo_business_has_synthetic_price_and_rating(api: Api) -> None:
    async with api.http.get("/v1/businesses/2") as resp:
        shown = await resp.json()
    assert shown["price_level"] in (1, 2, 3, 4)
    assert 1.0 <= shown["rating"] <= 5.0 and shown["review_count"] >= 1
    assert shown["phone"] is None and shown["website"] is None  # nothing that could reach a real one


async def test_a_rating_imported_in_sql_reaches_a_cached_detail(api: Api, admin_headers: dict[str, str]) -> None:
    """The operator's import writes business_details directly: its change is logged like the
    API's (migration 0014's triggers), and every instance drops the cached detail."""
    # A spot of its own in the South Pacific: other tests search theirs.
    created, _ = await create(api, admin_headers, name="Imported", latitude=-47.77, longitude=-127.31)
    bid = created["id"]
    cache = api.app[cache_key]
    # The refresher's own invalidation of the create is behind us: only the import's can drop
    # the entry cached below.
    await settled(api)

    async def cached() -> bool:
        hits = cache.hits["detail"]
        async with api.http.get(f"/v1/businesses/{bid}") as resp:
            ok = resp.status == 200
        return ok and cache.hits["detail"] > hits

    await eventually(cached, "the detail to be cached", timeout=5)
    conn = await asyncpg.connect(api.settings.pg_primary)
    try:
        await conn.execute("UPDATE business_details SET rating = 3.9, review_count = 41 WHERE business_id = $1", bid)
    finally:
        await conn.close()

    async def imported() -> bool:
        async with api.http.get(f"/v1/businesses/{bid}") as resp:
            shown = await resp.json()
        return bool(shown["rating"] == 3.9 and shown["review_count"] == 41)

    # Well within the cache's lifetime (GEO_API_CACHE_TTL_S, 300 s): the refresher dropped it.
    await eventually(imported, "the imported rating on the detail", timeout=10)
    async with api.http.delete(f"/v1/businesses/{bid}", headers=admin_headers) as resp:
        assert resp.status == 204
