"""The search response body, assembled from pre-rendered pieces.

A search page lists up to 100 businesses, and building a dict per business for orjson to
walk means visiting every field, each a separate object somewhere in memory. So each
business's hit is rendered once, when the catalog takes it in, as the bytes of its JSON
object up to its distance (:func:`hit_prefix`); a page then only appends each distance and
joins. The bytes are exactly what ``orjson.dumps`` makes of the
same values as dicts (``{"total", "radius_m", "businesses": [Business.to_hit_json(d)...],
"next_cursor"}``): the tests hold the two to equality. ``bench/page_bench.py`` measures the
search and its body both ways (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from location_api.models import Business

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


def search_body(total: int, radius_m: float, hits: Iterable[tuple[bytes, float]], next_cursor: str | None) -> bytes:
    """The body of a ``GET /v1/search/nearby`` answer.

    Args:
        total: matches within the radius.
        radius_m: the radius used, metres.
        hits: ``(hit_prefix, distance_m)`` of the page's businesses, nearest first.
        next_cursor: the cursor of the next page, or ``None``.
    """
    dumps = _dumps
    return b"".join((
        b'{"total":', dumps(total),
        b',"radius_m":', dumps(radius_m),
        b',"businesses":[', b",".join([prefix + dumps(d) + b"}" for prefix, d in hits]),
        b'],"next_cursor":', dumps(next_cursor), b"}",
    ))
