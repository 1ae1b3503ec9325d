"""Parsing the query strings of the two searches: ``GET /v1/search/nearby`` and
``GET /v1/search/area``.

Each parser collects every problem it finds before raising, so one 400 names all the
parameters at fault; unknown and repeated parameters are refused.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from multidict import MultiMapping

from geo_common.problems import FieldError
from location_api.area import Box
from location_api.contract import (
    DEFAULT_LIMIT,
    DEFAULT_RADIUS_M,
    MAX_CATEGORY_CHARS,
    MAX_LIMIT,
    MIN_RADIUS_M,
    STRATEGIES,
)
from location_api.errors import FOREIGN_CURSOR, InvalidRequest
from location_api.filters import MAX_CATEGORIES, SearchFilters
from location_api.models import SearchQuery
from location_api.query_values import BLANK, boolean, decimal, shown, text, whole
from location_api.text_match import MAX_QUERY_CHARS, MAX_QUERY_WORDS, words

_MAX_CURSOR_CHARS = 1024
#: The filters and sort both searches take.
_REFINEMENTS = ("category", "price", "min_rating", "open_now", "open_at", "q", "sort", "cursor", "index")
SEARCH_PARAMETERS = ("latitude", "longitude", "radius", "limit", "expand", "k", *_REFINEMENTS)
AREA_PARAMETERS = ("bbox", "limit", *_REFINEMENTS)
SORTS = ("distance", "rating", "relevance")
#: The first radius a ``k`` search tries, metres (it doubles up to the largest).
K_FIRST_RADIUS_M = 1_000.0


def parse_search(query: MultiMapping[str], *, max_radius_m: float) -> SearchQuery:
    """Validate the query string of ``GET /v1/search/nearby``.

    Unknown parameters are refused rather than ignored: a misspelt ``raduis`` would otherwise
    silently search the default 5 km.

    Args:
        query: the request's query parameters.
        max_radius_m: the largest radius accepted, metres.

    Returns:
        The search, with defaults filled in (``k``: the first of the radii it widens through,
        :data:`K_FIRST_RADIUS_M`, and ``expand``).

    Raises:
        InvalidRequest: naming every parameter that is missing, repeated, unknown or malformed.
    """
    read = _Parameters(query, SEARCH_PARAMETERS)
    latitude = read.get("latitude", lambda r: decimal(r, -90.0, 90.0), _REQUIRED)
    longitude = read.get("longitude", lambda r: decimal(r, -180.0, 180.0), _REQUIRED)
    radius = read.get("radius", lambda r: decimal(r, MIN_RADIUS_M, max_radius_m), DEFAULT_RADIUS_M)
    limit = read.get("limit", lambda r: whole(r, 1, MAX_LIMIT), DEFAULT_LIMIT)
    expand = read.get("expand", boolean, False)
    k = read.get("k", lambda r: whole(r, 1, MAX_LIMIT), None)
    if k is not None:
        given = [name for name in ("radius", "limit", "expand", "cursor") if name in read.values]
        if given:
            read.errors.append(FieldError("k", f"asks for the k nearest in one page: leave out {', '.join(given)}"))
        radius, limit, expand = min(K_FIRST_RADIUS_M, max_radius_m), k, True
    filters, sort, cursor, strategy = _refinements(read)
    read.check()
    return SearchQuery(latitude, longitude, radius, limit, filters, expand, cursor, strategy, sort, k)


def parse_area(query: MultiMapping[str], *, max_radius_m: float) -> SearchQuery:
    """Validate the query string of ``GET /v1/search/area``: a box and the filters of a nearby search.

    Args:
        query: the request's query parameters.
        max_radius_m: the largest radius accepted, metres: a box must fit in a circle of it.

    Returns:
        The search: around the box's centre, as far as its farthest point
        (:class:`location_api.area.Box`), with only its businesses matching.

    Raises:
        InvalidRequest: naming every parameter that is missing, repeated, unknown or malformed,
            and ``bbox`` when the box is larger than the largest radius allows.
    """
    read = _Parameters(query, AREA_PARAMETERS)
    box = read.get("bbox", _box, _REQUIRED)
    limit = read.get("limit", lambda r: whole(r, 1, MAX_LIMIT), DEFAULT_LIMIT)
    filters, sort, cursor, strategy = _refinements(read)
    latitude = longitude = radius = 0.0
    if box is not None:
        latitude, longitude, reach = box.circle()
        # 1 m beyond the farthest point: the index's distances and these may differ in the
        # last bit, and the box test decides which points are in (the compiled area search,
        # location_api/_carea.c, adds the same metre).
        radius = reach + 1.0
        if radius > max_radius_m:
            read.errors.append(
                FieldError(
                    "bbox",
                    f"is too large: its farthest point is {reach / 1000:.1f} km from its centre; "
                    f"at most {max_radius_m / 1000:g} km",
                )
            )
    read.check()
    return SearchQuery(latitude, longitude, radius, limit, filters, False, cursor, strategy, sort, None, box)


class _Parameters:
    """A query string read once: each parameter's one value, and every problem found so far."""

    def __init__(self, query: MultiMapping[str], known: tuple[str, ...]) -> None:
        self.errors: list[FieldError] = []
        self.values: dict[str, str] = {}
        self._reported: set[str] = set()
        for name, value in query.items():  # every pair: iterating the keys would hide repeats
            if name in self._reported:
                continue
            if name not in known:
                self.errors.append(FieldError(name, f"unknown query parameter; known: {', '.join(known)}"))
                self._reported.add(name)
            elif name in self.values:
                self.errors.append(FieldError(name, "given more than once"))
                self._reported.add(name)
            else:
                self.values[name] = value

    def get(self, name: str, parse: Any, default: Any) -> Any:
        """The parameter parsed, its default when absent, or ``None`` with its problem noted."""
        if name in self._reported:
            return None  # already reported as repeated
        raw = self.values.get(name)
        if raw is None:
            if default is _REQUIRED:
                self.errors.append(FieldError(name, "is required"))
                return None
            return default
        try:
            return parse(raw)
        except ValueError as exc:
            self.errors.append(FieldError(name, str(exc)))
            return None

    def check(self) -> None:
        """Raise :class:`InvalidRequest` naming every problem, if there is one."""
        if self.errors:
            raise InvalidRequest("; ".join(f"{e.field}: {e.message}" for e in self.errors), self.errors)


