"""WebSocket frames written straight to the transport (pure encoding).

aiohttp offers only a coroutine per frame (``send_frame``); the fan-out writes tens of
thousands of frames a second, so the flusher encodes server frames itself and writes every
frame waiting for a connection in one ``transport.write`` (one system call), as
``websockets.broadcast`` does. Server frames are never masked (RFC 6455 section 5.1) and
this tier negotiates no compression, so a frame is a 2-, 4- or 10-byte header and the payload.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

_TEXT_FIN = 0x81
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")


def text_frame(payload: bytes) -> bytes:
    """One unmasked, final text frame carrying ``payload`` (UTF-8 JSON)."""
    n = len(payload)
    if n < 126:
        return bytes((_TEXT_FIN, n)) + payload
    if n < 65_536:
        return _LEN16.pack(_TEXT_FIN, 126, n) + payload
    return _LEN64.pack(_TEXT_FIN, 127, n) + payload


def control_frame(first_byte: int, payload: bytes) -> bytes:
    """A ping (0x89) or pong (0x8A) frame; control payloads are at most 125 bytes."""
    return bytes((first_byte, len(payload[:125]))) + payload[:125]


def text_frames(payloads: Iterable[bytes]) -> bytes:
    """Several text frames back to back, ready for one write."""
    return b"".join([text_frame(p) for p in payloads])


def close_frame(code: int, reason: bytes = b"") -> bytes:
    """A close frame (0x88) with ``code`` and at most 123 bytes of ``reason``."""
    payload = code.to_bytes(2, "big") + reason[:123]
    return bytes((0x88, len(payload))) + payload
