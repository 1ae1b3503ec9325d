"""Client frames in (friends_ws.wire): every rule of RFC 6455's framing, on bytes."""

from __future__ import annotations

import os
import random

import pytest

from friends_ws.wire import (
    BINARY,
    CLOSE,
    INVALID_DATA,
    MESSAGE_TOO_BIG,
    NO_STATUS,
    PING,
    PONG,
    PROTOCOL_ERROR,
    TEXT,
    FrameReader,
    WireError,
    close_code_allowed,
    unmask,
)


def frame(opcode: int, payload: bytes, *, fin: bool = True, mask: bytes | None = None, rsv: int = 0) -> bytes:
    """A client frame, masked with ``mask`` (a random one by default)."""
    key = os.urandom(4) if mask is None else mask
    n = len(payload)
    first = (0x80 if fin else 0) | rsv | opcode
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65_536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + key + unmask(payload, key)


def error_of(reader: FrameReader, data: bytes) -> WireError:
    with pytest.raises(WireError) as caught:
        reader.feed(data)
    return caught.value


def test_unmask_is_its_own_inverse_and_a_zero_key_changes_nothing() -> None:
    rng = random.Random(7)
    for n in (0, 1, 3, 4, 5, 125, 126, 4096):
        payload, key = rng.randbytes(n), rng.randbytes(4)
        assert unmask(unmask(payload, key), key) == payload
        assert unmask(payload, b"\0\0\0\0") == payload
    assert unmask(b"\x00\x00\x00\x00\x00", b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04\x01"


def test_masked_messages_of_every_length_form_are_read() -> None:
    reader = FrameReader(100_000)
    short, medium, long = "é" * 10, "x" * 300, "y" * 70_000
    data = frame(TEXT, short.encode()) + frame(TEXT, medium.encode()) + frame(BINARY, long.encode())
    assert reader.feed(data) == [(TEXT, short), (TEXT, medium), (BINARY, long.encode())]


def test_a_stream_cut_anywhere_gives_the_same_messages() -> None:
    data = frame(TEXT, b'{"type":"location"}') + frame(PING, b"hi") + frame(TEXT, b"z" * 200)
    for cut in range(len(data) + 1):
        reader = FrameReader(4096)
        got = reader.feed(data[:cut]) + reader.feed(data[cut:])
        assert got == [(TEXT, '{"type":"location"}'), (PING, b"hi"), (TEXT, "z" * 200)], cut
    reader = FrameReader(4096)
    assert [m for byte in data for m in reader.feed(bytes((byte,)))] == FrameReader(4096).feed(data)


def test_a_fragmented_message_is_one_message_with_control_frames_between() -> None:
    text = "ñandú 🦤".encode()
    parts = frame(TEXT, text[:3], fin=False) + frame(PING, b"p") + frame(0, text[3:7], fin=False)
    parts += frame(PONG, b"") + frame(0, text[7:])
    assert FrameReader(4096).feed(parts) == [(PING, b"p"), (PONG, b""), (TEXT, "ñandú 🦤")]


def test_broken_framing_closes_with_1002() -> None:
    cases = {
        "unmasked": bytes((0x81, 2)) + b"hi",
        "reserved bit": frame(TEXT, b"hi", rsv=0x40),
        "unknown opcode": frame(3, b"hi"),
        "fragmented control": frame(PING, b"", fin=False),
        "long control": frame(PING, b"x" * 126),
        "lone continuation": frame(0, b"hi"),
        "text inside a fragmented text": frame(TEXT, b"a", fin=False) + frame(TEXT, b"b"),
    }
    for name, data in cases.items():
        assert error_of(FrameReader(4096), data).code == PROTOCOL_ERROR, name


def test_a_message_over_the_limit_is_refused_from_its_header_alone() -> None:
    assert FrameReader(4096).feed(frame(TEXT, b"x" * 4096)) == [(TEXT, "x" * 4096)]
    header = frame(TEXT, b"x" * 4097)[:8]  # 2 + 2 length bytes + 4 mask: no payload yet
    assert error_of(FrameReader(4096), header).code == MESSAGE_TOO_BIG
    split = frame(TEXT, b"x" * 3000, fin=False) + frame(0, b"x" * 1097)
    assert error_of(FrameReader(4096), split).code == MESSAGE_TOO_BIG


def test_text_must_be_utf8_even_when_a_character_spans_fragments() -> None:
    assert error_of(FrameReader(4096), frame(TEXT, b"\xff\xfe")).code == INVALID_DATA
    euro = "€".encode()
    split = frame(TEXT, euro[:1], fin=False) + frame(0, euro[1:])
    assert FrameReader(4096).feed(split) == [(TEXT, "€")]
    assert FrameReader(4096).feed(frame(BINARY, b"\xff")) == [(BINARY, b"\xff")]


def test_close_frames_carry_a_code_a_peer_may_send() -> None:
    assert FrameReader(4096).feed(frame(CLOSE, b"")) == [(CLOSE, (NO_STATUS, ""))]
    assert FrameReader(4096).feed(frame(CLOSE, (4001).to_bytes(2, "big") + b"bye")) == [(CLOSE, (4001, "bye"))]
    assert error_of(FrameReader(4096), frame(CLOSE, b"\x03")).code == PROTOCOL_ERROR
    for code in (999, 1004, 1005, 1006, 1015, 2000, 5000):
        assert not close_code_allowed(code)
        assert error_of(FrameReader(4096), frame(CLOSE, code.to_bytes(2, "big"))).code == PROTOCOL_ERROR
    assert error_of(FrameReader(4096), frame(CLOSE, b"\x03\xe8\xff")).code == INVALID_DATA


def test_nothing_after_a_close_is_read() -> None:
    reader = FrameReader(4096)
    data = frame(TEXT, b"a") + frame(CLOSE, b"\x03\xe8") + frame(TEXT, b"b") + b"\x00garbage"
    assert reader.feed(data) == [(TEXT, "a"), (CLOSE, (1000, ""))]