def _refinements(read: _Parameters) -> tuple[SearchFilters, str, str | None, str | None]:
    """The filters, sort, cursor and index of a search (nearby or area)."""
    categories = read.get("category", _categories, None)
    prices = read.get("price", _prices, None)
    min_rating = read.get("min_rating", lambda r: decimal(r, 0.0, 5.0), None)
    open_now = read.get("open_now", boolean, False)
    open_at = read.get("open_at", _instant, None)
    if open_now and open_at is not None:
        read.errors.append(FieldError("open_at", "give open_now or open_at, not both"))
    q = read.get("q", _text_query, None)
    sort = read.get("sort", _sort, "distance")
    if sort == "relevance" and q is None and "q" not in read.values:
        read.errors.append(FieldError("sort", "relevance ranks by the text query: give q too"))
    cursor = read.get("cursor", _cursor_text, None)
    strategy = read.get("index", _strategy, None)
    filters = SearchFilters(categories, prices, min_rating, bool(open_now), open_at, q)
    return filters, sort or "distance", cursor, strategy


def _categories(raw: str) -> frozenset[str]:
    items = raw.split(",")
    if len(items) > MAX_CATEGORIES:
        raise ValueError(f"names at most {MAX_CATEGORIES} categories, got {len(items)}")
    for item in items:
        text(item, MAX_CATEGORY_CHARS)
    return frozenset(item.strip(BLANK).casefold() for item in items)


def _prices(raw: str) -> frozenset[int]:
    levels = set()
    for item in raw.split(","):
        if item not in ("1", "2", "3", "4"):
            raise ValueError(f"must be price levels 1 to 4, separated by commas, got {shown(raw)}")
        levels.add(int(item))
    return frozenset(levels)


#: An instant with its offset: ``2026-03-29T01:30:00+01:00``, ``...Z``; seconds and their
#: fraction optional. A ``+`` left unencoded in a query string arrives as a blank: taken as ``+``.
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+ -][0-9]{2}:[0-9]{2})"
)


def _instant(raw: str) -> datetime:
    if not _INSTANT.fullmatch(raw):
        raise ValueError(f"must be an RFC 3339 instant with its offset, as 2026-03-29T01:30:00+01:00, got {shown(raw)}")
    text = raw[:-6] + "+" + raw[-5:] if raw[-6] == " " else raw
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"is not a valid date and time, got {shown(raw)}") from None
    if not 1900 <= instant.year <= 2999:  # local times far out overflow a datetime
        raise ValueError(f"must be in the years 1900 to 2999, got {shown(raw)}")
    return instant


def _text_query(raw: str) -> tuple[str, ...]:
    text(raw, MAX_QUERY_CHARS)
    found = words(raw)
    if not found:
        raise ValueError("must contain a letter or a digit")
    if len(found) > MAX_QUERY_WORDS:
        raise ValueError(f"must have at most {MAX_QUERY_WORDS} words, got {len(found)}")
    return found


def _sort(raw: str) -> str:
    if raw not in SORTS:
        raise ValueError(f"must be one of {', '.join(SORTS)}, got {shown(raw)}")
    return raw


def _box(raw: str) -> Box:
    parts = raw.split(",")
    if len(parts) != 4:
        raise ValueError(f"must be west,south,east,north in degrees, got {shown(raw)}")
    west, east = (decimal(parts[i], -180.0, 180.0) for i in (0, 2))
    south, north = (decimal(parts[i], -90.0, 90.0) for i in (1, 3))
    if south > north:
        raise ValueError(f"south ({south:g}) must not be north of north ({north:g})")
    return Box(west, south, east, north)


class _Required:
    """Marks a parameter without a default."""


_REQUIRED: Any = _Required()


def _cursor_text(raw: str) -> str:
    if not raw:
        raise ValueError("must not be empty (omit it for the first page)")
    if len(raw) > _MAX_CURSOR_CHARS:
        raise ValueError(FOREIGN_CURSOR)
    return raw


def _strategy(raw: str) -> str:
    if raw not in STRATEGIES:
        raise ValueError(f"must be one of {', '.join(STRATEGIES)}, got {shown(raw)}")
    return raw
