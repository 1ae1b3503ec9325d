"""Opaque, signed paging cursors for nearby search.

A cursor records where the previous page ended, as the (distance, id) of its last business,
the radius the search settled on (``expand`` may have widened it), and a fingerprint of the
query it belongs to. Results are ordered by (distance, id), so the next page is simply every
match after that pair: keyset paging, which returns each business exactly once even while
others are inserted or deleted. The cursor is signed (HMAC-SHA256 under a key derived from
the JWT secret) so a client can neither forge a position nor move a cursor to another query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
from typing import NamedTuple

import orjson

from location_api.errors import FieldError, InvalidCursor
from location_api.models import SearchQuery

_VERSION = 1
_MAC_BYTES = 16


class CursorPosition(NamedTuple):
    """Where a page ended.

    Attributes:
        radius_m: the radius of the search the cursor continues, metres.
        distance_m: distance of the last business returned, metres.
        business_id: id of the last business returned.
    """

    radius_m: float
    distance_m: float
    business_id: int


def cursor_key(jwt_secret: str) -> bytes:
    """The cursor signing key: derived from the JWT secret, so tokens and cursors never share a key."""
    return hmac.new(jwt_secret.encode(), b"geo location_api cursor v1", hashlib.sha256).digest()


def query_fingerprint(query: SearchQuery) -> str:
    """What makes two requests "the same query" for paging: everything but page size and strategy.

    ``limit`` may change between pages, and every strategy returns the same order.
    """
    material = orjson.dumps([query.latitude, query.longitude, query.radius_m, query.category, query.expand])
    return hashlib.blake2b(material, digest_size=8).hexdigest()


def encode_cursor(key: bytes, query: SearchQuery, position: CursorPosition) -> str:
    """Sign a position for a query.

    Args:
        key: from :func:`cursor_key`.
        query: the search the cursor continues.
        position: where its page ended.

    Returns:
        A URL-safe string.
    """
    payload = orjson.dumps(
        [_VERSION, query_fingerprint(query), position.radius_m, position.distance_m, position.business_id]
    )
    mac = hmac.digest(key, payload, "sha256")[:_MAC_BYTES]
    return base64.urlsafe_b64encode(payload + mac).rstrip(b"=").decode()


def decode_cursor(key: bytes, query: SearchQuery, token: str) -> CursorPosition:
    """Check a cursor's signature and that it belongs to this query.

    Args:
        key: from :func:`cursor_key`.
        query: the search being continued.
        token: the cursor from the previous response.

    Returns:
        Where the previous page ended.

    Raises:
        InvalidCursor: the cursor is malformed, tampered with, or was issued for another query.
    """
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise _invalid("is not a cursor this API issued") from None
    payload, mac = raw[:-_MAC_BYTES], raw[-_MAC_BYTES:]
    expected = hmac.digest(key, payload, "sha256")[:_MAC_BYTES]
    if len(raw) <= _MAC_BYTES or not hmac.compare_digest(mac, expected):
        raise _invalid("is not a cursor this API issued")
    # The signature held, so the payload is ours; the checks below only guard against a
    # cursor from a different version of this code.
    try:
        version, fingerprint, radius_m, distance_m, business_id = orjson.loads(payload)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        raise _invalid("is not a cursor this API issued") from None
    if (
        version != _VERSION
        or not isinstance(radius_m, float) or not math.isfinite(radius_m)
        or not isinstance(distance_m, float) or not math.isfinite(distance_m)
        or type(business_id) is not int
    ):
        raise _invalid("is not a cursor this API issued")
    if fingerprint != query_fingerprint(query):
        raise _invalid("belongs to a different query: keep latitude, longitude, radius, category and expand")
    return CursorPosition(radius_m, distance_m, business_id)


def _invalid(message: str) -> InvalidCursor:
    return InvalidCursor(f"cursor: {message}", [FieldError("cursor", message)])
