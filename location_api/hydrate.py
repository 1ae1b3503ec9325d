"""Businesses by id: the Redis business cache first, then one query on a replica (cache-aside).

This is how every search page that names businesses gets them: the page of the ``sql``
strategy, and the page of a catalog of positions only
(:meth:`location_api.catalog.Catalog.of_positions`), whose index gives ids and distances and
nothing else. A page's hits are *hydrated*: read by id (:func:`fetch_businesses`: a cache
``MGET``, then the misses in one ``WHERE id = ANY($1)`` on a replica, then filled into the
cache at the position that replica had made visible, under the cache's fences), and rendered
in the page's order.

A hit is dropped from its page when its business is gone by then (deleted after the index or
the cells listed it) or is no longer at the distance the page gives it (moved): every hit
shown is at its stated distance from the centre, as the in-memory answer is. The page keeps
its total and its cursor, which continues after the page's last listed hit, so paging skips
nothing; the total may count a business written within the last moments.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TypeVar

import asyncpg

from geo_common.database import Database
from geo_index import haversine_m

from location_api import queries
from location_api.cache import Cache
from location_api.models import Business
from location_api.render import hit_prefix

T = TypeVar("T")


async def at_visible_lsn(
    conn: asyncpg.Connection, query: Callable[[asyncpg.Connection], Awaitable[T]]
) -> tuple[int, T]:
    """A read with the WAL position its server had made visible before it (so the cache can
    tell a fill from a lagging replica that a write has since fenced off)."""
    lsn = await queries.visible_lsn(conn)
    return lsn, await query(conn)


async def fetch_businesses(
    db: Database, cache: Cache, ids: list[int], *, min_lsn: int | None = None
) -> dict[int, Business]:
    """Businesses by id: from the cache, the rest from a replica (then cached).

    Args:
        db: the databases.
        cache: the Redis cache (bypassed when ``min_lsn`` is given).
        ids: the ids wanted.
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Returns:
        The businesses that exist, by id.

    Raises:
        DatabaseUnavailable: no database could answer.
    """
    found = {} if min_lsn is not None else await cache.get_businesses(ids)
    missing = [i for i in ids if i not in found]
    if missing:
        read_lsn, fetched = await db.read(
            lambda conn: at_visible_lsn(conn, lambda c: queries.get_businesses(c, missing)), min_lsn=min_lsn
        )
        await cache.put_businesses(fetched.values(), read_lsn)
        found.update(fetched)
    return found


async def hydrate_hits(
    db: Database,
    cache: Cache,
    hits: Sequence[tuple[int, float]],
    latitude: float,
    longitude: float,
    *,
    min_lsn: int | None = None,
) -> tuple[list[tuple[int, float]], dict[int, bytes]]:
    """A page's hits read by id: those still at their distance, in order, and their prefixes.

    Args:
        db: the databases.
        cache: the Redis cache (bypassed when ``min_lsn`` is given).
        hits: the page, ``(id, distance_m)`` nearest first.
        latitude: the search's centre, degrees.
        longitude: the search's centre, degrees.
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Returns:
        The hits kept, in their order, and each one's :func:`location_api.render.hit_prefix`
        by id (what :func:`location_api.render.search_body` takes).

    Raises:
        DatabaseUnavailable: no database could answer (only asked for what the cache lacks).
    """
    details = await fetch_businesses(db, cache, [bid for bid, _ in hits], min_lsn=min_lsn)
    kept: list[tuple[int, float]] = []
    prefixes: dict[int, bytes] = {}
    for bid, distance in hits:
        business = details.get(bid)
        # The distance is haversine_m's, whichever strategy found the hit: equal exactly
        # unless the business has moved since.
        if business is None or haversine_m(latitude, longitude, business.latitude, business.longitude) != distance:
            continue
        kept.append((bid, distance))
        prefixes[bid] = hit_prefix(business)
    return kept, prefixes
