"""Where each answer ends in a stream of answers (location_api.answer_framing), whatever the
pieces the stream is written in."""

from __future__ import annotations

import pytest

from location_api.answer_framing import AnswerFraming, Ended, FramingError

COUNTED = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n"
    b"1a;name=value\r\n" + b"x" * 26 + b"\r\n"
    b"0\r\n\r\n"
)
CLOSING = b"HTTP/1.1 404 Not Found\r\nContent-Length: 3\r\nConnection: close\r\n\r\nno!"
REFUSED = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nno"
EMPTY = b"HTTP/1.1 204 No Content\r\n\r\n"
HEAD = b"HTTP/1.1 200 OK\r\nContent-Length: 846\r\n\r\n"


def ends(stream: bytes, methods: list[bytes], pieces: int) -> list[tuple[int, Ended]]:
    """Where in ``stream`` each answer is said to end, written in pieces of ``pieces`` bytes."""
    framing = AnswerFraming()
    for method in methods:
        framing.expect(method)
    found = []
    for at in range(0, len(stream), pieces):
        for answer in framing.feed(stream[at : at + pieces]):
            found.append((min(at + pieces, len(stream)), answer))
    return found


@pytest.mark.parametrize("pieces", [1, 2, 3, 7, 64, 10_000])
def test_each_answer_ends_where_its_last_byte_is_whatever_the_pieces(pieces: int) -> None:
    answers = [(COUNTED, b"GET"), (CHUNKED, b"GET"), (HEAD, b"HEAD"), (EMPTY, b"DELETE"), (COUNTED, b"GET")]
    stream = b"".join(a for a, _ in answers)
    found = ends(stream, [m for _, m in answers], pieces)
    boundaries = [sum(len(a) for a, _ in answers[: i + 1]) for i in range(len(answers))]
    if pieces == 1:
        assert [at for at, _ in found] == boundaries
    assert len(found) == len(answers) and all(e.keep_alive for _, e in found)
    assert [at for at, _ in found] == [min(-(-b // pieces) * pieces, len(stream)) for b in boundaries]


def test_an_answer_that_ends_the_connection_says_so() -> None:
    assert [e for _, e in ends(CLOSING, [b"GET"], 1)] == [Ended(keep_alive=False)]
    assert [e for _, e in ends(REFUSED, [b"GET"], 5)] == [Ended(keep_alive=False)]


def test_an_answer_without_a_length_runs_to_the_connection_s_end() -> None:
    framing = AnswerFraming()
    framing.expect(b"GET")
    assert framing.feed(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nand on") == []
    assert framing.feed(b" and on") == [] and framing.pending == 1


def test_a_partial_answer_is_pending() -> None:
    framing = AnswerFraming()
    framing.expect(b"GET")
    assert framing.feed(COUNTED[:-1]) == [] and framing.pending == 1
    assert framing.feed(COUNTED[-1:]) == [Ended(True)] and framing.pending == 0


@pytest.mark.parametrize(
    ("stream", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", False),
        (b"garbage\r\n\r\n", True),
        (b"HTTP/1.1 100 Continue\r\n\r\n", True),
    ],
    ids=["no-request-sent", "not-a-status-line", "interim"],
)
def test_bytes_that_are_no_expected_answer_are_refused(stream: bytes, expected: bool) -> None:
    framing = AnswerFraming()
    if expected:
        framing.expect(b"GET")
    with pytest.raises(FramingError):
        framing.feed(stream)
