"""The WebSocket handshake as bytes (friends_ws.handshake): the request head, the answers."""

from __future__ import annotations

import pytest

from friends_ws.handshake import (
    MAX_HEAD,
    First,
    HeadError,
    accept_key,
    first_request,
    read_head,
    refusal,
    switching,
    upgrade_problem,
)

KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 section 1.3's example
HANDSHAKE = (
    "GET /v1/friends/ws?a=1&b= HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\nConnection: keep-alive, Upgrade\r\n"
    f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: geo.v1\r\n"
    "Sec-WebSocket-Protocol: bearer.t\r\n\r\n"
).encode()


def test_the_first_bytes_say_whose_connection_it_is() -> None:
    assert first_request(b"GET /v1/friends/ws HTTP/1.1\r\n") is First.HANDSHAKE
    assert first_request(b"GET /v1/friends/ws?x") is First.HANDSHAKE
    for partial in (b"", b"G", b"GET /v1/fri", b"GET /v1/friends/ws"):
        assert first_request(partial) is First.UNSURE, partial
    for other in (b"GET /healthz", b"POST /v1/friends/ws ", b"GET /v1/friends/wsx", b"HEAD /", b"\x16\x03\x01"):
        assert first_request(other) is First.OTHER, other


def test_a_head_is_read_once_whole() -> None:
    assert read_head(HANDSHAKE[:-1]) is None
    head, length = read_head(HANDSHAKE + b"\x81\x80frame") or pytest.fail("no head")
    assert length == len(HANDSHAKE)
    assert (head.method, head.path, head.query) == ("GET", "/v1/friends/ws", {"a": "1", "b": ""})
    assert head.headers["upgrade"] == "WebSocket"
    assert head.headers.getall("Sec-WebSocket-Protocol") == ["geo.v1", "bearer.t"]
    assert upgrade_problem(head) is None


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"GET /v1/friends/ws\r\n\r\n", 400),
        (b"GET /v1/friends/ws HTTP/2\r\n\r\n", 400),
        (b"GET /v1/friends/ws HTTP/1.1\r\nno colon\r\n\r\n", 400),
        (b"GET /v1/friends/ws HTTP/1.1\r\nBad Name: x\r\n\r\n", 400),
        (b"GET /v1/friends/ws HTTP/1.1\r\n folded: x\r\n\r\n", 400),
        (b"GET /v1/friends/ws HTTP/1.1\r\nX: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
        (b"GET /v1/friends/ws HTTP/1.1\r\nX: " + b"a" * MAX_HEAD, 431),
    ],
)
def test_a_broken_or_huge_head_is_refused(data: bytes, status: int) -> None:
    with pytest.raises(HeadError) as caught:
        read_head(data)
    assert caught.value.status == status


@pytest.mark.parametrize(
    ("drop", "replace", "problem"),
    [
        ("Upgrade: WebSocket\r\n", "", "Upgrade: websocket"),
        ("Connection: keep-alive, Upgrade\r\n", "Connection: keep-alive\r\n", "Connection: Upgrade"),
        ("Sec-WebSocket-Version: 13\r\n", "Sec-WebSocket-Version: 8\r\n", "version 13"),
        (f"Sec-WebSocket-Key: {KEY}\r\n", "Sec-WebSocket-Key: c2hvcnQ=\r\n", "16 random bytes"),
        (f"Sec-WebSocket-Key: {KEY}\r\n", "Sec-WebSocket-Key: not base64!\r\n", "16 random bytes"),
    ],
)
def test_what_is_no_websocket_handshake_is_named(drop: str, replace: str, problem: str) -> None:
    read = read_head(HANDSHAKE.replace(drop.encode(), replace.encode()))
    assert read is not None
    assert problem in (upgrade_problem(read[0]) or "")


def test_the_answers() -> None:
    assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    read = read_head(HANDSHAKE)
    assert read is not None
    answer = switching(read[0], protocol="geo.v1", request_id="abc").decode()
    assert answer.startswith("HTTP/1.1 101 Switching Protocols\r\n") and answer.endswith("\r\n\r\n")
    assert "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" in answer
    assert "Sec-WebSocket-Protocol: geo.v1\r\n" in answer and "X-Request-Id: abc\r\n" in answer
    assert "Sec-WebSocket-Protocol" not in switching(read[0], protocol=None, request_id="abc").decode()
    no = refusal(429, "at most 2\n", {"Retry-After": "15"}).decode()
    head, body = no.split("\r\n\r\n")
    assert head.splitlines()[0] == "HTTP/1.1 429 Too Many Requests"
    assert {"Retry-After: 15", "Content-Length: 10", "Connection: close"} <= set(head.splitlines())
    assert "Content-Type: text/plain; charset=utf-8" in head and body == "at most 2\n"
