"""The search response body, assembled from pre-rendered pieces.

A search page lists up to 100 businesses, and building a dict per business for orjson to
walk means visiting every field, each a separate object somewhere in memory. So each
business's hit is rendered once, when the catalog takes it in, as the bytes of its JSON
object up to its distance (:func:`hit_prefix`); a page then only appends each distance and
joins, in C (``location_api/_crender.c``). The bytes are exactly what ``orjson.dumps`` makes
of the same values as dicts (``{"total", "radius_m", "businesses": [Business.to_hit_json(d)...],
"next_cursor"}``): the tests hold the two to equality, and to a Python reference of the
assembly (tests/location_api/reference.py).
"""

from __future__ import annotations

import orjson

from location_api._csearch import search_body as _search_body
from location_api.models import Business

#: Hit prefixes by business id: a list indexed by id (``None`` where there is none) or a dict.
Prefixes = list[bytes | None] | dict[int, bytes]

_dumps = orjson.dumps
_DISTANCE = b',"distance_m":'


def hit_prefix(business: Business) -> bytes:
    """The business's search-hit JSON object, open, up to its distance.

    Returns:
        ``{"id":...,"name":...,"latitude":...,"longitude":...,"category":...,"address":...,"distance_m":``
    """
    return _dumps(business.to_json())[:-1] + _DISTANCE


def business_from_prefix(prefix: bytes) -> Business:
    """The business a :func:`hit_prefix` was rendered from (floats round-trip exactly)."""
    fields = orjson.loads(prefix + b"0}")
    del fields["distance_m"]
    return Business(**fields)


def search_body(
    total: int, radius_m: float, hits: list[tuple[int, float]], prefixes: Prefixes, next_cursor: str | None
) -> bytes:
    """The body of a ``GET /v1/search/nearby`` answer.

    Assembled by ``location_api/_crender.c`` in one pass, without an object per hit.

    Args:
        total: matches within the radius.
        radius_m: the radius used, metres.
        hits: ``(id, distance_m)`` of the page's businesses, nearest first.
        prefixes: each hit's :func:`hit_prefix`, by id: a list indexed by id (the catalog's
            :attr:`location_api.cards.CardTable.hits`) or a dict.
        next_cursor: the cursor of the next page, or ``None``.

    Raises:
        KeyError: a hit's id has no prefix.
    """
    return _search_body(total, radius_m, hits, prefixes, next_cursor, _dumps)
