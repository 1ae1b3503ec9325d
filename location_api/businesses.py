"""Business CRUD: writes on the primary with their consistency token, reads through the cache."""

from __future__ import annotations

import asyncpg

from location_api import queries
from location_api.cache import Cache
from location_api.cells import geohash12
from location_api.db import Database
from location_api.errors import NotFound
from location_api.models import Business, BusinessInput
from location_api.search import fetch_businesses


async def create(db: Database, cache: Cache, data: BusinessInput) -> tuple[Business, int]:
    """Insert a business.

    Returns:
        The stored business and the primary's WAL position after the commit (the
        consistency token: a reader that waits for it sees the business).

    Raises:
        DatabaseUnavailable: the primary is unreachable.
    """
    geohash = geohash12(data.latitude, data.longitude)

    async def run(conn: asyncpg.Connection) -> tuple[Business, int]:
        business = await queries.insert_business(conn, data, geohash)
        return business, await queries.visible_lsn(conn)

    business, lsn = await db.write(run)
    await cache.invalidate(business.id, [geohash], lsn)
    return business, lsn


async def update(db: Database, cache: Cache, business_id: int, data: BusinessInput) -> tuple[Business, int]:
    """Replace a business's fields (all of them: PUT semantics).

    Returns:
        The stored business and the consistency token.

    Raises:
        NotFound: no business has this id.
        DatabaseUnavailable: the primary is unreachable.
    """
    geohash = geohash12(data.latitude, data.longitude)

    async def run(conn: asyncpg.Connection) -> tuple[tuple[Business, str] | None, int]:
        result = await queries.update_business(conn, business_id, data, geohash)
        return result, await queries.visible_lsn(conn)

    result, lsn = await db.write(run)
    if result is None:
        raise NotFound(f"no business with id {business_id}")
    business, old_geohash = result
    # A moved business leaves its old cells and enters new ones: both are stale.
    await cache.invalidate(business_id, {old_geohash, geohash}, lsn)
    return business, lsn


async def delete(db: Database, cache: Cache, business_id: int) -> int:
    """Delete a business.

    Returns:
        The consistency token.

    Raises:
        NotFound: no business has this id.
        DatabaseUnavailable: the primary is unreachable.
    """

    async def run(conn: asyncpg.Connection) -> tuple[str | None, int]:
        old_geohash = await queries.delete_business(conn, business_id)
        return old_geohash, await queries.visible_lsn(conn)

    old_geohash, lsn = await db.write(run)
    if old_geohash is None:
        raise NotFound(f"no business with id {business_id}")
    await cache.invalidate(business_id, [old_geohash], lsn)
    return lsn


async def get(db: Database, cache: Cache, business_id: int, *, min_lsn: int | None = None) -> Business:
    """One business, from the cache or a replica.

    Args:
        db: the databases.
        cache: the cache (bypassed when ``min_lsn`` is given).
        business_id: the id.
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Raises:
        NotFound: no business has this id.
        DatabaseUnavailable: no database could answer.
    """
    found = await fetch_businesses(db, cache, [business_id], min_lsn=min_lsn)
    if business_id not in found:
        raise NotFound(f"no business with id {business_id}")
    return found[business_id]
