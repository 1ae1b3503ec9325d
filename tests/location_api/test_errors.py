"""Every client error is a problem document naming the field; no client input yields a 500."""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import aiohttp
import pytest

from geo_common.settings import Settings
from geo_common.tokens import Role, mint_token

from .conftest import Api

SEARCH = "/v1/search/nearby"
GOOD = {"latitude": "48.85", "longitude": "2.35"}


async def assert_problem(resp: aiohttp.ClientResponse, status: int, fields: list[str] | None = None) -> dict[str, Any]:
    body = await resp.json(content_type=None)
    assert resp.status == status, body
    assert resp.content_type == "application/problem+json"
    assert set(body) == {"type", "title", "status", "detail", "errors", "instance"}
    assert body["instance"] == f"urn:request:{resp.headers['X-Request-Id']}"
    assert body["status"] == status and body["type"].startswith("/problems/")
    assert isinstance(body["detail"], str) and body["detail"]
    if fields is not None:
        assert sorted(e["field"] for e in body["errors"]) == sorted(fields), body
    return dict(body)


@pytest.mark.parametrize(
    ("params", "fields"),
    [
        ({}, ["latitude", "longitude"]),
        ({"longitude": "2"}, ["latitude"]),
        ({"latitude": "", "longitude": "2"}, ["latitude"]),
        ({"latitude": "abc", "longitude": "2"}, ["latitude"]),
        ({"latitude": "nan", "longitude": "2"}, ["latitude"]),
        ({"latitude": "NaN", "longitude": "inf"}, ["latitude", "longitude"]),
        ({"latitude": "1", "longitude": "-Infinity"}, ["longitude"]),
        ({"latitude": "1e999", "longitude": "2"}, ["latitude"]),
        ({"latitude": "0x10", "longitude": "2"}, ["latitude"]),
        ({"latitude": "1_0", "longitude": "2"}, ["latitude"]),
        ({"latitude": " 10", "longitude": "2"}, ["latitude"]),
        ({"latitude": "90.0001", "longitude": "2"}, ["latitude"]),
        ({"latitude": "-91", "longitude": "180.5"}, ["latitude", "longitude"]),
        ({**GOOD, "radius": "0"}, ["radius"]),
        ({**GOOD, "radius": "0.5"}, ["radius"]),
        ({**GOOD, "radius": "50000.01"}, ["radius"]),
        ({**GOOD, "radius": "nan"}, ["radius"]),
        ({**GOOD, "radius": ""}, ["radius"]),
        ({**GOOD, "limit": "0"}, ["limit"]),
        ({**GOOD, "limit": "101"}, ["limit"]),
        ({**GOOD, "limit": "2.5"}, ["limit"]),
        ({**GOOD, "limit": "-1"}, ["limit"]),
        ({**GOOD, "limit": "ten"}, ["limit"]),
        ({**GOOD, "limit": "99999999999999999999999"}, ["limit"]),
        ({**GOOD, "expand": "maybe"}, ["expand"]),
        ({**GOOD, "index": "rtree"}, ["index"]),
        ({**GOOD, "category": ""}, ["category"]),
        ({**GOOD, "category": "   "}, ["category"]),
        ({**GOOD, "raduis": "100"}, ["raduis"]),
        ({**GOOD, "cursor": ""}, ["cursor"]),
        ({**GOOD, "cursor": "not-a-cursor"}, ["cursor"]),
        ({**GOOD, "cursor": "%%%"}, ["cursor"]),
    ],
)
async def test_bad_search_parameters(api: Api, params: dict[str, str], fields: list[str]) -> None:
    async with api.http.get(SEARCH, params=params) as resp:
        await assert_problem(resp, 400, fields)


async def test_repeated_parameter(api: Api) -> None:
    async with api.http.get(f"{SEARCH}?latitude=1&latitude=2&longitude=3") as resp:
        await assert_problem(resp, 400, ["latitude"])


