"""The WebSocket handshake as bytes (pure): which connections it is, its request, its answers.

geo-friends serves ``GET /v1/friends/ws`` below aiohttp's request layer
(:mod:`friends_ws.site`): a WebSocket then holds no parsed request, response or handler
task for its whole life. This module reads the handshake's request head (RFC 9112: request
line, header fields; at most :data:`MAX_HEAD` bytes) and writes the answers: ``101
Switching Protocols`` (RFC 6455 section 4.2.2) or a refusal with a plain-text body, after
which the connection closes.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus
from urllib.parse import parse_qsl

from multidict import CIMultiDict, CIMultiDictProxy

#: The WebSocket endpoint's path.
PATH = "/v1/friends/ws"
#: The largest request head, bytes (aiohttp's default line limit is 8190).
MAX_HEAD = 16_384

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_STARTS = (b"GET " + PATH.encode() + b" ", b"GET " + PATH.encode() + b"?")
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


class First(Enum):
    """What the first bytes of a connection say about its first request."""

    HANDSHAKE = "handshake"
    OTHER = "other"
    UNSURE = "unsure"


def first_request(data: bytes) -> First:
    """Whether ``data``, a connection's first bytes, starts ``GET /v1/friends/ws``."""
    for start in _STARTS:
        if data.startswith(start):
            return First.HANDSHAKE
    if any(start.startswith(data) for start in _STARTS):
        return First.UNSURE
    return First.OTHER


class HeadError(Exception):
    """A request head that cannot be read; answered with :attr:`status` and closed."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status
        self.text = text


@dataclass(frozen=True, slots=True)
class Head:
    """A handshake's request: its method, path, query parameters and header fields."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDictProxy[str]


def read_head(data: bytes) -> tuple[Head, int] | None:
    """The request head at the start of ``data`` and its length, or None until it is whole.

    Raises:
        HeadError: a head over :data:`MAX_HEAD` bytes (431) or one that is not HTTP/1.1 (400).
    """
    end = data.find(b"\r\n\r\n")
    if end < 0:
        if len(data) > MAX_HEAD:
            raise HeadError(431, f"the request head is over {MAX_HEAD} bytes")
        return None
    if end > MAX_HEAD:
        raise HeadError(431, f"the request head is over {MAX_HEAD} bytes")
    try:
        text = data[:end].decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise HeadError(400, "unreadable request head") from None
    line, *fields = text.split("\r\n")
    parts = line.split(" ")
    if len(parts) != 3 or parts[2] not in ("HTTP/1.1", "HTTP/1.0"):
        raise HeadError(400, "a request line is METHOD /path HTTP/1.1")
    method, target, _version = parts
    path, _, query = target.partition("?")
    headers: CIMultiDict[str] = CIMultiDict()
    for field in fields:
        name, colon, value = field.partition(":")
        if not colon or not name or not _TOKEN.issuperset(name.encode("latin-1")):
            raise HeadError(400, "a header field is name: value (no folding, no space before the colon)")
        headers.add(name, value.strip(" \t"))
    pairs = parse_qsl(query, keep_blank_values=True)
    return Head(method, path, dict(pairs), CIMultiDictProxy(headers)), end + 4


def _tokens(headers: CIMultiDictProxy[str], name: str) -> list[str]:
    return [t.strip().lower() for line in headers.getall(name, ()) for t in line.split(",")]


def upgrade_problem(head: Head) -> str | None:
    """What makes ``head`` no WebSocket opening handshake (RFC 6455 4.2.1), or None."""
    headers = head.headers
    if "websocket" not in _tokens(headers, "Upgrade"):
        return "this is the WebSocket endpoint: send Upgrade: websocket"
    if "upgrade" not in _tokens(headers, "Connection"):
        return "send Connection: Upgrade"
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return "only WebSocket version 13 is served (Sec-WebSocket-Version: 13)"
    key = headers.get("Sec-WebSocket-Key", "").strip()
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        return "Sec-WebSocket-Key must be 16 random bytes in base64"
    return None


def offered_protocols(headers: CIMultiDictProxy[str]) -> list[str]:
    """The subprotocols the client offers, in its order."""
    return [p.strip() for line in headers.getall("Sec-WebSocket-Protocol", ()) for p in line.split(",") if p.strip()]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    return base64.b64encode(hashlib.sha1(key.strip().encode() + _GUID).digest()).decode()


def switching(head: Head, *, protocol: str | None, request_id: str) -> bytes:
    """The ``101 Switching Protocols`` answer, selecting ``protocol`` when given."""
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Accept: {accept_key(head.headers['Sec-WebSocket-Key'])}",
    ]
    if protocol is not None:
        lines.append(f"Sec-WebSocket-Protocol: {protocol}")
    lines.append(f"X-Request-Id: {request_id}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def refusal(status: int, text: str, headers: dict[str, str] | None = None) -> bytes:
    """An HTTP answer with a plain-text body (unless ``headers`` name another type) that
    closes the connection: every refusal of a handshake."""
    body = text.encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}"]
    fields = {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}
    fields["Content-Length"] = str(len(body))
    fields["Connection"] = "close"
    lines += [f"{name}: {value}" for name, value in fields.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
