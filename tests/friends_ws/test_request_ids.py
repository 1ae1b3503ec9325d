"""Request ids and the sampled access log on the WebSocket tier: the handshake's answer (101
included) carries the id, the session's log lines carry it, and no line holds a position, a
token or a query string."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from websockets.asyncio.client import connect

from friends_ws.edge import install
from geo_common.tokens import mint_token
from tests.friends_ws.ws_helpers import SF, WAIT, Client, new_user
from tests.json_logs import json_logs
from tests.location_api.conftest import eventually

#: What the tier makes of an id it refuses: a process prefix and a serial number.
OWN_ID = re.compile(r"[0-9a-f]{12}-[0-9a-f]+")
WS = "/v1/friends/ws"


def leaked(lines: list[dict[str, Any]], *secrets: str) -> list[dict[str, Any]]:
    return [line for line in lines if any(s in json.dumps(line) for s in secrets)]


async def test_a_session_is_logged_under_its_handshakes_request_id(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(access_log_sample=1.0)
    user = new_user()
    token = mint_token(ws_settings.jwt_secret, user)
    session_log = logging.getLogger("friends_ws.share")
    level = session_log.level
    session_log.setLevel(logging.DEBUG)  # the session's home region line is DEBUG
    try:
        with json_logs() as lines:
            headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "ws-session.1"}
            ws = await connect(server.url, additional_headers=headers, compression=None, open_timeout=WAIT)
            client = Client(ws, user)
            try:
                assert ws.response is not None and ws.response.status_code == 101
                assert ws.response.headers["X-Request-Id"] == "ws-session.1"
                await client.location(*SF)
                await client.expect("init")
            finally:
                await client.close()

            async def logged() -> bool:
                return any(line["logger"] == "geo.access" for line in lines())

            await eventually(logged, "the session's access line")
    finally:
        session_log.setLevel(level)
    mine = [line for line in lines() if line.get("request_id") == "ws-session.1"]
    (access,) = [line for line in mine if line["logger"] == "geo.access"]
    assert (access["method"], access["route"], access["status"]) == ("GET", WS, 101)
    assert any(line["logger"] == "friends_ws.share" for line in mine), mine
    assert leaked(lines(), str(SF[0]), str(SF[1]), token) == []


@pytest.mark.parametrize(("sent", "kept"), [("edge-7f3a", True), ("a" * 65, False), ("two words", False)])
async def test_a_refused_handshake_carries_the_request_id(servers, sent: str, kept: bool) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.http}{WS}?token=abc", headers={"X-Request-Id": sent}) as resp:
            assert resp.status == 401
            answered = resp.headers["X-Request-Id"]
    assert answered == sent if kept else OWN_ID.fullmatch(answered)


async def test_the_operational_routes_are_sampled_by_template(servers) -> None:  # type: ignore[no-untyped-def]
    quiet, every = await servers(), await servers(access_log_sample=1.0)
    with json_logs() as lines:
        async with aiohttp.ClientSession() as http:
            for server in (quiet, every):
                for path in ("/healthz", "/nothing/42?latitude=12.345678"):
                    async with http.get(f"{server.http}{path}") as resp:
                        assert OWN_ID.fullmatch(resp.headers["X-Request-Id"])
    access = [(line["route"], line["status"]) for line in lines() if line["logger"] == "geo.access"]
    assert access == [("/healthz", 200), ("unmatched", 404)]
    assert leaked(lines(), "12.345678", "/nothing/42") == []


async def crash(request: web.Request) -> web.Response:
    raise RuntimeError(f"a bug while answering user {request.match_info['id']}")


async def test_an_unexpected_error_is_logged_under_its_route_template() -> None:
    # The tier's routes fail only on bugs: this one is a small app of its own with the same edge.
    app = web.Application()
    edge = install(app, access_log_sample=1.0)
    app.router.add_get("/crash/{id}", edge.route(crash))
    with json_logs() as lines:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            async with client.get(
                "/crash/77", params={"latitude": "12.345678"}, headers={"X-Request-Id": "c-1"}
            ) as resp:
                assert resp.status == 500 and resp.headers["X-Request-Id"] == "c-1"
    mine = [line for line in lines() if line.get("request_id") == "c-1"]
    assert [line["message"] for line in mine if line["logger"] == "friends_ws.edge"] == [
        "unexpected error answering GET /crash/{id}: RuntimeError"
    ]
    # aiohttp's own line, with the traceback, carries the id too.
    assert any(line["logger"] == "aiohttp.server" and "RuntimeError" in line["exception"] for line in mine)
    assert [(line["route"], line["status"]) for line in mine if line["logger"] == "geo.access"] == [
        ("/crash/{id}", 500)
    ]
    assert leaked(lines(), "12.345678", "latitude") == []
