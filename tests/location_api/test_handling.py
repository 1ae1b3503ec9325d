"""The edge every route goes through (location_api.handling): failures become problem
documents, every answer is recorded, unknown routes and methods get problem documents too.
A small app of its own, served on a real socket."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from location_api.errors import NotFound
from location_api.handling import UNMATCHED, RouteTable, is_fallback
from location_api.metrics import Metrics


async def item(request: web.Request) -> web.Response:
    """Serve an item."""
    if request.match_info["id"] == "missing":
        raise NotFound("no such item")
    if request.match_info["id"] == "crash":
        raise RuntimeError("secret internals")
    return web.json_response({"id": request.match_info["id"]})


async def replace_item(_request: web.Request) -> web.Response:
    return web.Response(status=204)


async def moved(_request: web.Request) -> web.Response:
    raise web.HTTPFound("/items/1")


@pytest.fixture
async def served() -> AsyncIterator[tuple[TestClient, Metrics, web.Application]]:
    app = web.Application()
    metrics = Metrics()
    routes = RouteTable(app, metrics)
    routes.get("/items/{id}", item)
    routes.get("/old", moved)
    routes.post("/items", replace_item)
    # The same template again after another path: aiohttp makes it a second resource.
    routes.put("/items/{id}", replace_item)
    routes.close()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client, metrics, app


async def problem(resp: aiohttp.ClientResponse, status: int) -> dict[str, object]:
    assert resp.status == status
    assert resp.content_type == "application/problem+json"
    body = await resp.json()
    assert body["status"] == status
    return body


async def test_answers_are_recorded_under_the_route_template(
    served: tuple[TestClient, Metrics, web.Application],
) -> None:
    client, metrics, _ = served
    for _ in range(2):
        async with client.get("/items/7") as resp:
            assert resp.status == 200 and await resp.json() == {"id": "7"}
    async with client.head("/items/7") as resp:
        assert resp.status == 200
    async with client.put("/items/7") as resp:
        assert resp.status == 204
    assert metrics.requests.requests[("/items/{id}", "GET", 200)] == 2
    assert metrics.requests.requests[("/items/{id}", "HEAD", 200)] == 1
    assert metrics.requests.requests[("/items/{id}", "PUT", 204)] == 1
    slots = metrics.requests.latency[("/items/{id}", "GET")]
    assert sum(slots[:-1]) == 2 and slots[-1] > 0.0


async def test_an_api_error_is_its_problem_document(served: tuple[TestClient, Metrics, web.Application]) -> None:
    client, metrics, _ = served
    async with client.get("/items/missing") as resp:
        body = await problem(resp, 404)
    assert body["detail"] == "no such item"
    assert metrics.requests.requests[("/items/{id}", "GET", 404)] == 1


async def test_an_unexpected_error_is_a_500_that_leaks_nothing(
    served: tuple[TestClient, Metrics, web.Application], caplog: pytest.LogCaptureFixture
) -> None:
    client, metrics, _ = served
    with caplog.at_level(logging.ERROR, logger="location_api.errors"):
        async with client.get("/items/crash") as resp:
            body = await problem(resp, 500)
    assert "secret" not in str(body)
    assert any("secret internals" in str(r.exc_info[1]) for r in caplog.records if r.exc_info)
    assert metrics.requests.requests[("/items/{id}", "GET", 500)] == 1


async def test_a_redirect_passes_through_and_is_recorded(served: tuple[TestClient, Metrics, web.Application]) -> None:
    client, metrics, _ = served
    async with client.get("/old", allow_redirects=False) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/items/1"
    assert metrics.requests.requests[("/old", "GET", 302)] == 1


async def test_unknown_paths_are_404_problems(served: tuple[TestClient, Metrics, web.Application]) -> None:
    client, metrics, _ = served
    for path in ("/nothing", "/", "/items/7/more", "/old/"):
        async with client.get(path) as resp:
            assert (await problem(resp, 404))["detail"] == "no such route", path
    async with client.delete("/nowhere") as resp:
        await problem(resp, 404)
    assert metrics.requests.requests[(UNMATCHED, "GET", 404)] == 4
    assert metrics.requests.requests[(UNMATCHED, "DELETE", 404)] == 1


@pytest.mark.parametrize("target", [b"/old%0A", b"/a%0Ab/c", b"*", b"/%00", b"//double", b"http://elsewhere/nothing"])
async def test_any_other_request_target_is_a_404_problem(
    served: tuple[TestClient, Metrics, web.Application], target: bytes
) -> None:
    client, metrics, _ = served
    assert client.port is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", client.port)
    try:
        writer.write(b"OPTIONS " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        head, _, body = (await reader.read()).partition(b"\r\n\r\n")
    finally:
        writer.close()
    lines = head.split(b"\r\n")
    assert lines[0] == b"HTTP/1.1 404 Not Found", target
    assert b"content-type: application/problem+json" in [line.lower() for line in lines]
    assert json.loads(body)["status"] == 404
    assert metrics.requests.requests[(UNMATCHED, "OPTIONS", 404)] == 1


async def test_a_method_the_path_lacks_is_a_405_with_every_allowed_method(
    served: tuple[TestClient, Metrics, web.Application],
) -> None:
    client, metrics, _ = served
    # Allowed methods of a template registered twice are gathered from both registrations.
    async with client.delete("/items/7") as resp:
        body = await problem(resp, 405)
        assert resp.headers["Allow"] == "GET, HEAD, PUT"
    assert "DELETE" in str(body["detail"])
    async with client.patch("/items") as resp:
        await problem(resp, 405)
        assert resp.headers["Allow"] == "POST"
    async with client.post("/old") as resp:
        await problem(resp, 405)
        assert resp.headers["Allow"] == "GET, HEAD"
    assert metrics.requests.requests[(UNMATCHED, "DELETE", 405)] == 1
    assert metrics.requests.requests[(UNMATCHED, "PATCH", 405)] == 1
    assert not any(route != UNMATCHED and status == 405 for route, _, status in metrics.requests.requests)


async def test_allow_lists_the_methods_of_every_template_the_path_matches() -> None:
    app = web.Application()
    metrics = Metrics()
    routes = RouteTable(app, metrics)
    routes.get("/things/{id}", item)
    routes.post("/things/new", replace_item)
    routes.close()
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        # GET /things/new is served (by /things/{id}), so Allow names it beside POST.
        async with client.get("/things/new") as resp:
            assert resp.status == 200
        async with client.delete("/things/new") as resp:
            await problem(resp, 405)
            assert resp.headers["Allow"] == "GET, HEAD, POST"
    assert metrics.requests.requests[("/things/{id}", "GET", 200)] == 1
    assert metrics.requests.requests[(UNMATCHED, "DELETE", 405)] == 1


async def test_fallbacks_are_told_apart_from_served_routes(served: tuple[TestClient, Metrics, web.Application]) -> None:
    _, _, app = served
    routes = [(route.method, resource.canonical) for resource in app.router.resources() for route in resource]
    served_routes = {r for r in routes if r[0] != "*"}
    fallbacks = [
        (route.method, resource.canonical)
        for resource in app.router.resources()
        for route in resource
        if is_fallback(route)
    ]
    assert served_routes == {
        ("GET", "/items/{id}"),
        ("HEAD", "/items/{id}"),
        ("GET", "/old"),
        ("HEAD", "/old"),
        ("POST", "/items"),
        ("PUT", "/items/{id}"),
    }
    # One fallback, under "/", of every method: the resource for what no route serves.
    assert fallbacks == [("*", "/")]
    assert sorted(routes) == sorted([*served_routes, ("*", "/")])
    unmatched = await app.router.resolve(make_mocked_request("DELETE", "/items/7", app=app))
    assert is_fallback(unmatched.route)
    served_match = await app.router.resolve(make_mocked_request("GET", "/items/7", app=app))
    assert not is_fallback(served_match.route)
    # Only aiohttp's public interface: the fallback is an AbstractResource that overrides none
    # of aiohttp's private names, which would tie the app to the releases it was tried on.
    (fallback,) = [r for r in app.router.resources() if type(r) not in (web.PlainResource, web.DynamicResource)]
    assert type(fallback).__bases__ == (web.AbstractResource,)
    aiohttp_private = {
        name
        for base in web.AbstractResource.__mro__
        for name in vars(base)
        if name.startswith("_") and not name.startswith("__") and name != "_abc_impl"  # ABCMeta's own
    }
    assert not aiohttp_private & set(vars(type(fallback)))
