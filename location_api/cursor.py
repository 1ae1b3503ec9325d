"""Opaque, signed paging cursors for nearby search.

A cursor records where the previous page ended, as the (distance, id) of its last business,
the radius the search settled on (``expand`` may have widened it), and a fingerprint of the
query it belongs to. Results are ordered by (distance, id), so the next page is simply every
match after that pair: keyset paging, which returns each business exactly once even while
others are inserted or deleted. The cursor is signed (keyed BLAKE2b, under a key derived from
the JWT secret) so a client can neither forge a position nor move a cursor to another query.

Its bytes: version (1 byte), query fingerprint (8), radius, distance (float64 each), id
(int64), all little-endian, sealed with its 16-byte signature (:mod:`location_api.sealed`:
URL-safe base64 without padding, 66 characters). Every search that has a next page makes
one, so it is built without JSON or HMAC's double hashing: :func:`encode_fields`, which the
compiled search calls too (``location_api/_cplain.c``). Cursors of the first format (JSON,
HMAC-SHA256) are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from typing import NamedTuple

from location_api.errors import FOREIGN_CURSOR, InvalidCursor
from geo_common.problems import FieldError
from location_api.models import SearchQuery
from location_api.sealed import seal, unseal

_VERSION = 2
#: version, fingerprint, radius_m, distance_m, business_id
_PAYLOAD = struct.Struct("<B8sddq")
#: latitude, longitude, radius_m, expand: the fixed part of a query's fingerprint
_QUERY = struct.Struct("<ddd?")


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
    return hmac.new(jwt_secret.encode(), b"geo location_api cursor v2", hashlib.sha256).digest()


def query_fingerprint(query: SearchQuery) -> bytes:
    """What makes two requests "the same query" for paging: everything but page size and strategy.

    ``limit`` may change between pages, and every strategy returns the same order.

    Returns:
        8 bytes.
    """
    return _fingerprint(query.latitude, query.longitude, query.radius_m, query.expand, query.category)


def _fingerprint(latitude: float, longitude: float, radius_m: float, expand: bool, category: str | None) -> bytes:
    digest = hashlib.blake2b(_QUERY.pack(latitude, longitude, radius_m, expand), digest_size=8)
    if category is not None:  # marked, so that no category and an empty one differ
        digest.update(b"\x01" + category.encode())
    return digest.digest()


def encode_cursor(key: bytes, query: SearchQuery, position: CursorPosition) -> str:
    """Sign a position for a query.

    Args:
        key: from :func:`cursor_key` (at most 64 bytes).
        query: the search the cursor continues.
        position: where its page ended (an id that fits in 64 bits, as every business id does).

    Returns:
        A URL-safe string.
    """
    return encode_fields(
        key,
        query.latitude,
        query.longitude,
        query.radius_m,
        query.expand,
        query.category,
        position.radius_m,
        position.distance_m,
        position.business_id,
    )


def encode_fields(
    key: bytes,
    latitude: float,
    longitude: float,
    query_radius_m: float,
    expand: bool,
    category: str | None,
    radius_m: float,
    distance_m: float,
    business_id: int,
) -> str:
    """:func:`encode_cursor` from the query's and the position's fields, for a caller that holds
    no :class:`SearchQuery` or :class:`CursorPosition`: the compiled plain search
    (:func:`location_api.search.plain_body`) calls it."""
    fingerprint = _fingerprint(latitude, longitude, query_radius_m, expand, category)
    payload = _PAYLOAD.pack(_VERSION, fingerprint, radius_m, distance_m, business_id)
    return seal(key, payload)


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
    payload = unseal(key, token, _PAYLOAD.size)
    if payload is None:
        raise _invalid(FOREIGN_CURSOR)
    # The signature held, so the payload is ours; the checks below only guard against a
    # cursor from a different version of this code.
    version, fingerprint, radius_m, distance_m, business_id = _PAYLOAD.unpack(payload)
    if version != _VERSION or not math.isfinite(radius_m) or not math.isfinite(distance_m):
        raise _invalid(FOREIGN_CURSOR)
    if not hmac.compare_digest(fingerprint, query_fingerprint(query)):
        raise _invalid("belongs to a different query: keep latitude, longitude, radius, category and expand")
    return CursorPosition(radius_m, distance_m, business_id)


def _invalid(message: str) -> InvalidCursor:
    return InvalidCursor(f"cursor: {message}", [FieldError("cursor", message)])