async def test_cursor_is_tied_to_its_query_and_cannot_be_forged(api: Api) -> None:
    params = {**GOOD, "radius": "20000", "limit": "2"}
    async with api.http.get(SEARCH, params=params) as resp:
        cursor = (await resp.json())["next_cursor"]
    assert cursor
    # The next page of the same query works, whatever the page size and strategy.
    async with api.http.get(SEARCH, params={**params, "limit": "5", "index": "sql", "cursor": cursor}) as resp:
        assert resp.status == 200
    # Another query: 400 naming the cursor.
    for other in (
        {**params, "radius": "20001"},
        {**params, "latitude": "48.86"},
        {**params, "category": "cafe"},
        {**params, "expand": "true"},
    ):
        async with api.http.get(SEARCH, params={**other, "cursor": cursor}) as resp:
            body = await assert_problem(resp, 400, ["cursor"])
            assert "different query" in body["errors"][0]["message"]
    # A cursor with one character changed fails its signature.
    flipped = cursor[:10] + ("A" if cursor[10] != "A" else "B") + cursor[11:]
    async with api.http.get(SEARCH, params={**params, "cursor": flipped}) as resp:
        await assert_problem(resp, 400, ["cursor"])


async def test_bad_consistency_token(api: Api) -> None:
    for token in ("", "yesterday", "0/", "G/1", "1/2/3"):
        async with api.http.get(SEARCH, params=GOOD, headers={"X-Consistency-Token": token}) as resp:
            await assert_problem(resp, 400, ["X-Consistency-Token"])
        async with api.http.get("/v1/businesses/1", headers={"X-Consistency-Token": token}) as resp:
            await assert_problem(resp, 400, ["X-Consistency-Token"])


@pytest.mark.parametrize("raw_id", ["abc", "0", "-1", "1.5", "9223372036854775808", "99999999999999999999999"])
async def test_bad_business_id(api: Api, admin_headers: dict[str, str], raw_id: str) -> None:
    async with api.http.get(f"/v1/businesses/{raw_id}") as resp:
        await assert_problem(resp, 400, ["id"])
    async with api.http.delete(f"/v1/businesses/{raw_id}", headers=admin_headers) as resp:
        await assert_problem(resp, 400, ["id"])


async def test_unknown_business_is_404(api: Api) -> None:
    async with api.http.get("/v1/businesses/9223372036854775807") as resp:
        await assert_problem(resp, 404, [])


async def test_unknown_route_and_wrong_method(api: Api) -> None:
    async with api.http.get("/v2/nothing") as resp:
        await assert_problem(resp, 404, [])
    async with api.http.post(SEARCH, params=GOOD) as resp:
        await assert_problem(resp, 405, [])
        assert "GET" in resp.headers["Allow"]
    async with api.http.patch("/v1/businesses/1", json={}) as resp:
        await assert_problem(resp, 405, [])
        assert set(resp.headers["Allow"].split(", ")) >= {"GET", "PUT", "DELETE"}


VALID = {"name": "Cafe", "latitude": 1.5, "longitude": 2.5}


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        (b"{", ["body"]),
        (b"", ["body"]),
        (b"NaN", ["body"]),
        (b'{"name": "x", "latitude": NaN, "longitude": 1}', ["body"]),
        (b"[1, 2]", ["body"]),
        (b'"just a string"', ["body"]),
        (b"{}", ["name", "latitude", "longitude"]),
        (b'{"name": "x", "latitude": 1, "longitude": 2, "owner": 7}', ["owner"]),
        (b'{"name": "x", "latitude": 1, "longitude": 2, "Name": "y", "extra": null}', ["Name", "extra"]),
        (b'{"name": "x", "latitude": "1", "longitude": 2}', ["latitude"]),
        (b'{"name": "x", "latitude": true, "longitude": 2}', ["latitude"]),
        (b'{"name": "x", "latitude": null, "longitude": 2}', ["latitude"]),
        (b'{"name": "x", "latitude": 90.5, "longitude": -180.5}', ["latitude", "longitude"]),
        (b'{"name": "x", "latitude": 1e400, "longitude": 2}', None),
        (b'{"name": "", "latitude": 1, "longitude": 2}', ["name"]),
        (b'{"name": "  ", "latitude": 1, "longitude": 2}', ["name"]),
        (b'{"name": 5, "latitude": 1, "longitude": 2}', ["name"]),
        (b'{"name": "a\\u0000b", "latitude": 1, "longitude": 2}', ["name"]),
        (b'{"name": "x", "latitude": 1, "longitude": 2, "category": ["a"]}', ["category"]),
        (b'{"name": "x", "latitude": 1, "longitude": 2, "address": "a\\u0000"}', ["address"]),
        (b'{"name": "' + b"n" * 201 + b'", "latitude": 1, "longitude": 2}', ["name"]),
        (b'{"name": "\\ud800", "latitude": 1, "longitude": 2}', ["body"]),
        (b"\xff\xfe", ["body"]),
    ],
)
async def test_bad_bodies(api: Api, admin_headers: dict[str, str], body: bytes, fields: list[str] | None) -> None:
    headers = {**admin_headers, "Content-Type": "application/json"}
    async with api.http.post("/v1/businesses", data=body, headers=headers) as resp:
        await assert_problem(resp, 400, fields)
    async with api.http.put("/v1/businesses/1", data=body, headers=headers) as resp:
        await assert_problem(resp, 400, fields)


