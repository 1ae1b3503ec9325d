"""Users, the friend graph and the location history in PostgreSQL (shared by both services).

Every function takes an asyncpg connection (or pool), so the caller decides where it runs:
writes on the primary, reads on a replica. Friendships are mutual and stored in both
directions; user rows are created on first use, because user ids come from tokens issued by
an identity provider that this database does not own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg

#: Precision a user shares their location with.
PRECISIONS = ("exact", "coarse")


#: A connection or a pool (asyncpg); COPY needs a connection.
Executor: TypeAlias = "asyncpg.Connection | asyncpg.Pool"


class FriendshipError(ValueError):
    """A friendship request that cannot be honoured (a user befriending themself)."""


@dataclass(frozen=True, slots=True)
class User:
    """A user's row.

    Attributes:
        id: the user id (the token's subject).
        home_region: where their location and channels live; None until they share one.
        sharing_enabled: whether friends may see them.
        sharing_precision: ``exact`` or ``coarse`` (the centre of a geohash-6 cell).
    """

    id: int
    home_region: str | None
    sharing_enabled: bool = True
    sharing_precision: str = "exact"


@dataclass(frozen=True, slots=True)
class Friend:
    """One friend of a user: who, where their channels live, since when."""

    user_id: int
    home_region: str | None
    since: dt.datetime


@dataclass(frozen=True, slots=True)
class HistoryRow:
    """One received location, degrees; times are timezone-aware UTC."""

    user_id: int
    latitude: float
    longitude: float
    recorded_at: dt.datetime
    sent_at: dt.datetime | None = None


def _user(r: asyncpg.Record) -> User:
    return User(r["id"], r["home_region"], r["sharing_enabled"], r["sharing_precision"])


async def ensure_users(conn: Executor, *user_ids: int) -> None:
    """Create the rows of users seen for the first time (others are left alone)."""
    await conn.execute("INSERT INTO users (id) SELECT unnest($1::bigint[]) ON CONFLICT (id) DO NOTHING", list(user_ids))


async def get_user(conn: Executor, user_id: int) -> User | None:
    """A user's row, or None when they were never seen."""
    row = await conn.fetchrow(
        "SELECT id, home_region, sharing_enabled, sharing_precision FROM users WHERE id = $1", user_id
    )
    return None if row is None else _user(row)


async def claim_home_region(conn: Executor, user_id: int, region: str) -> tuple[str, bool]:
    """Give a user a home region unless they have one (creating the user if needed).

    Args:
        conn: a connection to the primary.
        user_id: the user.
        region: the region of the location they just shared.

    Returns:
        (their home region, True when it was set by this call).
    """
    row = await conn.fetchrow(
        """
        INSERT INTO users (id, home_region) VALUES ($1, $2)
        ON CONFLICT (id) DO UPDATE SET home_region = $2 WHERE users.home_region IS NULL
        RETURNING home_region
        """,
        user_id,
        region,
    )
    if row is not None:
        return region, True
    home = await conn.fetchval("SELECT home_region FROM users WHERE id = $1", user_id)
    return str(home), False


async def set_sharing(conn: Executor, user_id: int, *, enabled: bool, precision: str) -> None:
    """Store a user's sharing preference (creating the user if needed).

    Raises:
        ValueError: ``precision`` is not ``exact`` or ``coarse``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    await conn.execute(
        """
        INSERT INTO users (id, sharing_enabled, sharing_precision) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO UPDATE SET sharing_enabled = $2, sharing_precision = $3
        """,
        user_id,
        enabled,
        precision,
    )


async def add_friendship(conn: Executor, user_id: int, friend_id: int) -> bool:
    """Make two users friends, in both directions (creating either user if needed).

    Args:
        conn: a connection to the primary.
        user_id: one user.
        friend_id: the other.

    Returns:
        True when the friendship is new, False when it already existed.

    Raises:
        FriendshipError: both ids are the same user.
    """
    if user_id == friend_id:
        raise FriendshipError("a user cannot befriend themself")
    await ensure_users(conn, user_id, friend_id)
    status = await conn.execute(
        """
        INSERT INTO friendships (user_id, friend_id) VALUES ($1, $2), ($2, $1)
        ON CONFLICT (user_id, friend_id) DO NOTHING
        """,
        user_id,
        friend_id,
    )
    return bool(status != "INSERT 0 0")


async def remove_friendship(conn: Executor, user_id: int, friend_id: int) -> bool:
    """End a friendship in both directions.

    Returns:
        True when there was one to end.
    """
    status = await conn.execute(
        "DELETE FROM friendships WHERE (user_id, friend_id) IN (($1, $2), ($2, $1))", user_id, friend_id
    )
    return bool(status != "DELETE 0")


async def list_friends(conn: Executor, user_id: int) -> list[Friend]:
    """A user's friends with their home regions, oldest friendship first."""
    rows = await conn.fetch(
        """
        SELECT f.friend_id, u.home_region, f.created_at
        FROM friendships f JOIN users u ON u.id = f.friend_id
        WHERE f.user_id = $1
        ORDER BY f.created_at, f.friend_id
        """,
        user_id,
    )
    return [Friend(r["friend_id"], r["home_region"], r["created_at"]) for r in rows]


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


async def history_of(conn: Executor, user_id: int) -> list[HistoryRow]:
    """A user's history in time order (tests and exports)."""
    rows = await conn.fetch(
        "SELECT user_id, latitude, longitude, recorded_at, sent_at FROM location_history "
        "WHERE user_id = $1 ORDER BY recorded_at",
        user_id,
    )
    return [HistoryRow(r["user_id"], r["latitude"], r["longitude"], r["recorded_at"], r["sent_at"]) for r in rows]
