"""What the requests on a connection are, read from their bytes (pure).

geo-api answers a plain search (``GET /v1/search/nearby`` or ``/v1/search/area`` that the
compiled path takes) below aiohttp's request layer (:mod:`location_api.site`), and gives
aiohttp every other request. :func:`next_request` reads the request head starting at an
offset of a connection's buffered bytes and says what it is:

- a :class:`Search`: a plain search's request;
- an :class:`Other`: a request aiohttp answers, alone (it has no body, and nothing in its head
  could be read two ways): the connection is the site's again after its answer;
- :attr:`Verdict.HAND_OVER`: anything else, which aiohttp's parser reads from that offset on,
  and the connection is aiohttp's for good;
- :attr:`Verdict.INCOMPLETE`: the head is not whole yet.

A head is read here only when it cannot be read two ways: the request line is
``METHOD target HTTP/1.1`` with a token for the method and printable ASCII without a
fragment for the target; the head has no bare CR or LF, no control character, no field that
is not ``name: value`` with a token for its name (no folding, no space before the colon),
no field over :data:`MAX_FIELD` bytes (aiohttp's limit), and no field that gives the request a body or another protocol (``Content-Length``,
``Transfer-Encoding``, ``Expect``, ``Upgrade``, ``Connection: close`` or ``upgrade``); it is
at most :data:`MAX_HEAD` bytes. A search is plain when it is a ``GET`` of one of
:data:`SEARCH_ROUTES` as written, without a caller (``Authorization``) or a consistency token.
"""

from __future__ import annotations

from enum import Enum
from typing import NamedTuple

from location_api.errors import CONSISTENCY_HEADER

#: The paths of the searches answered below aiohttp.
SEARCH_ROUTES = frozenset({"/v1/search/nearby", "/v1/search/area"})
#: The largest head read here, bytes; a larger one is aiohttp's (which reads up to 32 KiB).
MAX_HEAD = 16_384
#: The longest header field read here, bytes: aiohttp's parser refuses a longer one.
MAX_FIELD = 8_190

_ROUTES = {path.encode(): path for path in SEARCH_ROUTES}
_TOKEN = b"!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# Every byte but the control characters (tab is no control character here): what a head's
# bytes leave once these are deleted must be its line ends, CRLF, and nothing else.
_NOT_CONTROL = bytes(b for b in range(256) if b == 0x09 or 0x20 <= b != 0x7F)
# Fields after which the connection is not read here again.
_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"expect", b"upgrade"})
# Fields that only the general path reads.
_NOT_PLAIN = frozenset({b"authorization", CONSISTENCY_HEADER.lower().encode()})


class Verdict(Enum):
    """What :func:`next_request` says of a head it does not read."""

    #: The head is not whole yet: read more.
    INCOMPLETE = "incomplete"
    #: aiohttp's, from its first byte, with the rest of the connection.
    HAND_OVER = "hand over"


class Search(NamedTuple):
    """A plain search's request."""

    #: Its path, one of :data:`SEARCH_ROUTES`.
    route: str
    #: Its query string, as sent (ASCII).
    query: str
    #: Its ``X-Request-Id`` field's value (the first one), or None.
    request_id: str | None
    #: The offset after its head, where the next request starts (it has no body).
    end: int


class Other(NamedTuple):
    """A request without a body that aiohttp answers alone."""

    #: Its method (an answer to ``HEAD`` has no body).
    method: bytes
    #: The offset after its head, where the next request starts.
    end: int


def next_request(data: bytes, start: int) -> Search | Other | Verdict:
    """The request whose head starts at ``data[start]`` (see the module's description)."""
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        return Verdict.INCOMPLETE if len(data) - start <= MAX_HEAD else Verdict.HAND_OVER
    if end - start > MAX_HEAD:
        return Verdict.HAND_OVER
    head = data[start:end]
    if head.translate(None, _NOT_CONTROL) != b"\r\n" * head.count(b"\r\n"):
        return Verdict.HAND_OVER  # a bare CR or LF, or another control character
    line, *fields = head.split(b"\r\n")
    parts = line.split(b" ")
    if len(parts) != 3 or parts[2] != b"HTTP/1.1":
        return Verdict.HAND_OVER
    method, target = parts[0], parts[1]
    if not method or method.translate(None, _TOKEN) or not target.isascii() or b"#" in target:
        return Verdict.HAND_OVER
    path, _, query = target.partition(b"?")
    route = _ROUTES.get(path) if method == b"GET" else None
    request_id: str | None = None
    for field in fields:
        name, colon, value = field.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN) or len(field) > MAX_FIELD:
            return Verdict.HAND_OVER
        key = name.lower()
        if key in _FRAMING:
            return Verdict.HAND_OVER
        if key in _NOT_PLAIN:
            route = None
        elif key == b"connection":
            tokens = value.lower()
            if b"close" in tokens or b"upgrade" in tokens:
                return Verdict.HAND_OVER
        elif key == b"x-request-id" and request_id is None:
            request_id = value.strip(b" \t").decode("latin-1")
    if route is None:
        return Other(method, end + 4)
    return Search(route, query.decode("ascii"), request_id, end + 4)
