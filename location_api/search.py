"""Nearby and area search: the in-memory strategies, the ``sql`` strategy, paging, sorting
and radius expansion.

Every strategy produces the same thing: all businesses within the radius that pass the
filters and lie in the area (:mod:`location_api.filters`, :mod:`location_api.area`), as
``(id, distance_m)`` sorted by (distance, id), with distances from
:func:`geo_index.haversine_m`. The page is then cut after the cursor's (distance, id), or,
sorted by rating or relevance, every match is ranked and the page cut after the cursor's
(rank, distance, id), so bodies are identical whichever strategy answered. The page's
businesses come from the catalog's cards, or, for the ``sql`` strategy and a catalog of
positions only, are read by id (:mod:`location_api.hydrate`).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

import orjson

from geo_common.database import Database
from geo_index import Page, haversine_m, page_of

from location_api import queries
from location_api._csearch import area_body as _area_body
from location_api._csearch import plain_body as _plain_body
from location_api.cache import Cache
from location_api.catalog import Catalog
from location_api.cells import Cell, cover, text_ranges
from location_api.contract import DEFAULT_LIMIT, DEFAULT_RADIUS_M, MAX_LIMIT, MIN_RADIUS_M
from location_api.cursor import CursorPosition, area_refinements, encode_fields
from location_api.hydrate import at_visible_lsn, hydrate_hits
from location_api.filters import Facets, matcher, relevance
from location_api.models import SearchQuery
from location_api.queries import Candidate, candidate_facets
from location_api.render import Prefixes

Hit = tuple[int, float]
T = TypeVar("T")


class SearchPage(NamedTuple):
    """One page of results.

    Attributes:
        total: businesses within ``radius_m`` that pass the filters (and lie in the area).
        radius_m: the radius searched, metres (wider than asked when ``expand`` widened it).
        hits: this page's businesses, ``(id, distance_m)``, in the search's order.
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


def _start(after: CursorPosition | None) -> tuple[float, int] | None:
    return None if after is None else (after.distance_m, after.business_id)


#: ``pages(radius_m, limit, after)``: a strategy's page of the matches within a radius
#: (``limit`` ``None``: all of them), as :meth:`geo_index.GeohashIndex.page`.
Pages = Callable[[float, "int | None", "tuple[float, int] | None"], Page]


def _ranks(query: SearchQuery) -> Callable[[Facets], float] | None:
    """The rank of a business in the query's sort, lowest first; ``None`` by distance."""
    if query.sort == "rating":
        return lambda f: 1.0 if f.rating is None else -f.rating  # unrated last
    if query.sort == "relevance":
        score = relevance(query.filters)
        return lambda f: -float(score(f))
    return None


def _paged(
    pages: Pages,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    rank_of: Callable[[int], float] | None,
    at: float,
) -> tuple[int, float, list[Hit], CursorPosition | None]:
    """One page of a search from a strategy's pages: by (distance, id), or by (rank, distance,
    id) when ``rank_of`` (of an id) is given, after the cursor's position.

    Returns:
        The number of matches, the radius searched, the page's hits and where the next page
        starts (``None``: no next page, and never for a ``k`` search).
    """
    radius = query.radius_m
    limit = query.limit
    if rank_of is None:
        found = Page(0, 0, [])
        for radius in radii(query, after, max_radius_m):
            found = pages(radius, limit, _start(after))
            if found.total >= limit:
                break
        hits, following, rank = found.hits, found.following, 0.0
    else:
        every: list[Hit] = []
        for radius in radii(query, after, max_radius_m):
            every = pages(radius, None, None).hits
            if len(every) >= limit:
                break
        found = Page(len(every), 0, [])
        keyed = sorted((rank_of(bid), d, bid) for bid, d in every)
        first = 0 if after is None else bisect_right(keyed, (after.rank, after.distance_m, after.business_id))
        cut = keyed[first : first + limit]
        hits, following = [(bid, d) for _, d, bid in cut], len(keyed) - first
        rank = cut[-1][0] if cut else 0.0
    more = following > len(hits) and hits and query.k is None
    position = CursorPosition(radius, hits[-1][1], hits[-1][0], rank, at) if more else None
    return found.total, radius, hits, position