async def test_body_over_64_kib_is_413(api: Api, admin_headers: dict[str, str]) -> None:
    big = b'{"name": "x", "latitude": 1, "longitude": 2, "address": "' + b"a" * 70_000 + b'"}'
    async with api.http.post("/v1/businesses", data=big, headers=admin_headers) as resp:
        await assert_problem(resp, 413, [])
    async with api.http.put("/v1/businesses/1", data=big, headers=admin_headers) as resp:
        await assert_problem(resp, 413, [])


async def test_writes_need_a_writer_token(api: Api) -> None:
    secret = api.settings.jwt_secret
    cases = [
        ({}, 401),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, 401),
        ({"Authorization": "Bearer"}, 401),
        ({"Authorization": "Bearer not.a.jwt"}, 401),
        ({"Authorization": f"Bearer {mint_token('x' * 32 + 'another-secret', 1, Role.ADMIN)}"}, 401),
        ({"Authorization": f"Bearer {mint_token(secret, 1, Role.ADMIN, ttl_s=60, now=time.time() - 3600)}"}, 401),
        ({"Authorization": f"Bearer {mint_token(secret, 1, Role.USER)}"}, 403),
    ]
    for headers, status in cases:
        async with api.http.post("/v1/businesses", json=VALID, headers=headers) as resp:
            await assert_problem(resp, status, [])
            if status == 401:
                assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        async with api.http.put("/v1/businesses/1", json=VALID, headers=headers) as resp:
            await assert_problem(resp, status, [])
        async with api.http.delete("/v1/businesses/1", headers=headers) as resp:
            await assert_problem(resp, status, [])
    owner = {"Authorization": f"Bearer {mint_token(secret, 2, Role.OWNER)}"}
    async with api.http.post("/v1/businesses", json={**VALID, "latitude": -60.0}, headers=owner) as resp:
        assert resp.status == 201
        created = await resp.json()
    async with api.http.delete(f"/v1/businesses/{created['id']}", headers=owner) as resp:
        assert resp.status == 204


async def test_no_database_is_503_with_retry_after(
    api_settings: Settings, serve: Callable[[Settings], Awaitable[Api]], admin_headers: dict[str, str]
) -> None:
    # Nothing listens on port 1: every connection is refused at once. A Redis namespace of
    # its own: searches other tests cached would rightly be answered from the cache.
    dead = replace(
        api_settings,
        pg_primary="postgresql://postgres@127.0.0.1:1/geo",
        pg_replicas=("postgresql://postgres@127.0.0.1:1/geo",),
        redis_namespace=f"{api_settings.redis_namespace}-dead-{secrets.token_hex(3)}",
    )
    api = await serve(dead)
    for method, path, body in [
        ("GET", f"{SEARCH}?latitude=1&longitude=2", None),
        ("GET", f"{SEARCH}?latitude=1&longitude=2&index=sql", None),
        ("GET", "/v1/businesses/1", None),
        ("POST", "/v1/businesses", VALID),
        ("PUT", "/v1/businesses/1", VALID),
        ("DELETE", "/v1/businesses/1", None),
    ]:
        async with api.http.request(method, path, json=body, headers=admin_headers) as resp:
            await assert_problem(resp, 503, [])
            assert int(resp.headers["Retry-After"]) >= 1
    async with api.http.get("/readyz") as resp:
        assert resp.status == 503
        ready = await resp.json()
    assert ready["status"] == "not_ready" and ready["primary"]["status"] == "down"
    assert ready["index"]["status"] == "building"
    async with api.http.get("/healthz") as resp:
        assert resp.status == 200
