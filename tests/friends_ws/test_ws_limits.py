"""Every bad message, oversized frames, rate limits and dead connections."""

from __future__ import annotations

import asyncio
import base64
import os

import pytest
from websockets.exceptions import ConnectionClosed

from geo_common.tokens import mint_token
from tests.friends_ws.ws_helpers import WAIT, new_user


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ("[]", "invalid_message"),
        ('{"type":"dance"}', "invalid_message"),
        ('{"latitude":1,"longitude":2}', "invalid_message"),
        ('{"type":"location","latitude":100,"longitude":0}', "invalid_value"),
        ('{"type":"location","latitude":0,"longitude":"east"}', "invalid_value"),
        ('{"type":"location","latitude":0,"longitude":0,"timestamp":"now"}', "invalid_value"),
        ('{"type":"settings","radius_m":5}', "invalid_value"),
        ('{"type":"settings","radius_m":1e7}', "invalid_value"),
        ('{"type":"sharing","enabled":1}', "invalid_value"),
        ('{"type":"sharing","enabled":true,"precision":"city"}', "invalid_value"),
    ],
)
async def test_a_bad_message_gets_an_error_and_the_connection_stays(servers, connect, frame, code) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    client = await connect(server, new_user())
    await client.ws.send(frame)
    error = await client.expect("error")
    assert error["code"] == code and error["detail"]
    await client.location(1.0, 2.0)
    await client.expect("init")


async def test_binary_frames_are_refused_with_an_error(servers, connect) -> None:  # type: ignore[no-untyped-def]
    client = await connect(await servers(), new_user())
    await client.ws.send(b'{"type":"location","latitude":1,"longitude":2}')
    assert (await client.expect("error"))["code"] == "invalid_message"
    await client.send(type="settings", radius_m=1000)
    assert await client.expect("settings") == {"type": "settings", "radius_m": 1000}


async def test_frames_over_4_kib_close_with_1009(servers, connect) -> None:  # type: ignore[no-untyped-def]
    client = await connect(await servers(), new_user())
    await client.ws.send('{"type":"location","pad":"' + "x" * 4096 + '"}')
    with pytest.raises(ConnectionClosed):
        await asyncio.wait_for(client.ws.recv(), WAIT)
    assert client.ws.close_code == 1009


async def test_too_many_updates_are_rate_limited(servers, connect) -> None:  # type: ignore[no-untyped-def]
    client = await connect(await servers(ws_max_updates_per_s=2.0), new_user())
    for _ in range(6):
        await client.location(1.0, 2.0)
    await client.expect("init")
    error = await client.expect("error")
    assert error["code"] == "rate_limited"
    server_side = [f for f in await client.quiet(0.2) if f.get("code") == "rate_limited"]
    # A burst of 2 goes through; of the other 4, all but what refills meanwhile are dropped.
    assert 3 <= 1 + len(server_side) <= 4


async def test_a_connection_that_stops_answering_pings_is_closed(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_ping_interval_s=0.2)
    # A raw client that completes the handshake and then never reads or answers anything.
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        token = mint_token(ws_settings.jwt_secret, new_user())
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /v1/friends/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        status = await reader.readline()
        assert b" 101 " in status
        hub = server.hub
        # The session registers once its start-up (a Redis round trip or two) is done: on a
        # loaded machine that can take longer than any fixed sleep.
        deadline = asyncio.get_running_loop().time() + WAIT
        while not hub.subscriptions.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.01)
        assert len(hub.subscriptions.sessions) == 1
        # The server pings after 0.2 s, waits 0.1 s for the pong, then gives up on us.
        deadline = asyncio.get_running_loop().time() + WAIT
        while hub.subscriptions.sessions and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert not hub.subscriptions.sessions
    finally:
        writer.close()  # also when an assertion fails: no socket left for a later test


async def test_a_client_that_answers_pings_stays_connected(servers, connect) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_ping_interval_s=0.1)
    client = await connect(server, new_user())  # the websockets client answers pings itself
    await client.quiet(0.6)  # six ping intervals of silence from the client's application
    assert len(server.hub.subscriptions.sessions) == 1
    await client.location(1.0, 2.0)
    await client.expect("init")
    pong = await client.ws.ping(b"are you there")
    await asyncio.wait_for(pong, WAIT)  # the server answers the client's pings too