def search_memory(
    catalog: Catalog,
    strategy: str,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    at: datetime | None = None,
) -> SearchPage:
    """Answer from an in-memory index (no I/O; runs on the event loop's thread).

    The index counts the matches and builds only the page
    (:meth:`geo_index.GeohashIndex.page`); the filters and the area are its ``where``, so the
    businesses that fail them are dropped before anything is counted. Another sort than
    distance ranks every match within the radius, then cuts the page.

    A catalog of positions only gives the page without prefixes (:func:`search_catalog`
    reads them) and no filtered search: it holds no facets.

    Args:
        catalog: the instance's catalog.
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        query: the search.
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).
        at: the instant ``open_now`` means.

    Returns:
        The page.

    Raises:
        ValueError: a filtered search of a catalog of positions only.
    """
    index = catalog.indexes[strategy]
    cards = catalog.cards
    # A list or a dict, indexed by id; it holds every id the index does.
    prefixes: Prefixes = {} if cards is None else cards.hits
    lat, lon = query.latitude, query.longitude
    where: Callable[[int], bool] | None = None
    rank_of: Callable[[int], float] | None = None
    if not query.plain:
        if cards is None:
            raise ValueError("a catalog of positions only holds no facets: the sql strategy filters")
        if query.filters.any:
            where = _by_id(cards.facets, matcher(query.filters, at))
        ranks = _ranks(query)
        if ranks is not None:
            rank_of = _by_id(cards.facets, ranks)
    # The area's box is tested in the compiled scan, before any filter.
    box = None if query.box is None else (query.box.west, query.box.south, query.box.east, query.box.north)

    def pages(radius: float, limit: int | None, start: tuple[float, int] | None) -> Page:
        return index.page(lat, lon, radius, limit, start, where=where, box=box)

    total, radius, hits, nxt = _paged(pages, query, after, max_radius_m, rank_of, _instant(query, at))
    return SearchPage(total, radius, hits, prefixes, nxt)


def _by_id(facets: list[Facets | None] | dict[int, Facets], of: Callable[[Facets], T]) -> Callable[[int], T]:
    """``of`` a business's facets, by its id (every id the index holds has them)."""

    def by_id(business_id: int) -> T:
        return of(facets[business_id])  # type: ignore[arg-type]

    return by_id


def _instant(query: SearchQuery, at: datetime | None) -> float:
    """What a cursor keeps of the instant: POSIX seconds for ``open_now``, else 0."""
    return at.timestamp() if query.filters.open_now and at is not None else 0.0


async def search_catalog(
    db: Database,
    cache: Cache,
    catalog: Catalog,
    strategy: str,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    *,
    at: datetime | None = None,
    min_lsn: int | None = None,
) -> SearchPage:
    """Answer from an in-memory index: :func:`search_memory`, the page's businesses then read
    by id when the catalog holds positions only (:func:`location_api.hydrate.hydrate_hits`).

    Args:
        db: the databases (positions only).
        cache: the Redis cache (positions only; bypassed when ``min_lsn`` is given).
        catalog: the instance's catalog.
        strategy: ``geohash``, ``quadtree`` or ``s2``.
        query: the search (no filter nor area, when the catalog holds positions only).
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).
        at: the instant ``open_now`` means.
        min_lsn: a consistency token the catalog has applied: the businesses are read from a
            server that has replayed it.

    Returns:
        The page.

    Raises:
        DatabaseUnavailable: positions only: no database could answer what the cache lacks.
    """
    page = search_memory(catalog, strategy, query, after, max_radius_m, at)
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
    return _compiled_body(_plain_body, catalog, strategy, raw, max_radius_m, cursor_key)


