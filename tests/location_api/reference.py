"""Python references the compiled search path (``location_api._csearch``) is held to.

The product has one implementation of each of these behaviours, in C; here they are written
plainly, for the tests to compare with:

* :func:`plain_search`: how ``_cquery.c`` reads a raw query string (``None`` for anything
  but a plain search);
* :func:`search_body`: how ``_crender.c`` assembles a response body;
* :func:`plain_body`: what ``_cplain.c`` answers, made from the reader above and the general
  path (:func:`location_api.search.search_memory`, :func:`location_api.cursor.encode_cursor`);
* :func:`area_search` and :func:`area_body`: the same for ``_carea.c``, the area search, whose
  query the general path's own parser (:func:`location_api.search_params.parse_area`) makes.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

import orjson
from multidict import MultiDict

from location_api.catalog import Catalog
from location_api.filters import NO_FILTERS
from location_api.contract import DEFAULT_LIMIT, DEFAULT_RADIUS_M, MAX_LIMIT, MIN_RADIUS_M
from location_api.cursor import encode_cursor
from location_api.models import SearchQuery
from location_api.render import Prefixes
from location_api.search import search_memory
from location_api.search_params import parse_area
from tests.geo_index import reference as geometry

PLAIN_PARAMETERS = frozenset(("latitude", "longitude", "radius", "limit"))
AREA_PARAMETERS = frozenset(("bbox", "limit"))
_WHOLE = re.compile(r"[0-9]+")


def limits(max_radius_m: float) -> tuple[float, float, float, int, int]:
    """The bounds ``_csearch.plain_search`` and ``plain_body`` take, as the product passes them."""
    return (MIN_RADIUS_M, max_radius_m, DEFAULT_RADIUS_M, DEFAULT_LIMIT, MAX_LIMIT)


def plain_search(raw: str, max_radius_m: float) -> SearchQuery | None:
    """A raw (still percent-encoded) query string read as a plain search, else ``None``.

    Without ``%`` and ``+`` a query string decodes to itself, and splitting it on ``&`` and
    each pair's first ``=`` gives exactly the pairs aiohttp's mapping would hold. Only
    position, radius and limit, each once and plainly valid, make a plain search.
    """
    values = _pairs(raw, PLAIN_PARAMETERS)
    if values is None:
        return None
    latitude = _number(values.get("latitude"), -90.0, 90.0)
    longitude = _number(values.get("longitude"), -180.0, 180.0)
    if latitude is None or longitude is None:
        return None
    raw_radius = values.get("radius")
    radius = DEFAULT_RADIUS_M if raw_radius is None else _number(raw_radius, MIN_RADIUS_M, max_radius_m)
    limit = _limit(values.get("limit"))
    if radius is None or limit is None:
        return None
    return SearchQuery(latitude, longitude, radius, limit, NO_FILTERS, False, None, None)


def area_search(raw: str, max_radius_m: float) -> tuple[tuple[float, float, float, float], int] | None:
    """A raw query string read as a plain area search (a box, its commas maybe sent as
    ``%2C``, maybe a limit, each once and plainly valid, the box within ``max_radius_m`` of its
    centre), else ``None``."""
    values = _pairs(raw, AREA_PARAMETERS, escapes=True)
    if values is None or "bbox" not in values:
        return None
    limit = _limit(values.get("limit"))
    parts = values["bbox"].replace("%2C", ",").replace("%2c", ",").split(",")
    if limit is None or len(parts) != 4:
        return None
    west, south, east, north = (_number(part, -bound, bound) for part, bound in zip(parts, (180.0, 90.0) * 2))
    if west is None or south is None or east is None or north is None or south > north:
        return None
    if geometry.box_circle(west, south, east, north)[2] + 1.0 > max_radius_m:
        return None
    return (west, south, east, north), limit


def _pairs(raw: str, known: frozenset[str], *, escapes: bool = False) -> dict[str, str] | None:
    """Each name's value, when every name is known and given once; with ``escapes`` the
    values are still percent-encoded (a name with ``%`` is not a known one)."""
    if (not escapes and "%" in raw) or "+" in raw or not raw.isascii():
        return None
    values: dict[str, str] = {}
    for pair in raw.split("&"):
        name, eq, value = pair.partition("=")
        if not eq or name in values or name not in known:
            return None
        values[name] = value
    return values


def _limit(raw: str | None) -> int | None:
    if raw is None:
        return DEFAULT_LIMIT
    if len(raw) <= 3 and _WHOLE.fullmatch(raw) and 1 <= int(raw) <= MAX_LIMIT:
        return int(raw)
    return None


def _number(raw: str | None, lo: float, hi: float) -> float | None:
    # Digits, sign, point and exponent only (no nan, inf, "_" or blanks): what float()
    # accepts from these characters is exactly the decimal syntax the full parse takes.
    if raw is None or raw.strip("0123456789+-.eE"):
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if lo <= value <= hi else None  # 1e999 is inf and fails the comparison


def search_body(
    total: int, radius_m: float, hits: list[tuple[int, float]], prefixes: Prefixes, next_cursor: str | None
) -> bytes:
    """A search answer's body: each hit's prefix, its distance and ``}``, joined."""
    dumps = orjson.dumps
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


def plain_body(catalog: Catalog, strategy: str, raw: str, max_radius_m: float, key: bytes) -> bytes | None:
    """The body the general path gives a plain search's raw query string, else ``None``."""
    query = plain_search(raw, max_radius_m)
    if query is None:
        return None
    page = search_memory(catalog, strategy, query, None, max_radius_m)
    nxt = None if page.next_position is None else encode_cursor(key, query, page.next_position)
    return search_body(page.total, page.radius_m, page.hits, page.prefixes, nxt)


def area_body(catalog: Catalog, strategy: str, raw: str, max_radius_m: float, key: bytes) -> bytes | None:
    """The body the general path gives a plain area search's raw query string, else ``None``."""
    if area_search(raw, max_radius_m) is None:
        return None
    query = parse_area(MultiDict(parse_qsl(raw, keep_blank_values=True)), max_radius_m=max_radius_m)
    page = search_memory(catalog, strategy, query, None, max_radius_m)
    nxt = None if page.next_position is None else encode_cursor(key, query, page.next_position)
    return search_body(page.total, page.radius_m, page.hits, page.prefixes, nxt)
