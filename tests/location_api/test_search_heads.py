"""What request heads are (location_api.search_heads), from their bytes."""

from __future__ import annotations

import pytest

from location_api.search_heads import MAX_HEAD, Other, Search, Verdict, next_request

NEARBY = b"GET /v1/search/nearby?latitude=1&longitude=2 HTTP/1.1\r\nHost: geo\r\n"


def test_a_plain_search_is_read_with_its_route_query_id_and_end() -> None:
    head = NEARBY + b"X-Request-Id:  abc-1 \r\nX-Request-Id: second\r\nConnection: keep-alive\r\n\r\n"
    data = b"junk" + head + b"GET /v1/search/area?bbox=1%2C2%2C3%2C4 HTTP/1.1\r\n\r\n"
    first = next_request(data, 4)
    assert first == Search("/v1/search/nearby", "latitude=1&longitude=2", "abc-1", 4 + len(head))
    second = next_request(data, first.end)
    assert second == Search("/v1/search/area", "bbox=1%2C2%2C3%2C4", None, len(data))
    assert next_request(data, len(data)) is Verdict.INCOMPLETE


def test_a_head_not_whole_yet_is_incomplete_until_it_is_too_long() -> None:
    assert next_request(NEARBY, 0) is Verdict.INCOMPLETE
    assert next_request(NEARBY[:10], 0) is Verdict.INCOMPLETE
    assert next_request(NEARBY + b"X-Pad: " + b"p" * MAX_HEAD, 0) is Verdict.HAND_OVER
    assert next_request(NEARBY + b"X-Pad: " + b"p" * MAX_HEAD + b"\r\n\r\n", 0) is Verdict.HAND_OVER


@pytest.mark.parametrize(
    "head",
    [
        b"GET /v1/search/nearby?latitude=1 HTTP/1.0\r\n",
        b"GET  /v1/search/nearby?latitude=1 HTTP/1.1\r\n",
        b"GET /v1/search/nearby?latitude=1#x HTTP/1.1\r\n",
        b"GET /v1/search/nearby?q=caf\xc3\xa9 HTTP/1.1\r\n",
        b"G(T /v1/search/nearby?latitude=1 HTTP/1.1\r\n",
        NEARBY + b"Content-Length: 0\r\n",
        NEARBY + b"transfer-encoding: chunked\r\n",
        NEARBY + b"Expect: 100-continue\r\n",
        NEARBY + b"Upgrade: websocket\r\n",
        NEARBY + b"Connection: Keep-Alive, Close\r\n",
        NEARBY + b"Connection: upgrade\r\n",
        NEARBY + b"X-A : b\r\n",
        NEARBY + b"X-A: b\r\n folded\r\n",
        NEARBY + b"no colon\r\n",
        NEARBY + b": no name\r\n",
        NEARBY + b"X-A: b\rc\r\n",
        NEARBY + b"X-A: b\nX-B: c\r\n",
        NEARBY + b"X-A: b\x00c\r\n",
        NEARBY + b"X-A: b\x7fc\r\n",
        NEARBY + b"X-A: " + b"a" * 8_186 + b"\r\n",
    ],
    ids=[
        "http-1.0",
        "two-spaces",
        "fragment",
        "non-ascii-target",
        "method-not-a-token",
        "content-length",
        "transfer-encoding",
        "expect",
        "upgrade",
        "connection-close",
        "connection-upgrade",
        "space-before-colon",
        "folded",
        "no-colon",
        "no-name",
        "bare-cr",
        "bare-lf",
        "nul",
        "del",
        "a-field-over-8190-bytes",
    ],
)
def test_a_head_that_could_be_read_two_ways_is_handed_over(head: bytes) -> None:
    assert next_request(head + b"\r\n", 0) is Verdict.HAND_OVER


@pytest.mark.parametrize(
    "head",
    [
        b"GET /healthz HTTP/1.1\r\n",
        b"GET /v1/search/nearby/?latitude=1 HTTP/1.1\r\n",
        b"GET /v1/businesses/1 HTTP/1.1\r\n",
        b"HEAD /v1/search/nearby?latitude=1 HTTP/1.1\r\n",
        b"DELETE /v1/businesses/1 HTTP/1.1\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        NEARBY + b"Authorization: Bearer x\r\n",
        NEARBY + b"X-Consistency-Token: x\r\n",
    ],
    ids=["other-route", "trailing-slash", "detail", "head", "delete", "options", "authorization", "consistency"],
)
def test_a_request_without_a_body_that_is_no_plain_search_is_aiohttp_s_alone(head: bytes) -> None:
    assert next_request(head + b"\r\n", 0) == Other(head.split(b" ")[0], len(head) + 2)


def test_fields_a_plain_search_may_carry_are_taken() -> None:
    head = NEARBY + b"Accept: */*\r\nUser-Agent: x/1\r\nConnection: keep-alive\r\nX-Forwarded-For: 10.0.0.1\r\n\r\n"
    assert isinstance(next_request(head, 0), Search)
    assert isinstance(next_request(NEARBY + b"X-A: " + b"a" * 8_185 + b"\r\n\r\n", 0), Search)
