"""The SQL the in-memory catalog reads: every business with what filters read of it, in one
snapshot, and the change log since (:mod:`location_api.refresh`, :mod:`location_api.catalog_load`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

import asyncpg

from geo_common.database_node import VISIBLE_LSN_SQL, lsn_from_text
from location_api.filters import Facets, facets_of
from location_api.models import Business
from location_api.queries import visible_lsn

#: A business and what the filters read of it (:func:`location_api.filters.facets_of`), from
#: ``businesses b LEFT JOIN business_details d``: what the catalog is built from.
LISTING_COLUMNS = (
    "b.id, b.name, b.latitude, b.longitude, b.category, b.address, d.time_zone, d.hours, d.price_level, d.rating,"
    " d.more_categories"
)
_LISTING_FROM = "businesses b LEFT JOIN business_details d ON d.business_id = b.id"


@dataclass(frozen=True, slots=True)
class Change:
    """One row of the change log, with the business's state in the same snapshot.

    Attributes:
        seq: the log row's id.
        xid: the writing transaction's id.
        business_id: the business, or ``None`` for "the whole table changed" (TRUNCATE).
        business: its current state, or ``None`` when it no longer exists.
        facets: what the filters read of it now (``None`` with ``business``).
    """

    seq: int
    xid: int
    business_id: int | None
    business: Business | None
    facets: Facets | None = None


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """Where a read snapshot stands.

    Attributes:
        lsn_before: read just before the snapshot was taken: every commit up to this WAL
            position is visible in it.
        lsn_after: read just after: nothing beyond this position is visible in it.
        horizon: the snapshot's xmin: every transaction with a lower id has finished and
            is visible (or aborted).
    """

    lsn_before: int
    lsn_after: int
    horizon: int


async def snapshot_position(conn: asyncpg.Connection, before: int) -> SnapshotInfo:
    """The first statement of a repeatable-read transaction: takes the snapshot, reads its xmin
    and, after it, the WAL position (``before`` was read on the same connection just before)."""
    row = await conn.fetchrow(
        f"SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint, ({VISIBLE_LSN_SQL.removeprefix('SELECT ')})"
    )
    return SnapshotInfo(before, lsn_from_text(row[1]), row[0])


async def load_all(conn: asyncpg.Connection) -> tuple[SnapshotInfo, list[asyncpg.Record], list[int]]:
    """Every business, and the transactions at or above the snapshot's horizon it shows, in one snapshot.

    Returns:
        The snapshot's position; the business rows (id, name, latitude, longitude,
        category, address, then what filters read: :data:`LISTING_COLUMNS`), in geohash
        order; and the ids of the transactions whose changes the snapshot already reflects
        but a later poll would read again (:func:`changes_seen`).
    """
    before = await visible_lsn(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        info = await snapshot_position(conn, before)
        rows = await all_businesses(conn)
        seen = await changes_seen(conn, info.horizon)
    return info, rows, seen


async def all_businesses(conn: asyncpg.Connection, *, timeout: float | None = None) -> list[asyncpg.Record]:
    """Every business row (:data:`LISTING_COLUMNS`), in geohash order.

    Args:
        conn: a connection to a read server.
        timeout: seconds the read may take (default: the connection's command timeout).
    """
    # In geohash order, the order the indexes file points in: sorting a million points
    # that arrive in order is a single pass, which the event loop's thread barely notices.
    rows: list[asyncpg.Record] = await conn.fetch(
        f'SELECT {LISTING_COLUMNS} FROM {_LISTING_FROM} ORDER BY b.geohash COLLATE "C"', timeout=timeout
    )
    return rows


async def changes_seen(conn: asyncpg.Connection, horizon: int) -> list[int]:
    """The transactions at or above ``horizon`` with rows in the change log: in a snapshot whose
    xmin is ``horizon``, the ones whose changes it already reflects and a later poll would read
    again. A transaction's rows show all at once, so its id stands for all of them."""
    seen = await conn.fetch("SELECT DISTINCT xid FROM business_changes WHERE xid >= $1", horizon)
    return [r[0] for r in seen]


async def poll_changes(
    conn: asyncpg.Connection, horizon: int, seen: Collection[int], limit: int
) -> tuple[SnapshotInfo, list[Change], bool]:
    """Change-log rows of transactions at or above ``horizon`` but not in ``seen``, with each
    business's state.

    The transactions a previous snapshot showed are left out by id: a transaction left open
    holds every later xmin back, and the rows above it (a bulk load's thousands) must not be
    read, and counted towards a rebuild, at every poll.

    Args:
        conn: a connection to a read server.
        horizon: the previous poll's snapshot xmin.
        seen: the transactions at or above ``horizon`` whose changes are applied already.
        limit: fetch at most this many rows.

    Returns:
        The snapshot's position, the changes in ``seq`` order, and whether there were more
        than ``limit`` (then the caller rebuilds from scratch instead).
    """
    before = await visible_lsn(conn)
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        info = await snapshot_position(conn, before)
        # Planned for this horizon, not taken from the plan cache: a generic plan cannot see
        # that few rows are at or above the horizon, and for ``ORDER BY seq LIMIT`` it walks
        # the whole change log in seq order (a bulk load leaves a row per business, an hour
        # of writes is kept), on every poll, every 0.25 s, in every instance. It costs a
        # round trip; a custom plan reads the rows above the horizon from the xid index.
        await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
        rows = await conn.fetch(
            f"""SELECT c.seq, c.xid, c.business_id, {LISTING_COLUMNS}
                  FROM business_changes c LEFT JOIN businesses b ON b.id = c.business_id
                  LEFT JOIN business_details d ON d.business_id = b.id
                 WHERE c.xid >= $1 AND c.xid <> ALL($2::bigint[]) ORDER BY c.seq LIMIT $3""",
            horizon,
            list(seen),
            limit + 1,
        )
    changes = [
        Change(r[0], r[1], r[2], None)
        if r[3] is None
        else Change(r[0], r[1], r[2], Business(*r[3:9]), facets_of(r[4], r[5], r[6], r[7], *r[9:14]))
        for r in rows[:limit]
    ]
    return info, changes, len(rows) > limit
