"""The page's HTTP routes without a browser: static files, config, dev tokens, watch sampling."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import hypothesis
import hypothesis.errors
import pytest
import redis.asyncio as aioredis
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis import CheckFunction, GenerationMode
from schemathesis.specs.openapi.checks import negative_data_rejection

from geo_common.presence import Location, encode_cached, location_key
from geo_common.settings import Settings, SettingsError
from geo_common.tokens import Role, verify_token
from location_api.app import create_app
from location_api.handling import is_fallback
from location_api.page.views import friends_ws_url, parse_watch_limit, static_files
from location_api.page.watch import RegionCache, decode_positions, sample_positions, user_id_of

from .conftest import Services

PAGE_ROUTES = {"/", "/static/{path}", "/v1/page/config", "/v1/watch/positions", "/v1/dev/token"}


async def test_the_page_and_its_files_are_served(services: Services) -> None:
    http = services.api.http
    async with http.get("/") as resp:
        assert resp.status == 200 and resp.content_type == "text/html"
        assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
        assert '<main id="map"' in await resp.text()
    for path, content_type in [
        ("/static/app.js", "text/javascript"),
        ("/static/vendor/leaflet/leaflet.css", "text/css"),
        ("/static/vendor/world-atlas/countries-110m.json", "application/json"),
        ("/static/vendor/leaflet/LICENSE", "text/plain"),
    ]:
        async with http.get(path) as resp:
            assert resp.status == 200 and resp.content_type == content_type, path
    for name in ("leaflet", "topojson-client", "world-atlas"):
        assert f"vendor/{name}/LICENSE" in static_files()
    # Only the files of the table: nothing else of the package or the disk.
    for path in (
        "/static/nope.js",
        "/static/../views.py",
        "/static/%2e%2e/views.py",
        "/static/vendor/../../app.py",
        "/static//etc/passwd",
        "/static/vendor",
    ):
        async with http.get(path) as resp:
            assert resp.status == 404 and resp.content_type == "application/problem+json", path


async def test_the_config_names_the_websocket_tier(services: Services) -> None:
    async with services.api.http.get("/v1/page/config") as resp:
        body = await resp.json()
    assert body["friends_ws_url"] == services.friends.url and body["dev"] is True
    assert body["search"]["max_radius_m"] == services.settings.max_radius_m
    assert friends_ws_url("::1", 8081, secure=False) == "ws://[::1]:8081/v1/friends/ws"
    assert friends_ws_url("geo.example", 8443, secure=True) == "wss://geo.example:8443/v1/friends/ws"
    with pytest.raises(SettingsError, match="GEO_FRIENDS_PUBLIC_URL"):
        Settings.from_env({"GEO_FRIENDS_PUBLIC_URL": "http://geo.example/v1/friends/ws"})
    assert Settings.from_env({"GEO_FRIENDS_PUBLIC_URL": ""}).friends_public_url == ""


async def test_dev_tokens_only_in_dev_mode(services: Services) -> None:
    http = services.api.http
    async with http.post("/v1/dev/token", json={"user_id": 42, "role": "admin"}) as resp:
        assert resp.status == 200
        body = await resp.json()
    identity = verify_token(services.settings.jwt_secret, body["token"])
    assert (identity.user_id, identity.role, body["user_id"], body["role"]) == (42, Role.ADMIN, 42, "admin")
    async with http.post("/v1/dev/token", json={"user_id": 7}) as resp:
        assert verify_token(services.settings.jwt_secret, (await resp.json())["token"]).role is Role.USER
    bad: list[tuple[Any, set[str]]] = [
        ({}, {"user_id"}),
        ({"user_id": 0}, {"user_id"}),
        ({"user_id": True}, {"user_id"}),
        ({"user_id": "1"}, {"user_id"}),
        ({"user_id": 1, "role": "root"}, {"role"}),
        ({"user_id": 1, "extra": 1}, {"extra"}),
        ([1], {"body"}),
    ]
    for document, fields in bad:
        async with http.post("/v1/dev/token", json=document) as resp:
            assert resp.status == 400 and resp.content_type == "application/problem+json", document
            assert {e["field"] for e in (await resp.json())["errors"]} == fields, document
    async with http.post("/v1/dev/token", data=b"{nope") as resp:
        assert resp.status == 400
    # Without GEO_DEV the route does not exist, and the document does not describe it.
    plain = create_app(replace(services.settings, dev=False))
    assert "/v1/dev/token" not in {r.canonical for r in plain.router.resources()}
    write_only = create_app(replace(services.settings, api_role="write"))
    assert not PAGE_ROUTES & {r.canonical for r in write_only.router.resources() if not all(map(is_fallback, r))}


async def test_the_openapi_document_describes_the_dev_instance(services: Services) -> None:
    async with services.api.http.get("/openapi.json") as resp:
        doc = await resp.json()
    served = {
        (route.method, resource.canonical)
        for resource in services.api.app.router.resources()
        for route in resource
        if route.method != "HEAD" and not is_fallback(route)
    }
    described = {(method.upper(), path) for path, item in doc["paths"].items() for method in item}
    assert described == served
    assert PAGE_ROUTES <= set(doc["paths"])


async def test_watch_needs_an_admin_and_a_sane_limit(services: Services) -> None:
    http = services.api.http
    async with http.get("/v1/watch/positions") as resp:
        assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    user = {"Authorization": f"Bearer {services.token(5)}"}
    async with http.get("/v1/watch/positions", headers=user) as resp:
        assert resp.status == 403
    admin = {"Authorization": f"Bearer {services.token(1, Role.ADMIN)}"}
    for query in ("limit=0", "limit=5001", "limit=abc", "limit=", "limit=1&limit=2", "lim=3", "limit=１"):
        async with http.get(f"/v1/watch/positions?{query}", headers=admin) as resp:
            assert resp.status == 400 and resp.content_type == "application/problem+json", query
    async with http.get("/v1/watch/positions?limit=1", headers=admin) as resp:
        assert resp.status == 200 and len((await resp.json())["positions"]) <= 1


def test_watch_parsing_known_values() -> None:
    from multidict import MultiDict

    assert parse_watch_limit(MultiDict()) == 2000
    assert parse_watch_limit(MultiDict(limit="5000")) == 5000
    assert user_id_of(b"geo:default:loc:{42}") == 42
    assert user_id_of(b"geo:default:loc:{}") is None and user_id_of(b"geo:default:ch:{42}") is None
    cached = encode_cached(Location(42, 1.5, -2.5, 1000, None, "c"))
    (position,) = decode_positions([b"ns:r:loc:{42}", b"ns:r:loc:{43}", b"ns:r:loc:{44}"], [cached, None, b"junk"])
    assert position.to_json() == {"user_id": 42, "latitude": 1.5, "longitude": -2.5, "updated_at": 1000}


async def test_the_watch_sample_is_bounded(settings: Settings) -> None:
    namespace = f"{settings.redis_namespace}-watch"
    redis = aioredis.Redis.from_url(settings.redis_url)
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for user in range(1, 31):
                pipe.set(
                    location_key(namespace, "default", user), encode_cached(Location(user, user / 10, 0.0, user)), ex=60
                )
            pipe.set(location_key(namespace, "other", 99), encode_cached(Location(99, 0.0, 0.0, 1)), ex=60)
            await pipe.execute()
        caches = [RegionCache("default", redis)]
        some = await sample_positions(caches, namespace, 10)
        assert len(some.positions) == 10 and not some.complete
        every = await sample_positions(caches, namespace, 5000)
        assert every.complete and sorted(p.user_id for p in every.positions) == list(range(1, 31))
        both = await sample_positions([*caches, RegionCache("other", redis)], namespace, 5000)
        assert len(both.positions) == 31 and both.complete
    finally:
        keys = [k async for k in redis.scan_iter(match=f"{namespace}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


def _fuzz(base_url: str, headers: dict[str, str]) -> list[str]:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()  # type: ignore[union-attr]
        if operation.path not in PAGE_ROUTES:
            continue
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @hypothesis.settings(
                max_examples=30,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )
            @hypothesis.given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                # A query parameter named "" or valued [] never reaches the server (it cannot
                # be written in a URL), so a "negative" case made only of one is sent as a
                # valid request (schemathesis issue #3730); the others must be refused.
                lost = any(name == "" or value == [] for name, value in (case.query or {}).items())
                excluded: list[CheckFunction] | None = [negative_data_rejection] if lost else None
                case.call_and_validate(base_url=base_url, headers=headers, excluded_checks=excluded)

            try:
                check()
            except hypothesis.errors.Unsatisfiable:
                pass
            except Exception as exc:  # noqa: BLE001 - collect every operation's failures, then report them all
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    return failures


async def test_schemathesis_finds_nothing_wrong_with_the_page_routes(services: Services) -> None:
    base_url = services.api.url("").rstrip("/")
    admin = {"Authorization": f"Bearer {services.token(1, Role.ADMIN)}"}
    failures = await asyncio.to_thread(_fuzz, base_url, admin)
    assert not failures, "\n\n".join(failures)
