"""The WebSocket connection below aiohttp (friends_ws.connection, friends_ws.site), on a real
socket: what a client that breaks the protocol gets, what shares the port, the close."""

from __future__ import annotations

import asyncio
import base64
import os

import orjson

from friends_ws.frames import close_frame
from geo_common.tokens import mint_token
from tests.friends_ws.test_wire import frame
from tests.friends_ws.ws_helpers import WAIT, Server, new_user

Streams = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def handshake(token: str | None, *, path: str = "/v1/friends/ws", upgrade: bool = True) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1"]
    if upgrade:
        lines += ["Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
    if token is not None:
        lines.append(f"Authorization: Bearer {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """An HTTP answer's status, headers (lower-case names) and body."""
    head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT)).decode()
    status_line, *fields = head.strip().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
    length = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(length), WAIT) if length else b""
    return int(status_line.split(" ")[1]), headers, body


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    first, second = await asyncio.wait_for(reader.readexactly(2), WAIT)
    n = second & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    return first & 0x0F, await asyncio.wait_for(reader.readexactly(n), WAIT)


async def read_until(reader: asyncio.StreamReader, opcode: int) -> bytes:
    while True:
        kind, payload = await read_frame(reader)
        if kind == opcode:
            return payload


async def opened(server: Server, settings, user: int) -> Streams:  # type: ignore[no-untyped-def]
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(handshake(mint_token(settings.jwt_secret, user)))
    status, headers, _ = await answer(reader)
    assert status == 101 and headers["upgrade"] == "websocket" and headers["x-request-id"]
    return reader, writer


def text(message: dict) -> bytes:  # type: ignore[type-arg]
    return frame(0x1, orjson.dumps(message))


async def test_a_fragmented_message_with_a_ping_between_is_read_as_one(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await opened(await servers(), ws_settings, new_user())
    body = orjson.dumps({"type": "location", "latitude": 37.77, "longitude": -122.41})
    writer.write(frame(0x1, body[:10], fin=False) + frame(0x9, b"are you there") + frame(0x0, body[10:]))
    assert await read_until(reader, 0xA) == b"are you there"
    assert orjson.loads(await read_until(reader, 0x1))["type"] == "init"
    writer.close()


async def test_many_messages_at_once_are_answered_each_in_order(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    """More than pause reading (8): every one is handled, in the order sent."""
    reader, writer = await opened(await servers(), ws_settings, new_user())
    writer.write(b"".join(text({"type": f"nonsense-{i}"}) for i in range(40)))
    details = [orjson.loads(await read_until(reader, 0x1))["detail"] for _ in range(40)]
    assert [d.count(f"nonsense-{i}") for i, d in enumerate(details)] == [1] * 40
    writer.close()


async def test_broken_frames_close_with_the_rfc_codes(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    cases = {
        1002: bytes((0x81, 2)) + b"hi",  # unmasked
        1007: frame(0x1, b"\xff\xfe"),
        1009: frame(0x1, b"x" * 5000)[:8],  # the header alone
    }
    for code, data in cases.items():
        reader, writer = await opened(server, ws_settings, new_user())
        writer.write(data)
        payload = await read_until(reader, 0x8)
        assert int.from_bytes(payload[:2], "big") == code, payload
        writer.write(frame(0x8, payload[:2]))  # the client's close: the server closes the socket
        assert await asyncio.wait_for(reader.read(), WAIT) == b""
        writer.close()


async def test_a_clients_close_is_answered_and_its_place_freed(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers(ws_max_sockets_per_user=1)
    user = new_user()
    reader, writer = await opened(server, ws_settings, user)
    writer.write(frame(0x8, close_frame(4000, b"done")[2:]))
    payload = await read_until(reader, 0x8)
    assert int.from_bytes(payload[:2], "big") == 4000
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()
    for _ in range(50):  # the session ends after the socket: the user's one place comes back
        if server.hub.stats.connections_total and not len(server.hub.keepalive):
            break
        await asyncio.sleep(0.05)
    reader, writer = await opened(server, ws_settings, user)
    writer.close()


async def test_other_requests_share_the_port_and_a_late_handshake_is_told_why(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    for _ in range(2):  # one kept-alive connection, aiohttp's
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await answer(reader)
        assert status == 200
    writer.write(handshake(mint_token(ws_settings.jwt_secret, new_user())))
    status, headers, body = await answer(reader)
    assert status == 400 and b"first request of a new connection" in body and headers["x-request-id"]
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"POST /v1/friends/ws HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
    status, headers, _ = await answer(reader)
    assert status == 405 and headers["allow"] == "GET"
    writer.close()


async def test_handshakes_that_are_not_one_get_a_clear_http_error(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    server = await servers()
    token = mint_token(ws_settings.jwt_secret, new_user())
    big = handshake(token).replace(b"\r\n\r\n", b"\r\nX-Pad: " + b"a" * 20_000 + b"\r\n\r\n")
    for request, status, says in (
        (handshake(token, upgrade=False), 400, b"send Upgrade: websocket"),
        (b"GET /v1/friends/ws HTTP/1.1\r\nno colon here\r\n\r\n", 400, b"name: value"),
        (big, 431, b"over 16384 bytes"),
        (handshake(None), 401, b"missing token"),
        (handshake("forged.token.here"), 401, b""),
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(request)
        got, headers, body = await answer(reader)
        assert (got, says in body, headers["connection"]) == (status, True, "close"), body
        assert await asyncio.wait_for(reader.read(), WAIT) == b""  # and the connection is closed
        writer.close()


async def test_frames_sent_with_the_handshake_are_read_after_it(servers, ws_settings) -> None:  # type: ignore[no-untyped-def]
    reader, writer = await asyncio.open_connection("127.0.0.1", (await servers()).port)
    location = text({"type": "location", "latitude": 37.77, "longitude": -122.41})
    writer.write(handshake(mint_token(ws_settings.jwt_secret, new_user())) + location)
    status, _, _ = await answer(reader)
    assert status == 101
    assert orjson.loads(await read_until(reader, 0x1))["type"] == "init"
    writer.close()


async def test_a_client_that_stalls_before_its_request_is_closed(servers, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr("friends_ws.connection.HEAD_TIMEOUT_S", 0.3)
    server = await servers()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)  # says nothing
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(b"GET /v1/friends/ws HTTP/1.1\r\nHost: x\r\n")  # and never the rest
    status, _, body = await answer(reader)
    assert status == 408 and b"within 0.3 s" in body
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()


async def test_a_failure_opening_the_session_closes_with_1011_and_frees_the_place(  # type: ignore[no-untyped-def]
    servers, ws_settings, monkeypatch
) -> None:
    server = await servers(ws_max_sockets_per_user=1)

    async def broken(self) -> None:  # type: ignore[no-untyped-def]
        raise RuntimeError("a bug")

    monkeypatch.setattr("friends_ws.session.Session.open", broken)
    user = new_user()
    reader, writer = await opened(server, ws_settings, user)
    payload = await read_until(reader, 0x8)
    assert (int.from_bytes(payload[:2], "big"), payload[2:]) == (1011, b"internal error")
    writer.write(frame(0x8, payload[:2]))
    assert await asyncio.wait_for(reader.read(), WAIT) == b""
    writer.close()
    monkeypatch.undo()
    for _ in range(100):  # the session ends after the socket: then the place is free
        if not len(server.hub.keepalive):
            break
        await asyncio.sleep(0.1)
    _reader, writer = await opened(server, ws_settings, user)
    writer.close()
