"""The search response body, assembled from pre-rendered pieces.

A search page lists up to 100 businesses, and building a dict per business for orjson to
walk means visiting every field, each a separate object somewhere in memory. So each
business's hit is rendered once, when the catalog takes it in, as the bytes of its JSON
object up to its distance (:func:`hit_prefix`); a page then only appends each distance and
joins (in C when ``location_api/_crender.c`` is built). The bytes are exactly what
``orjson.dumps`` makes of the same values as dicts (``{"total", "radius_m", "businesses":
[Business.to_hit_json(d)...], "next_cursor"}``): the tests hold the two to equality. ``bench/page_bench.py`` measures the
search and its body both ways (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from location_api.models import Business

#: Hit prefixes by business id: a list indexed by id (``None`` where there is none) or a dict.
Prefixes = list[bytes | None] | dict[int, bytes]

_search_body_native: (
    Callable[[int, float, list[tuple[int, float]], Prefixes, str | None, Callable[[Any], bytes]], bytes] | None
)
try:  # the compiled assembly (location_api/_crender.c, in the _csearch extension); optional
    from location_api._csearch import search_body as _search_body_native
except ImportError:  # pragma: no cover - exercised only where the extension is not built
    _search_body_native = None

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


def _search_body_python(
    total: int, radius_m: float, hits: list[tuple[int, float]], prefixes: Prefixes, next_cursor: str | None
) -> bytes:
    """:func:`search_body` in Python: the reference the compiled form is held to."""
    dumps = _dumps
    return b"".join(
        (
            b'{"total":',
            dumps(total),
            b',"radius_m":',
            dumps(radius_m),
            b',"businesses":[',
            b",".join([_prefix(prefixes, bid) + dumps(d) + b"}" for bid, d in hits]),
            b'],"next_cursor":',
            dumps(next_cursor),
            b"}",
        )
    )


def _prefix(prefixes: Prefixes, business_id: int) -> bytes:
    """``prefixes[business_id]``; a :class:`KeyError` when there is none (a hole in the list
    or an id outside it, negative ones included)."""
    if isinstance(prefixes, dict):
        found = prefixes.get(business_id)
    else:
        found = prefixes[business_id] if 0 <= business_id < len(prefixes) else None
    if found is None:
        raise KeyError(business_id)
    return found


def search_body(
    total: int, radius_m: float, hits: list[tuple[int, float]], prefixes: Prefixes, next_cursor: str | None
) -> bytes:
    """The body of a ``GET /v1/search/nearby`` answer.

    Assembled by ``location_api/_crender.c`` when it is built (one pass, no object per
    hit), otherwise by :func:`_search_body_python`; the bytes are the same.

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
    if _search_body_native is not None:
        return _search_body_native(total, radius_m, hits, prefixes, next_cursor, _dumps)
    return _search_body_python(total, radius_m, hits, prefixes, next_cursor)
