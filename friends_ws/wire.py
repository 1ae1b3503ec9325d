"""Client frames in (pure decoding, RFC 6455 section 5): bytes from the socket, messages out.

The server's own frames are encoded by :mod:`friends_ws.frames`; this reads what a client
sends, with no I/O, so every rule is tested on bytes: frames must be masked, reserved bits
clear, control frames final and at most 125 bytes, continuations only inside a fragmented
message, a message at most ``max_size`` bytes (checked from the header, before the payload
is buffered), text valid UTF-8, a close code one a peer may send. A broken rule raises
:class:`WireError` with the close code the connection ends with.

An idle connection holds one :class:`FrameReader` of five slots and no buffer.
"""

from __future__ import annotations

from typing import Final

#: Opcodes (RFC 6455 section 5.2).
CONTINUATION: Final = 0x0
TEXT: Final = 0x1
BINARY: Final = 0x2
CLOSE: Final = 0x8
PING: Final = 0x9
PONG: Final = 0xA

#: Close codes this module ends a connection with.
PROTOCOL_ERROR: Final = 1002
INVALID_DATA: Final = 1007
MESSAGE_TOO_BIG: Final = 1009
#: The code a close frame without one stands for (never sent).
NO_STATUS: Final = 1005

_DATA = (CONTINUATION, TEXT, BINARY)
_CONTROL = (CLOSE, PING, PONG)
_NO_MASK = b"\0\0\0\0"

#: One message: (opcode, payload); a text payload is a ``str``, a close's is (code, reason).
Message = tuple[int, object]


class WireError(Exception):
    """The client broke the protocol; the connection closes with :attr:`code`."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


def unmask(payload: bytes, mask: bytes) -> bytes:
    """``payload`` XORed with the repeated 4-byte ``mask`` (both directions are the same)."""
    n = len(payload)
    if n == 0 or mask == _NO_MASK:
        return payload
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")).to_bytes(n, "little")


def close_code_allowed(code: int) -> bool:
    """Whether a peer may send ``code`` in a close frame (RFC 6455 7.4, IANA registry)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class FrameReader:
    """Whole messages from a client's byte stream.

    Args:
        max_size: the largest message, bytes, after unmasking and reassembly (larger: 1009).
    """

    __slots__ = ("max_size", "_buffer", "_kind", "_parts", "_size")

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size
        self._buffer = b""
        # The fragmented message being reassembled: its opcode, parts and size so far.
        self._kind = 0
        self._parts: list[bytes] | None = None
        self._size = 0

    def feed(self, data: bytes) -> list[Message]:
        """The messages ``data`` completes, in order.

        Raises:
            WireError: the client broke the protocol (the messages before it are lost with
                the connection).
        """
        buf = self._buffer + data if self._buffer else data
        messages: list[Message] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first, second = buf[pos], buf[pos + 1]
            opcode, length, head = first & 0x0F, second & 0x7F, 2
            if first & 0x70:
                raise WireError(PROTOCOL_ERROR, "reserved bits set (no extension was negotiated)")
            if not second & 0x80:
                raise WireError(PROTOCOL_ERROR, "client frames must be masked")
            if opcode in _CONTROL:
                if not first & 0x80 or length > 125:
                    raise WireError(PROTOCOL_ERROR, "control frames must be final and at most 125 bytes")
            elif opcode not in _DATA:
                raise WireError(PROTOCOL_ERROR, f"unknown opcode {opcode}")
            if length == 126:
                if end - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 4], "big"), 4
            elif length == 127:
                if end - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2 : pos + 10], "big"), 10
            if opcode in _DATA:
                self._check_data(opcode, length)
            start = pos + head + 4
            if end - start < length:
                break
            payload = unmask(buf[start : start + length], buf[pos + head : start])
            pos = start + length
            message = self._message(opcode, bool(first & 0x80), payload)
            if message is not None:
                messages.append(message)
                if opcode == CLOSE:
                    pos = end  # nothing after a close is read
        self._buffer = buf[pos:] if pos < end else b""
        return messages

    def _check_data(self, opcode: int, length: int) -> None:
        if opcode == CONTINUATION and self._parts is None:
            raise WireError(PROTOCOL_ERROR, "a continuation frame outside a fragmented message")
        if opcode != CONTINUATION and self._parts is not None:
            raise WireError(PROTOCOL_ERROR, "a new message inside a fragmented one")
        if self._size + length > self.max_size:
            raise WireError(MESSAGE_TOO_BIG, f"a message is at most {self.max_size} bytes")

    def _message(self, opcode: int, fin: bool, payload: bytes) -> Message | None:
        if opcode >= CLOSE:
            return (opcode, close_reason(payload) if opcode == CLOSE else payload)
        if not fin:
            if self._parts is None:
                self._kind, self._parts = opcode, []
            self._parts.append(payload)
            self._size += len(payload)
            return None
        if self._parts is not None:
            opcode = self._kind
            self._parts.append(payload)
            payload = b"".join(self._parts)
            self._parts, self._size = None, 0
        if opcode == BINARY:
            return (BINARY, payload)
        try:
            return (TEXT, payload.decode())
        except UnicodeDecodeError:
            raise WireError(INVALID_DATA, "a text message that is not UTF-8") from None


def close_reason(payload: bytes) -> tuple[int, str]:
    """A close frame's (code, reason); :data:`NO_STATUS` when it has no code.

    Raises:
        WireError: a 1-byte payload, a code no peer may send, or a reason that is not UTF-8.
    """
    if not payload:
        return (NO_STATUS, "")
    if len(payload) == 1:
        raise WireError(PROTOCOL_ERROR, "a close frame with a 1-byte payload")
    code = int.from_bytes(payload[:2], "big")
    if not close_code_allowed(code):
        raise WireError(PROTOCOL_ERROR, f"close code {code} may not be sent")
    try:
        return (code, payload[2:].decode())
    except UnicodeDecodeError:
        raise WireError(INVALID_DATA, "a close reason that is not UTF-8") from None
