"""Paging of a user's lists (friends, requests, blocks, exported history): query parameters
and opaque cursors (pure).

A list is ordered by one whole number (a user id, or a time in microseconds), so the next
page is every item after the last one shown: keyset paging, which returns each item once
even while the list changes. A cursor records that position, which list it belongs to and
whose list it is, signed (keyed BLAKE2b under the API's cursor key, with a personalisation
of its own so it can never pass for a search cursor). A client can neither forge a position
nor carry a cursor to another list or user.

The exported history is ordered by time, which does not tell every row apart (two locations
may be received in the same microsecond): its cursor also says how many rows of the last
page's time were already shown (``skip``).

Its bytes: version (1 byte), list (1), user id, position (int64 each), skip (uint32),
little-endian, then the 16-byte signature; URL-safe base64 without padding.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from multidict import MultiMapping

from location_api.errors import FOREIGN_CURSOR, InvalidCursor, InvalidRequest
from geo_common.problems import FieldError
from location_api.sealed import seal, unseal

_VERSION = 2
_PERSON = b"geo user lists"
#: version, list, user id, position, skip
_PAYLOAD = struct.Struct("<BBqqI")
#: Longer than any cursor this module makes; refused before decoding.
MAX_CURSOR_CHARS = 64
#: Page sizes of the lists of users (friends, requests, blocks).
DEFAULT_LIST_LIMIT = 100
MAX_LIST_LIMIT = 500
#: Page sizes of the exported history.
DEFAULT_EXPORT_LIMIT = 500
MAX_EXPORT_LIMIT = 1000


class Listing(enum.Enum):
    """The lists that are paged, each with its own cursors."""

    FRIENDS = 1
    INCOMING = 2
    OUTGOING = 3
    BLOCKS = 4
    HISTORY = 5


#: ``state`` of ``GET /v1/users/{id}/friends``, and the list each one pages.
LIST_STATES = {"friends": Listing.FRIENDS, "incoming": Listing.INCOMING, "outgoing": Listing.OUTGOING}


@dataclass(frozen=True, slots=True)
class PageQuery:
    """A validated page request.

    Attributes:
        limit: the most items to return.
        cursor: the cursor of the previous page, as sent (None: the first page).
        values: the other known parameters, as sent (each given at most once).
    """

    limit: int
    cursor: str | None
    values: dict[str, str]


def parse_page(
    query: MultiMapping[str], *, default_limit: int, max_limit: int, others: tuple[str, ...] = ()
) -> PageQuery:
    """Read ``limit``, ``cursor`` and the parameters ``others``.

    Args:
        query: the query string's parameters.
        default_limit: ``limit`` when absent.
        max_limit: the largest ``limit``.
        others: the route's other parameters (returned unparsed).

    Raises:
        InvalidRequest: naming each parameter that is unknown, repeated, or a ``limit`` that is
            not a whole number from 1 to ``max_limit``, or an empty or overlong ``cursor``.
    """
    known = ("limit", "cursor", *others)
    errors = [FieldError(n, f"unknown query parameter; known: {', '.join(known)}") for n in query if n not in known]
    errors = list(dict.fromkeys(errors))  # a repeated unknown parameter is named once
    values: dict[str, str] = {}
    for name in known:
        given = query.getall(name, [])
        if len(given) > 1:
            errors.append(FieldError(name, "given more than once"))
        elif given:
            values[name] = given[0]
    limit = default_limit
    if "limit" in values:
        raw = values.pop("limit")
        if raw.isascii() and raw.isdigit() and len(raw) <= 7 and 1 <= int(raw) <= max_limit:
            limit = int(raw)
        else:
            errors.append(FieldError("limit", f"must be a whole number from 1 to {max_limit}"))
    cursor = values.pop("cursor", None)
    if cursor is not None and not cursor:
        errors.append(FieldError("cursor", "must not be empty (omit it for the first page)"))
    elif cursor is not None and len(cursor) > MAX_CURSOR_CHARS:
        errors.append(FieldError("cursor", FOREIGN_CURSOR))
    if errors:
        errors.sort(key=lambda e: e.field)
        raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in errors), errors)
    return PageQuery(limit, cursor, values)


def encode_position(key: bytes, listing: Listing, user_id: int, position: int, skip: int = 0) -> str:
    """A cursor: the page of ``user_id``'s ``listing`` after ``position``.

    Args:
        key: the API's cursor key (at most 64 bytes).
        listing: which list.
        user_id: whose list.
        position: the ordering number of the last item shown (fits in 64 bits).
        skip: how many items at ``position`` were shown (lists whose order has ties).

    Returns:
        A URL-safe string.
    """
    payload = _PAYLOAD.pack(_VERSION, listing.value, user_id, position, skip)
    return seal(key, payload, person=_PERSON)


def decode_position(key: bytes, listing: Listing, user_id: int, cursor: str) -> int:
    """The position a cursor of :func:`encode_position` holds (lists without ties).

    Raises:
        InvalidCursor: as :func:`decode_keyset`.
    """
    return decode_keyset(key, listing, user_id, cursor)[0]


def decode_keyset(key: bytes, listing: Listing, user_id: int, cursor: str) -> tuple[int, int]:
    """The position and skip a cursor of :func:`encode_position` holds.

    Raises:
        InvalidCursor: naming ``cursor``: malformed, tampered with, or made for another list
            or another user.
    """
    payload = unseal(key, cursor, _PAYLOAD.size, person=_PERSON)
    if payload is None:
        raise _invalid(FOREIGN_CURSOR)
    version, listed, owner, position, skip = _PAYLOAD.unpack(payload)
    if version != _VERSION:
        raise _invalid(FOREIGN_CURSOR)
    if listed != listing.value or owner != user_id:
        raise _invalid("belongs to another list: keep the user and the list of the page it came from")
    return int(position), int(skip)


def _invalid(message: str) -> InvalidCursor:
    return InvalidCursor(f"cursor: {message}", [FieldError("cursor", message)])
