"""Business ownership: an owner changes only its own businesses, an admin any; the owner and
authors are told to the writer only; the change feed still carries every write."""

from __future__ import annotations

from typing import Any

import aiohttp
import asyncpg

from geo_common.tokens import Role, mint_token

from .conftest import Api, caught_up, eventually

CONSISTENCY = "X-Consistency-Token"
#: Owners with ids no other test uses, long enough not to appear in a body by chance.
OWNER = 7_100_201
OTHER_OWNER = 7_100_202
ADMIN = 7_100_203
PRIVATE = ("owner_id", "created_by", "created_at", "updated_by", "updated_at")
#: The south Atlantic: nothing else near.
SPOT = {"latitude": -40.25, "longitude": -20.25}
NEAR_SPOT = {"latitude": "-40.25", "longitude": "-20.25", "radius": "50"}


def auth(api: Api, user_id: int, role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(api.settings.jwt_secret, user_id, role)}"}


async def answer(resp: aiohttp.ClientResponse) -> tuple[int, Any]:
    raw = await resp.read()
    return resp.status, (await resp.json(content_type=None)) if raw else None


async def write(api: Api, method: str, path: str, headers: dict[str, str], **fields: Any) -> tuple[int, Any]:
    body = {"name": "Owned Bakery", **SPOT, **fields} if method in ("POST", "PUT") else None
    async with api.http.request(method, path, json=body, headers=headers) as resp:
        status, data = await answer(resp)
        if status >= 400:
            assert resp.content_type == "application/problem+json", data
        return status, data


async def test_an_owner_changes_its_own_businesses_only(api: Api) -> None:
    owner, other = auth(api, OWNER, Role.OWNER), auth(api, OTHER_OWNER, Role.OWNER)
    admin = auth(api, ADMIN, Role.ADMIN)
    status, created = await write(api, "POST", "/v1/businesses", owner, category="bakery")
    assert status == 201, created
    bid = created["id"]
    assert (created["owner_id"], created["created_by"], created["updated_by"]) == (OWNER, OWNER, OWNER)

    # Another owner may neither change nor delete it, and is not told whose it is.
    for method in ("PUT", "DELETE"):
        status, problem = await write(api, method, f"/v1/businesses/{bid}", other, name="Taken Over")
        assert (status, problem["type"]) == (403, "/problems/forbidden"), problem
        assert str(OWNER) not in str(problem) and "not yours" in problem["detail"]
    async with api.http.get(f"/v1/businesses/{bid}") as resp:
        assert (await resp.json())["name"] == "Owned Bakery"

    # Its owner may; the authors are kept.
    status, updated = await write(api, "PUT", f"/v1/businesses/{bid}", owner, name="Renamed Bakery")
    assert status == 200, updated
    assert (updated["name"], updated["owner_id"], updated["updated_by"]) == ("Renamed Bakery", OWNER, OWNER)
    assert updated["created_at"] == created["created_at"]

    # An admin may change anyone's: the owner stays, the admin is the last author.
    status, by_admin = await write(api, "PUT", f"/v1/businesses/{bid}", admin, name="Fixed By Admin")
    assert status == 200, by_admin
    assert (by_admin["owner_id"], by_admin["created_by"], by_admin["updated_by"]) == (OWNER, OWNER, ADMIN)
    status, _ = await write(api, "PUT", f"/v1/businesses/{bid}", owner, name="Owner Again")
    assert status == 200  # still the owner's

    assert (await write(api, "DELETE", f"/v1/businesses/{bid}", other))[0] == 403
    assert (await write(api, "DELETE", f"/v1/businesses/{bid}", owner))[0] == 204
    # Gone: 404 for anyone, owner or not (a missing business is not a forbidden one).
    for headers in (owner, other, admin):
        assert (await write(api, "PUT", f"/v1/businesses/{bid}", headers))[0] == 404
        assert (await write(api, "DELETE", f"/v1/businesses/{bid}", headers))[0] == 404


