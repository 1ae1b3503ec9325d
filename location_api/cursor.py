"""Opaque, signed paging cursors for nearby search.

A cursor records where the previous page ended, as the (rank, distance, id) of its last
business, the radius the search settled on (``expand`` may have widened it), the instant
``open_now`` meant on the first page, and a fingerprint of the query it belongs to (its
position, radius, area, filters and sort). Results are ordered by (rank, distance, id) (the
rank is 0 when sorting by distance), so the next page is simply every match after that
triple: keyset paging, which returns each business exactly once even while others are
inserted or deleted, and an ``open_now`` search keeps asking about the same instant. The
cursor is signed (keyed BLAKE2b, under a key derived from the JWT secret) so a client can
neither forge a position nor move a cursor to another query.

Its bytes: version (1 byte), query fingerprint (8), radius, rank, instant (POSIX seconds),
distance (float64 each), id (int64), all little-endian, sealed with its 16-byte signature
(:mod:`location_api.sealed`: URL-safe base64 without padding, 87 characters). Every search
that has a next page makes one, so it is built without JSON or HMAC's double hashing:
:func:`encode_fields`, which the compiled searches call too (``location_api/_cplain.c``).
Cursors of earlier formats are refused.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from typing import NamedTuple

from location_api.errors import FOREIGN_CURSOR, InvalidCursor
from geo_common.problems import FieldError
from location_api.filters import NO_FILTERS, SearchFilters
from location_api.models import SearchQuery
from location_api.sealed import seal, unseal

_VERSION = 3
#: version, fingerprint, radius_m, rank, at, distance_m, business_id
_PAYLOAD = struct.Struct("<B8sddddq")
#: latitude, longitude, radius_m, expand: the fixed part of a query's fingerprint
_QUERY = struct.Struct("<ddd?")
#: west, south, east, north: an area search's box
_BOX = struct.Struct("<dddd")


class CursorPosition(NamedTuple):
    """Where a page ended.

    Attributes:
        radius_m: the radius of the search the cursor continues, metres.
        distance_m: distance of the last business returned, metres.
        business_id: id of the last business returned.
        rank: its rank in the search's sort (0 by distance).
        at: the instant ``open_now`` means, POSIX seconds (0 when the search has none).
    """

    radius_m: float
    distance_m: float
    business_id: int
    rank: float = 0.0
    at: float = 0.0


def cursor_key(jwt_secret: str) -> bytes:
    """The cursor signing key: derived from the JWT secret, so tokens and cursors never share a key."""
    return hmac.new(jwt_secret.encode(), b"geo location_api cursor v2", hashlib.sha256).digest()


def query_fingerprint(query: SearchQuery) -> bytes:
    """What makes two requests "the same query" for paging: everything but page size and strategy.

    ``limit`` may change between pages, and every strategy returns the same order.

    Returns:
        8 bytes.
    """
    return _fingerprint(query.latitude, query.longitude, query.radius_m, query.expand, _refinements(query))


def _refinements(query: SearchQuery) -> bytes | None:
    """What a query asks beyond position and radius, as bytes; ``None`` for a plain search
    (whose cursor the compiled search makes without it)."""
    if query.plain:
        return None
    return _refined(query.sort, query.box, query.filters)


def _refined(sort: str, box: tuple[float, float, float, float] | None, filters: SearchFilters) -> bytes:
    packed = b"" if box is None else _BOX.pack(*box)
    return sort.encode() + b"\x00" + packed + b"\x00" + filters.fingerprint()


def area_refinements(west: float, south: float, east: float, north: float) -> bytes:
    """The refinements of an area search with no filter, by distance: what the compiled area
    search (``location_api/_carea.c``) gives :func:`encode_fields` for a box."""
    return _refined("distance", (west, south, east, north), NO_FILTERS)


def _fingerprint(latitude: float, longitude: float, radius_m: float, expand: bool, refinements: bytes | None) -> bytes:
    digest = hashlib.blake2b(_QUERY.pack(latitude, longitude, radius_m, expand), digest_size=8)
    if refinements is not None:
        digest.update(b"\x01" + refinements)
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
        _refinements(query),
        position.radius_m,
        position.distance_m,
        position.business_id,
        position.rank,
        position.at,
    )


def encode_fields(
    key: bytes,
    latitude: float,
    longitude: float,
    query_radius_m: float,
    expand: bool,
    refinements: bytes | None,
    radius_m: float,
    distance_m: float,
    business_id: int,
    rank: float = 0.0,
    at: float = 0.0,
) -> str:
    """:func:`encode_cursor` from the query's and the position's fields, for a caller that holds
    no :class:`SearchQuery` or :class:`CursorPosition`: the compiled plain search
    (:func:`location_api.search.plain_body`) calls it (``refinements`` ``None``)."""
    fingerprint = _fingerprint(latitude, longitude, query_radius_m, expand, refinements)
    payload = _PAYLOAD.pack(_VERSION, fingerprint, radius_m, rank, at, distance_m, business_id)
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
    version, fingerprint, radius_m, rank, at, distance_m, business_id = _PAYLOAD.unpack(payload)
    if version != _VERSION or not all(map(math.isfinite, (radius_m, rank, at, distance_m))):
        raise _invalid(FOREIGN_CURSOR)
    if not hmac.compare_digest(fingerprint, query_fingerprint(query)):
        raise _invalid("belongs to a different query: keep every parameter but limit and index")
    return CursorPosition(radius_m, distance_m, business_id, rank, at)


def _invalid(message: str) -> InvalidCursor:
    return InvalidCursor(f"cursor: {message}", [FieldError("cursor", message)])
