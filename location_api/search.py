"""Nearby search: the in-memory strategies, the ``sql`` strategy, paging and radius expansion.

Every strategy produces the same thing: all businesses within the radius (of the category,
if one is asked for), as ``(id, distance_m)`` sorted by (distance, id), with distances from
:func:`geo_index.haversine_m`. The page is then cut after the cursor's (distance, id), so
bodies are identical whichever strategy answered. The page's businesses come from the
catalog's cards, or, for the ``sql`` strategy and a catalog of positions only, are read by id
(:mod:`location_api.hydrate`).
"""

from __future__ import annotations

from typing import NamedTuple

import orjson

from geo_common.database import Database
from geo_index import Page, haversine_m, page_of

from location_api import queries
from location_api._csearch import plain_body as _plain_body
from location_api.cache import Cache
from location_api.catalog import Catalog
from location_api.cells import Cell, cover, text_ranges
from location_api.contract import DEFAULT_LIMIT, DEFAULT_RADIUS_M, MAX_LIMIT, MIN_RADIUS_M
from location_api.cursor import CursorPosition, encode_fields
from location_api.hydrate import at_visible_lsn, hydrate_hits
from location_api.models import SearchQuery
from location_api.queries import Candidate
from location_api.render import Prefixes

Hit = tuple[int, float]


class SearchPage(NamedTuple):
    """One page of results.

    Attributes:
        total: businesses within ``radius_m`` (of the category, if given).
        radius_m: the radius searched, metres (wider than asked when ``expand`` widened it).
        hits: this page's businesses, ``(id, distance_m)``, nearest first.
        prefixes: each hit's :func:`location_api.render.hit_prefix`, by id (a list indexed
            by id, or a dict): what :func:`location_api.render.search_body` takes.
        next_position: where the page ended, when more businesses follow; else ``None``.
    """

    total: int
    radius_m: float
    hits: list[Hit]
    prefixes: Prefixes
    next_position: CursorPosition | None


def radii(query: SearchQuery, after: CursorPosition | None, max_radius_m: float) -> list[float]:
    """The radii to try, metres, smallest first.

    Without ``expand`` (or when continuing from a cursor, which fixes the radius) there is one.
    With it, the radius doubles until it reaches ``max_radius_m``; the search stops at the
    first radius with at least ``limit`` matches.
    """
    if after is not None:
        return [after.radius_m]
    steps = [query.radius_m]
    while query.expand and steps[-1] < max_radius_m:
        steps.append(min(steps[-1] * 2.0, max_radius_m))
    return steps


def _next_position(page: list[Hit], following: int, radius_m: float) -> CursorPosition | None:
    """Where the next page starts, when more than ``page`` of the ``following`` hits remain."""
    return CursorPosition(radius_m, page[-1][1], page[-1][0]) if following > len(page) and page else None


def _start(after: CursorPosition | None) -> tuple[float, int] | None:
    return None if after is None else (after.distance_m, after.business_id)


def search_memory(
    catalog: Catalog, strategy: str, query: SearchQuery, after: CursorPosition | None, max_radius_m: float
) -> SearchPage:
    """Answer from an in-memory index (no I/O; runs on the event loop's thread).

    The index counts the matches and builds only the page
    (:meth:`geo_index.GeohashIndex.page`); a category is its ``where`` filter, so the other
    categories' businesses are dropped before anything is counted.

    A catalog of positions only gives the page without prefixes (:func:`search_catalog`
    reads them) and no category search.

    Args:
        catalog: the instance's catalog.
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        query: the search.
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).

    Returns:
        The page.

    Raises:
        ValueError: a category search of a catalog of positions only.
    """
    index = catalog.indexes[strategy]
    cards = catalog.cards
    # A list or a dict, indexed by id; it holds every id the index does.
    prefixes: Prefixes = {} if cards is None else cards.hits
    category = query.category
    if category is not None and cards is None:
        raise ValueError("a catalog of positions only holds no categories: the sql strategy filters them")
    where = None if category is None or cards is None else (cards.categories, category)
    start = _start(after)
    found = Page(0, 0, [])
    radius = query.radius_m
    for radius in radii(query, after, max_radius_m):
        found = index.page(query.latitude, query.longitude, radius, query.limit, start, where=where)
        if found.total >= query.limit:
            break
    return SearchPage(found.total, radius, found.hits, prefixes, _next_position(found.hits, found.following, radius))