async def test_operator_businesses_are_changed_by_admins_only(api: Api) -> None:
    owner, admin = auth(api, OWNER, Role.OWNER), auth(api, ADMIN, Role.ADMIN)
    conn = await asyncpg.connect(api.settings.pg_primary)
    try:
        # The demo load names no owner: every loaded business is the operator's.
        loaded = await conn.fetchrow(
            "SELECT id, name, owner_id, created_by, updated_by FROM businesses ORDER BY id LIMIT 1"
        )
        assert (loaded["owner_id"], loaded["created_by"], loaded["updated_by"]) == (None, None, None)
        for method in ("PUT", "DELETE"):
            status, problem = await write(api, method, f"/v1/businesses/{loaded['id']}", owner)
            assert (status, problem["type"]) == (403, "/problems/forbidden"), problem
        assert await conn.fetchval("SELECT name FROM businesses WHERE id = $1", loaded["id"]) == loaded["name"]

        # What an admin creates is the operator's too: owners cannot touch it, admins can.
        status, created = await write(api, "POST", "/v1/businesses", admin)
        assert status == 201 and (created["owner_id"], created["created_by"]) == (None, ADMIN), created
        bid = created["id"]
        assert (await write(api, "PUT", f"/v1/businesses/{bid}", owner))[0] == 403
        assert (await write(api, "PUT", f"/v1/businesses/{bid}", admin, name="Operator's"))[0] == 200
        assert (await write(api, "DELETE", f"/v1/businesses/{bid}", owner))[0] == 403
        assert (await write(api, "DELETE", f"/v1/businesses/{bid}", admin))[0] == 204
    finally:
        await conn.close()


async def test_the_owner_is_told_to_the_writer_only(api: Api) -> None:
    owner = auth(api, OWNER, Role.OWNER)
    status, created = await write(api, "POST", "/v1/businesses", owner, name="Quiet Owner")
    assert status == 201
    bid = created["id"]
    token = {CONSISTENCY: (await _token(api, bid, owner))}
    async with api.http.get(f"/v1/businesses/{bid}", headers=token) as resp:
        public = await resp.json()
    # The detail adds whether it is open now (unknown: no hours were written).
    written = {k: v for k, v in created.items() if k not in PRIVATE}
    assert public == written | {"name": "Quiet Owner", "open_now": None, "next_change": None}
    for params in ({**NEAR_SPOT, "index": "sql"}, {**NEAR_SPOT, "index": "geohash"}):
        async with api.http.get("/v1/search/nearby", params=params, headers=token) as resp:
            (hit,) = [b for b in (await resp.json())["businesses"] if b["id"] == bid]
        assert not set(PRIVATE) & set(hit)
        assert str(OWNER) not in str(hit)
    assert (await write(api, "DELETE", f"/v1/businesses/{bid}", owner))[0] == 204


async def _token(api: Api, bid: int, headers: dict[str, str]) -> str:
    """A consistency token at least as new as the business (by rewriting it unchanged)."""
    async with api.http.put(f"/v1/businesses/{bid}", json={"name": "Quiet Owner", **SPOT}, headers=headers) as resp:
        assert resp.status == 200
        return resp.headers[CONSISTENCY]


async def test_owned_writes_reach_every_index_through_the_change_feed(api: Api) -> None:
    owner = auth(api, OWNER, Role.OWNER)
    status, created = await write(api, "POST", "/v1/businesses", owner, name="Fed Bakery")
    assert status == 201
    bid = created["id"]

    async def found(name: str | None) -> bool:
        # No token: the default in-memory index answers, as fed by the change log.
        async with api.http.get("/v1/search/nearby", params=NEAR_SPOT) as resp:
            names = {b["id"]: b["name"] for b in (await resp.json())["businesses"]}
        return names.get(bid) == name

    await eventually(lambda: found("Fed Bakery"), "the owner's new business in the index")
    assert (await write(api, "PUT", f"/v1/businesses/{bid}", owner, name="Fed Again"))[0] == 200
    await eventually(lambda: found("Fed Again"), "the owner's change in the index")
    assert (await write(api, "DELETE", f"/v1/businesses/{bid}", owner))[0] == 204
    await eventually(lambda: found(None), "the owner's deletion in the index")
    await caught_up(api)
