"""Health, readiness, metrics, the OpenAPI document, and the read/write role split."""

from __future__ import annotations

import os

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import pytest

from geo_common.settings import Settings
from location_api.handling import is_fallback
from location_api.search_params import AREA_PARAMETERS, SEARCH_PARAMETERS

from .conftest import Api, drop_database, small_database, stop_api


@pytest.fixture(scope="module")
async def small_settings(settings: Settings) -> AsyncIterator[Settings]:
    """A database with 500 places, for instances that only need to start quickly."""
    small = await small_database(settings, "ops", places=500)
    yield small
    await drop_database(settings.pg_primary, small.pg_primary.rpartition("/")[2])


@pytest.fixture(scope="module")
async def roles(small_settings: Settings, serve: Callable[[Settings], Awaitable[Api]]) -> AsyncIterator[dict[str, Api]]:
    # The read instance builds only the geohash index.
    apis = {
        role: await serve(replace(small_settings, api_role=role, api_indexes=("geohash",)))
        for role in ("read", "write")
    }
    yield apis
    for api in apis.values():
        await stop_api(api)


async def test_healthz(api: Api) -> None:
    async with api.http.get("/healthz") as resp:
        assert resp.status == 200 and await resp.json() == {"status": "ok", "pid": os.getpid()}  # served in-process


async def test_readyz_reports_each_dependency(api: Api) -> None:
    async with api.http.get("/readyz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["status"] == "ready" and body["role"] == "all"
    assert body["primary"]["status"] == "up"
    assert [r["status"] for r in body["replicas"].values()] == ["up"] * len(api.settings.pg_replicas)
    assert body["redis"] == {"status": "up"}
    assert body["index"]["status"] == "ready" and body["index"]["businesses"] > 140_000


async def test_metrics(api: Api) -> None:
    for _ in range(3):
        async with api.http.get("/v1/search/nearby", params={"latitude": "1", "longitude": "2", "index": "sql"}):
            pass
    async with api.http.get("/v1/search/nearby", params={"latitude": "x"}):
        pass
    async with api.http.get("/metrics") as resp:
        assert resp.status == 200 and resp.content_type == "text/plain"
        text = await resp.text()
    lines = text.splitlines()
    assert any(
        line.startswith('geo_api_requests_total{method="GET",route="/v1/search/nearby",status="200"}') for line in lines
    )
    assert any(
        line.startswith('geo_api_requests_total{method="GET",route="/v1/search/nearby",status="400"}') for line in lines
    )
    assert any(
        line.startswith('geo_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/v1/search/nearby"}')
        for line in lines
    )
    for name in (
        'geo_api_cache_lookups_total{kind="business",result="hit"}',
        'geo_api_cache_lookups_total{kind="business",result="miss"}',
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "geo_api_cache_up 1.0",
        'geo_api_db_up{server="primary"} 1.0',
        'geo_api_replica_replay_lag_seconds{server="replica-1"}',
        'geo_api_replica_replay_lag_bytes{server="replica-1"}',
        'geo_api_index_size{index="geohash"}',
        'geo_api_index_size{index="quadtree"}',
        'geo_api_index_size{index="s2"}',
        'geo_api_db_queries_total{server="replica-1"}',
        "geo_api_index_refresh_age_seconds",
    ):
        assert any(line.startswith(name) for line in lines), name
    # GEO_PROCESS_TUNING is on by default: the catalog's build was followed by a collapse.
    huge = next(float(line.split()[1]) for line in lines if line.startswith("geo_api_huge_page_bytes "))
    assert huge >= 2 * 1024 * 1024


async def test_openapi_describes_every_route(api: Api) -> None:
    async with api.http.get("/openapi.json") as resp:
        doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    served = {
        (method, resource.canonical)
        for resource in api.app.router.resources()
        for route in resource
        for method in [route.method]
        if method != "HEAD" and not is_fallback(route)
    }
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert described == served
    for path, known in (("/v1/search/nearby", SEARCH_PARAMETERS), ("/v1/search/area", AREA_PARAMETERS)):
        described_parameters = {p["name"] for p in doc["paths"][path]["get"]["parameters"] if "name" in p}
        assert described_parameters == set(known), path
    for status in ("400", "401", "403", "404", "413", "503"):
        assert status in doc["paths"]["/v1/businesses/{id}"]["put"]["responses"]


async def test_a_read_instance_serves_no_writes(roles: dict[str, Api], small_settings: Settings) -> None:
    read = roles["read"]
    async with read.http.get("/v1/search/nearby", params={"latitude": "42.5", "longitude": "1.5"}) as resp:
        assert resp.status == 200
    # Not served here: no such route (404), or the route exists only for GET (405).
    async with read.http.post("/v1/businesses", json={}) as resp:
        assert resp.status == 404 and resp.content_type == "application/problem+json"
    async with read.http.delete("/v1/businesses/1") as resp:
        assert resp.status == 405 and resp.headers["Allow"] == "GET, HEAD"
    async with read.http.get("/openapi.json") as resp:
        paths = (await resp.json())["paths"]
    assert "/v1/businesses" not in paths and set(paths["/v1/businesses/{id}"]) == {"get"}
    async with read.http.get("/readyz") as resp:
        assert (await resp.json())["role"] == "read"


async def test_a_write_instance_serves_no_reads(roles: dict[str, Api], admin_headers: dict[str, str]) -> None:
    write = roles["write"]
    async with write.http.get("/v1/search/nearby", params={"latitude": "1", "longitude": "2"}) as resp:
        assert resp.status == 404 and resp.content_type == "application/problem+json"
    async with write.http.get("/v1/businesses/1") as resp:
        assert resp.status == 405
    async with write.http.post(
        "/v1/businesses", json={"name": "W", "latitude": 1, "longitude": 2}, headers=admin_headers
    ) as resp:
        assert resp.status == 201
    async with write.http.get("/readyz") as resp:
        body = await resp.json()
    assert body["role"] == "write" and "index" not in body and resp.status == 200


async def test_a_strategy_not_built_is_answered_by_sql(roles: dict[str, Api]) -> None:
    read = roles["read"]
    async with read.http.get("/readyz") as resp:
        assert (await resp.json())["index"]["strategies"] == ["geohash"]
    bodies = []
    for strategy in ("geohash", "quadtree", "s2", "sql"):
        params = {"latitude": "42.5", "longitude": "1.5", "radius": "50000", "limit": "7", "index": strategy}
        async with read.http.get("/v1/search/nearby", params=params) as resp:
            bodies.append(await resp.json())
    assert bodies[0]["total"] > 7 and all(b == bodies[0] for b in bodies)
