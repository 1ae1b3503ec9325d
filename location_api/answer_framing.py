"""Where each HTTP/1.1 answer ends in a stream of answers (pure).

:class:`location_api.relay.Relay` writes what an aiohttp request handler answers onto a
connection that is not aiohttp's, and must know when each answer is whole: then the
connection's next request may be answered by someone else. :class:`AnswerFraming` reads the
bytes as they are written, in pieces of any size: the status line and header fields, then a
body of ``Content-Length`` bytes, or chunks up to the last (``Transfer-Encoding: chunked``;
aiohttp writes no trailer fields), or none (an answer to ``HEAD``, a 1xx, 204 or 304). An
answer without either runs to the connection's end.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


def _field(head: bytes, name: bytes) -> bytes:
    """The value of the field ``name`` in ``head`` (lower case, names and values), or empty."""
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return b""
    at += len(name) + 3
    end = head.find(b"\r\n", at)
    return head[at : end if end >= 0 else len(head)].strip()


class FramingError(ValueError):
    """Bytes that are no answer's (a bug of the writer): the connection cannot go on."""


@dataclass(frozen=True, slots=True)
class Ended:
    """One whole answer."""

    #: Whether the connection goes on after it (HTTP/1.1, no ``Connection: close``).
    keep_alive: bool


class AnswerFraming:
    """The answers written on one connection, as they end.

    :meth:`expect` is told each request's method before its answer is written; :meth:`feed`
    returns the answers that the bytes written end.
    """

    __slots__ = ("_methods", "_head", "_left", "_chunked", "_chunk_line", "_last", "_to_close", "_keep_alive")

    def __init__(self) -> None:
        self._methods: deque[bytes] = deque()
        self._head = b""
        self._left = -1  # bytes of the body still to come; -1: reading a head
        self._chunked = False
        self._chunk_line = b""
        self._last = False
        self._to_close = False
        self._keep_alive = True

    def expect(self, method: bytes) -> None:
        """A request was sent whose answer comes next (after the others expected)."""
        self._methods.append(method)

    @property
    def pending(self) -> int:
        """How many requests sent are not answered whole yet."""
        return len(self._methods)

    def feed(self, data: bytes | bytearray | memoryview) -> list[Ended]:
        """Read ``data``, the next bytes written; the answers they end, in order."""
        ended: list[Ended] = []
        view = memoryview(data)
        while len(view):
            if self._to_close:
                return ended  # the body runs to the connection's end
            if self._left < 0:
                view = self._read_head(view, ended)
            elif self._chunked:
                view = self._read_chunks(view, ended)
            else:
                take = min(self._left, len(view))
                self._left -= take
                view = view[take:]
                if self._left == 0:
                    self._end(ended)
        return ended

    def _read_head(self, view: memoryview, ended: list[Ended]) -> memoryview:
        data = self._head + bytes(view)
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self._head = data
            return view[len(view) :]
        self._head = b""
        rest = memoryview(data)[end + 4 :]
        if not self._methods:
            raise FramingError("an answer to no request")
        head = data[:end].lower()
        parts = head[: head.find(b"\r\n") % (end + 1)].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"http/1.") or not parts[1].isdigit():
            raise FramingError(f"not a status line: {data[:80]!r}")
        status = int(parts[1])
        length = int(_field(head, b"content-length") or -1)
        chunked = _field(head, b"transfer-encoding").endswith(b"chunked")
        keep_alive = parts[0] == b"http/1.1" and b"close" not in _field(head, b"connection")
        if status < 200:
            raise FramingError("an interim answer (1xx) to a request that asked for none")
        self._keep_alive = keep_alive
        if self._methods[0] == b"HEAD" or status in (204, 304):
            self._end(ended)
        elif chunked:
            self._chunked, self._left, self._chunk_line, self._last = True, 0, b"", False
        elif length >= 0:
            self._left = length
            if length == 0:
                self._end(ended)
        else:
            self._to_close, self._left = True, 0
        return rest

    def _read_chunks(self, view: memoryview, ended: list[Ended]) -> memoryview:
        # _left: the bytes of the current chunk still to skip, its CRLF included; the last
        # chunk (size 0) has only its CRLF, after which the answer ends.
        while len(view):
            if self._left > 0:
                take = min(self._left, len(view))
                self._left -= take
                view = view[take:]
                if self._left == 0 and self._last:
                    self._end(ended)
                    return view
                continue
            line = self._chunk_line + bytes(view[:66])
            eol = line.find(b"\r\n")
            if eol < 0:
                if len(line) > 64:
                    raise FramingError("a chunk size line over 64 bytes")
                self._chunk_line = line
                return view[len(view) :]
            view = view[eol + 2 - len(self._chunk_line) :]
            self._chunk_line = b""
            size = int(line[:eol].split(b";")[0], 16)
            self._left = size + 2
            self._last = size == 0
        return view

    def _end(self, ended: list[Ended]) -> None:
        self._methods.popleft()
        self._left, self._chunked, self._last = -1, False, False
        ended.append(Ended(self._keep_alive))