def area_body(catalog: Catalog, strategy: str, raw: str, max_radius_m: float, cursor_key: bytes) -> bytes | None:
    """The response body of a plain area search, read from the raw query string; else ``None``.

    The same compiled path for "search this area" (``location_api/_carea.c``): a box and
    maybe a limit, each once and plainly valid, answered in one call: the box's circle
    (:func:`geo_index.box_circle`, as :func:`location_api.search_params.parse_area` makes
    it), the index's first page inside the box, the next page's cursor and the body. The bytes
    are those the general path (:func:`location_api.search_params.parse_area`,
    :func:`search_memory`) gives the same request; anything else, a box too large for
    ``max_radius_m`` and a catalog of positions only included, gives ``None``.

    Args: as :func:`plain_body`'s.
    """
    return _compiled_body(_area_body, catalog, strategy, raw, max_radius_m, cursor_key, area_refinements)


def _compiled_body(
    answer: Callable[..., bytes | None],
    catalog: Catalog,
    strategy: str,
    raw: str,
    max_radius_m: float,
    cursor_key: bytes,
    *more: object,
) -> bytes | None:
    """``answer`` (``_csearch.plain_body`` or ``area_body``) given the catalog's parts, or
    ``None`` for a catalog of positions only (the general path reads the page's businesses by
    id)."""
    cards = catalog.cards
    if cards is None:
        return None
    limits = (MIN_RADIUS_M, max_radius_m, DEFAULT_RADIUS_M, DEFAULT_LIMIT, MAX_LIMIT)
    return answer(
        raw, limits, catalog.indexes[strategy].native, cards.hits, cursor_key, encode_fields, orjson.dumps, *more
    )


async def search_sql(
    db: Database,
    cache: Cache,
    query: SearchQuery,
    after: CursorPosition | None,
    max_radius_m: float,
    *,
    at: datetime | None = None,
    min_lsn: int | None = None,
) -> SearchPage:
    """Answer with geohash prefix queries on a replica (the cache first, when allowed).

    The candidates carry what the filters read (:func:`location_api.queries.candidate_facets`),
    and the same :func:`location_api.filters.matcher` as in memory decides.

    Args:
        db: the databases.
        cache: the Redis cache (bypassed when ``min_lsn`` is given: it may trail the token).
        query: the search.
        after: the cursor's position, for pages after the first.
        max_radius_m: the largest radius, metres (the end of expansion).
        at: the instant ``open_now`` means.
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Returns:
        The page.

    Raises:
        DatabaseUnavailable: no database could answer.
    """
    lat, lon = query.latitude, query.longitude
    check = None if query.plain else matcher(query.filters, at)
    box = query.box
    ranks = _ranks(query)
    rank: dict[int, float] = {}
    matches: dict[float, list[Hit]] = {}
    for radius in radii(query, after, max_radius_m):
        candidates = await _candidates(db, cache, lat, lon, radius, min_lsn)
        found: list[tuple[float, int]] = []
        for candidate in candidates:
            bid, clat, clon = candidate[0], candidate[1], candidate[2]
            d = haversine_m(lat, lon, clat, clon)
            if d > radius or (box is not None and not box.contains(clat, clon)):
                continue
            if check is not None or ranks is not None:
                facets = candidate_facets(candidate)
                if check is not None and not check(facets):
                    continue
                if ranks is not None:
                    rank[bid] = ranks(facets)
            found.append((d, bid))
        found.sort()
        matches[radius] = [(bid, d) for d, bid in found]
        if len(found) >= query.limit:  # where _paged stops widening too
            break

    def pages(radius: float, limit: int | None, start: tuple[float, int] | None) -> Page:
        return page_of(matches[radius], limit, start)

    total, radius, hits, nxt = _paged(
        pages, query, after, max_radius_m, None if ranks is None else rank.__getitem__, _instant(query, at)
    )
    # A business deleted (or moved) between the two reads drops out of the page.
    rows, prefixes = await hydrate_hits(db, cache, hits, lat, lon, min_lsn=min_lsn)
    return SearchPage(total, radius, rows, prefixes, nxt)


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
