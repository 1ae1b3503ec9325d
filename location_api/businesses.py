"""Business CRUD: writes on the primary with their consistency token, reads through the cache.

Who may write what: a user with the ``owner`` role creates businesses it owns and changes or
deletes only those; an admin creates the operator's businesses (no owner) and changes or
deletes any. The owner is checked in the same statement that changes the row
(:mod:`location_api.queries`), so it cannot change in between.
"""

from __future__ import annotations

import asyncpg

from geo_common.database import Database
from geo_common.tokens import Identity, Role
from location_api import queries
from location_api.cache import Cache
from location_api.cells import geohash12
from location_api.errors import Forbidden, NotFound
from location_api.models import Business, BusinessDetails, BusinessInput, BusinessRecord
from location_api.queries import Refusal
from location_api.hydrate import at_visible_lsn


def limited_to(author: Identity) -> int | None:
    """The owner whose businesses ``author`` may change: their own, or ``None`` (any) for an admin."""
    return None if author.role is Role.ADMIN else author.user_id


def _check_rates(data: BusinessInput, author: Identity) -> None:
    """Ratings come from reviews, which the operator imports: an owner may not set its own."""
    if data.rates and author.role is not Role.ADMIN:
        raise Forbidden("rating and review_count are written by an admin only: an owner's write leaves them out")


def _refused(refusal: Refusal, business_id: int) -> NotFound | Forbidden:
    if refusal is Refusal.MISSING:
        return NotFound(f"no business with id {business_id}")
    # Says nothing of whose it is: the owner's id is private.
    return Forbidden(f"business {business_id} is not yours: an owner may change only the businesses it created")


async def create(db: Database, cache: Cache, data: BusinessInput, author: Identity) -> tuple[BusinessRecord, int]:
    """Insert a business, owned by ``author`` (or by the operator when an admin creates it).

    Returns:
        The stored business and the primary's WAL position after the commit (the
        consistency token: a reader that waits for it sees the business).

    Raises:
        Forbidden: an owner wrote a rating.
        DatabaseUnavailable: the primary is unreachable.
    """
    _check_rates(data, author)
    geohash = geohash12(data.latitude, data.longitude)

    async def run(conn: asyncpg.Connection) -> tuple[BusinessRecord, int]:
        record = await queries.insert_business(conn, data, geohash, owner_id=limited_to(author), author=author.user_id)
        return record, await queries.visible_lsn(conn)

    record, lsn = await db.write(run)
    await cache.invalidate(record.business.id, [geohash], lsn)
    return record, lsn


async def update(
    db: Database, cache: Cache, business_id: int, data: BusinessInput, author: Identity
) -> tuple[BusinessRecord, int]:
    """Replace a business's fields (all of them: PUT semantics; an owner's write keeps the
    rating and review count).

    Returns:
        The stored business and the consistency token.

    Raises:
        NotFound: no business has this id.
        Forbidden: ``author`` is not an admin and does not own it, or wrote a rating.
        DatabaseUnavailable: the primary is unreachable.
    """
    _check_rates(data, author)
    geohash = geohash12(data.latitude, data.longitude)

    async def run(conn: asyncpg.Connection) -> tuple[tuple[BusinessRecord, str] | Refusal, int]:
        result = await queries.update_business(
            conn, business_id, data, geohash, author=author.user_id, owner_id=limited_to(author)
        )
        return result, 0 if isinstance(result, Refusal) else await queries.visible_lsn(conn)

    result, lsn = await db.write(run)
    if isinstance(result, Refusal):
        raise _refused(result, business_id)
    record, old_geohash = result
    # A moved business leaves its old cells and enters new ones: both are stale.
    await cache.invalidate(business_id, {old_geohash, geohash}, lsn)
    return record, lsn


async def delete(db: Database, cache: Cache, business_id: int, author: Identity) -> int:
    """Delete a business.

    Returns:
        The consistency token.

    Raises:
        NotFound: no business has this id.
        Forbidden: ``author`` is not an admin and does not own it.
        DatabaseUnavailable: the primary is unreachable.
    """

    async def run(conn: asyncpg.Connection) -> tuple[str | Refusal, int]:
        result = await queries.delete_business(conn, business_id, owner_id=limited_to(author))
        return result, 0 if isinstance(result, Refusal) else await queries.visible_lsn(conn)

    result, lsn = await db.write(run)
    if isinstance(result, Refusal):
        raise _refused(result, business_id)
    await cache.invalidate(business_id, [result], lsn)
    return lsn


async def detail(
    db: Database, cache: Cache, business_id: int, *, min_lsn: int | None = None
) -> tuple[Business, BusinessDetails]:
    """A business and its details (time zone, hours, contacts, price level, rating): one cache
    read, else one query on a replica (then cached, under the cache's fences).

    Args:
        db: the databases.
        cache: the cache (bypassed when ``min_lsn`` is given).
        business_id: the id.
        min_lsn: a consistency token: only a server that has replayed it may answer.

    Raises:
        NotFound: no business has this id.
        DatabaseUnavailable: no database could answer.
        AheadOfPrimary: ``min_lsn`` is beyond the primary's position.
    """
    row = None if min_lsn is not None else await cache.get_detail(business_id)
    if row is None:
        read_lsn, row = await db.read(
            lambda conn: at_visible_lsn(conn, lambda c: queries.get_detail_row(c, business_id)), min_lsn=min_lsn
        )
        if row is None:
            raise NotFound(f"no business with id {business_id}")
        await cache.put_detail(business_id, row, read_lsn)
    return queries.detail_of(row)
