"""The location history in PostgreSQL: appended in batches, exported, erased, purged by age."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from geo_common.friends_db import Executor


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One received location, degrees; times are timezone-aware UTC."""

    user_id: int
    latitude: float
    longitude: float
    recorded_at: dt.datetime
    sent_at: dt.datetime | None = None


async def insert_history(conn: asyncpg.Connection, rows: Sequence[HistoryRow]) -> int:
    """Append history rows with one binary COPY.

    Args:
        conn: an asyncpg connection to the primary (COPY needs a connection, not a pool).
        rows: the rows.

    Returns:
        How many rows were written.
    """
    if not rows:
        return 0
    await conn.copy_records_to_table(
        "location_history",
        records=[(r.user_id, r.latitude, r.longitude, r.recorded_at, r.sent_at) for r in rows],
        columns=("user_id", "latitude", "longitude", "recorded_at", "sent_at"),
    )
    return len(rows)


async def purge_history(conn: Executor, *, older_than: dt.datetime, batch: int = 50_000) -> int:
    """Delete history recorded before a moment, in batches that keep locks short.

    Args:
        conn: a connection to the primary.
        older_than: rows with ``recorded_at`` before this go.
        batch: rows per DELETE statement.

    Returns:
        How many rows were deleted.
    """
    total = 0
    while True:
        status = await conn.execute(
            """
            DELETE FROM location_history WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM location_history WHERE recorded_at < $1 LIMIT $2))
            """,
            older_than,
            batch,
        )
        deleted = int(status.split()[-1])
        total += deleted
        if deleted < batch:
            return total


async def delete_history(conn: Executor, user_id: int) -> int:
    """Erase every history row of a user; returns how many were deleted."""
    status = await conn.execute("DELETE FROM location_history WHERE user_id = $1", user_id)
    return int(status.split()[-1])


async def history_of(
    conn: Executor, user_id: int, *, after: dt.datetime | None = None, skip: int = 0, limit: int | None = None
) -> list[HistoryRow]:
    """A user's history in time order, a page at a time.

    Args:
        conn: a connection or pool.
        user_id: whose history.
        after: the time of the last row of the previous page (None: from the start).
        skip: how many rows recorded exactly at ``after`` the previous pages held (rows
            received in the same microsecond are ordered by their values, so they come in
            the same order every time).
        limit: the most rows (None: all).
    """
    rows = await conn.fetch(
        """
        SELECT user_id, latitude, longitude, recorded_at, sent_at FROM location_history
        WHERE user_id = $1 AND ($2::timestamptz IS NULL OR recorded_at >= $2)
        ORDER BY recorded_at, latitude, longitude, sent_at NULLS FIRST
        OFFSET $3 LIMIT $4
        """,
        user_id,
        after,
        skip if after is not None else 0,
        limit,
    )
    return [HistoryRow(r["user_id"], r["latitude"], r["longitude"], r["recorded_at"], r["sent_at"]) for r in rows]


def next_skip(rows: list[HistoryRow], after: dt.datetime | None, skip: int) -> int:
    """The ``skip`` of the page after ``rows`` (a page read with ``after`` and ``skip``)."""
    last = rows[-1].recorded_at
    same = sum(1 for r in rows if r.recorded_at == last)
    return same + skip if last == after else same
