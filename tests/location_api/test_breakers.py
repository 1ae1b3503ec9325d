"""Circuit breakers at the API's edges: a dead primary fast-fails with 503, a dead replica is
skipped, a dead Redis is not called; all of it visible in /metrics."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace

from geo_common.breaker import State
from geo_common.settings import Settings
from location_api.keys import cache_key, db_key

from .conftest import Api, eventually, stop_api

#: Nothing listens on port 1: connections are refused at once.
DEAD_PG = "postgresql://postgres@127.0.0.1:1/geo"
DEAD_REDIS = "redis://127.0.0.1:1/0"


async def metrics_text(api: Api) -> str:
    async with api.http.get("/metrics") as resp:
        return await resp.text()


async def test_dead_primary_opens_its_breaker_and_writes_fail_fast_with_503(
    serve: Callable[[Settings], Awaitable[Api]],
    api_settings: Settings,
    admin_headers: dict[str, str],
) -> None:
    settings = replace(api_settings, pg_primary=DEAD_PG, api_role="write", breaker_failures=3, breaker_reset_s=60.0)
    api = await serve(settings)
    try:
        answers = []
        for _ in range(6):
            async with api.http.post(
                "/v1/businesses", json={"name": "x", "latitude": 1, "longitude": 1}, headers=admin_headers
            ) as resp:
                answers.append((resp.status, resp.content_type, int(resp.headers["Retry-After"])))
        assert all(
            status == 503 and kind == "application/problem+json" and retry >= 1 for status, kind, retry in answers
        ), answers
        breaker = api.app[db_key].primary.breaker
        assert breaker.state is State.OPEN and breaker.rejected >= 3
        assert answers[-1][2] > 30  # come back when the cool-down is over, not in a second
        text = await metrics_text(api)
        assert 'geo_circuit_breaker_state{dependency="postgres-primary",state="open"} 1.0' in text
        assert 'geo_circuit_breaker_rejected_total{dependency="postgres-primary"}' in text
    finally:
        await stop_api(api)


async def test_dead_replica_and_redis_are_skipped_and_searches_answer(
    serve: Callable[[Settings], Awaitable[Api]],
    api_settings: Settings,
) -> None:
    settings = replace(
        api_settings,
        pg_replicas=(DEAD_PG,),
        redis_url=DEAD_REDIS,
        breaker_failures=2,
        breaker_reset_s=60.0,
        api_role="all",
    )
    api = await serve(settings)
    db, cache = api.app[db_key], api.app[cache_key]
    try:
        params = {"latitude": "48.85", "longitude": "2.35", "radius": "2000", "index": "sql"}
        for _ in range(5):
            async with api.http.get("/v1/search/nearby", params=params) as resp:
                assert resp.status == 200, await resp.text()
        assert cache.breaker.state is State.OPEN and cache.breaker.rejected > 0

        async def replica_open() -> bool:  # opened by the health checks: it is not in rotation
            return db.replicas[0].breaker.state is State.OPEN

        await eventually(replica_open, "the replica's breaker to open", timeout=5)
        async with api.http.get("/readyz") as resp:
            assert resp.status == 200
        text = await metrics_text(api)
        assert 'geo_circuit_breaker_state{dependency="postgres-replica-1",state="open"} 1.0' in text
        assert 'geo_circuit_breaker_state{dependency="redis-cache",state="open"} 1.0' in text
        assert 'geo_circuit_breaker_state{dependency="postgres-primary",state="closed"} 1.0' in text
    finally:
        await stop_api(api)