async def search_catalog(
    db: Database,
    cache: Cache,
    catalog: Catalog,
    strategy: str,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    *,
    min_lsn: int | None = None,
) -> SearchPage:
    """Answer from an in-memory index: :func:`search_memory`, the page's businesses then read
    by id when the catalog holds positions only (:func:`location_api.hydrate.hydrate_hits`).

    Args:
        db: the databases (positions only).
        cache: the Redis cache (positions only; bypassed when ``min_lsn`` is given).
        catalog: the instance's catalog.
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        query: the search (no category, when the catalog holds positions only).
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).
        min_lsn: a consistency token the catalog has applied: the businesses are read from a
            server that has replayed it.

    Returns:
        The page.

    Raises:
        DatabaseUnavailable: positions only: no database could answer what the cache lacks.
    """
    page = search_memory(catalog, strategy, query, after, max_radius_m)
    if catalog.cards is not None:
        return page
    hits, prefixes = await hydrate_hits(db, cache, page.hits, query.latitude, query.longitude, min_lsn=min_lsn)
    return page._replace(hits=hits, prefixes=prefixes)


def plain_body(catalog: Catalog, strategy: str, raw: str, max_radius_m: float, cursor_key: bytes) -> bytes | None:
    """The response body of a plain search, read from the raw query string; else ``None``.

    The one compiled path (``location_api/_cplain.c``): nearly every search gives a position
    and maybe a radius and a limit, each once and plainly valid, and this answers it in one
    call: the query string read without decoding it into a mapping (a string without ``%``
    and ``+`` decodes to itself), the index's first page, the next page's cursor
    (:func:`location_api.cursor.encode_fields`) and the body
    (:func:`location_api.render.search_body`). The bytes are those the general path
    (:func:`location_api.validate.parse_search`, :func:`search_memory`) gives the same
    request. Anything else, a catalog of positions only included, gives ``None``: the caller
    runs the general path, which names every problem of a bad request.

    Args:
        catalog: the instance's catalog; ``strategy`` must be one of its indexes.
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        raw: the query string as sent (still percent-encoded).
        max_radius_m: the largest radius accepted, metres (the catalog's indexes' own).
        cursor_key: the key of the next page's cursor.
    """
    cards = catalog.cards
    if cards is None:  # positions only: the general path reads the page's businesses by id
        return None
    limits = (MIN_RADIUS_M, max_radius_m, DEFAULT_RADIUS_M, DEFAULT_LIMIT, MAX_LIMIT)
    return _plain_body(
        raw, limits, catalog.indexes[strategy].native, cards.hits, cursor_key, encode_fields, orjson.dumps
    )


async def search_sql(
    db: Database,
    cache: Cache,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    *,
    min_lsn: int | None = None,
) -> SearchPage:
    """Answer with geohash prefix queries on a replica (the cache first, when allowed).

    Args:
        db: the databases.
        cache: the Redis cache (bypassed when ``min_lsn`` is given: it may trail the token).
        query: the search.
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Returns:
        The page.

    Raises:
        DatabaseUnavailable: no database could answer.
    """
    hits: list[Hit] = []
    radius = query.radius_m
    for radius in radii(query, after, max_radius_m):
        candidates = await _candidates(db, cache, query.latitude, query.longitude, radius, min_lsn)
        found: list[tuple[float, int]] = []
        for bid, lat, lon, category in candidates:
            if query.category is not None and category != query.category:
                continue
            d = haversine_m(query.latitude, query.longitude, lat, lon)
            if d <= radius:
                found.append((d, bid))
        found.sort()
        hits = [(bid, d) for d, bid in found]
        if len(hits) >= query.limit:
            break
    page = page_of(hits, query.limit, _start(after))
    # A business deleted (or moved) between the two reads drops out of the page.
    rows, prefixes = await hydrate_hits(db, cache, page.hits, query.latitude, query.longitude, min_lsn=min_lsn)
    return SearchPage(page.total, radius, rows, prefixes, _next_position(page.hits, page.following, radius))


async def _candidates(
    db: Database, cache: Cache, lat: float, lon: float, radius_m: float, min_lsn: int | None
) -> list[Candidate]:
    cells = cover(lat, lon, radius_m).cells
    cached: dict[Cell, list[Candidate]] = {} if min_lsn is not None else await cache.get_cells(cells)
    missing = [c for c in cells if c not in cached]
    if missing:
        ranges = [text_ranges((cell,))[0] for cell in missing]
        read_lsn, lists = await db.read(
            lambda conn: at_visible_lsn(conn, lambda c: queries.candidates_in_ranges(c, ranges)), min_lsn=min_lsn
        )
        fetched = dict(zip(missing, lists))
        await cache.put_cells(fetched, read_lsn)
        cached.update(fetched)
    return [c for cell in cells for c in cached[cell]]
