"""Users and the friend graph in PostgreSQL (shared by both services).

Every function takes an asyncpg connection (or pool), so the caller decides where it runs:
writes on the primary, and every read that decides what a user may see on the primary too.
Friendships are mutual and stored in both directions; each direction's row also says what
its user shares with that friend (:data:`SHARES`). User rows are created on first use,
because user ids come from tokens issued by an identity provider this database does not own.
Requests and blocks are in :mod:`geo_common.consent_db`, the history in
:mod:`geo_common.history_db`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TypeAlias

import asyncpg

#: Precision a user shares their location with.
PRECISIONS = ("exact", "coarse")
#: What a user shares with one friend: ``exact`` follows the user's global precision,
#: ``coarse`` coarsens for this friend, ``hidden`` shows them nothing.
SHARES = ("exact", "coarse", "hidden")
#: The longest display name, characters.
MAX_DISPLAY_NAME = 64


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
        display_name: the name friends see, if the user set one.
        private_history: keep the exact history even while sharing coarsely or not at all.
        discover: seen by, and seeing, opted-in strangers nearby (coarse positions only).
        public_handle: the name strangers see (None: no name, no id).
    """

    id: int
    home_region: str | None
    sharing_enabled: bool = True
    sharing_precision: str = "exact"
    display_name: str | None = None
    private_history: bool = False
    discover: bool = False
    public_handle: str | None = None


@dataclass(frozen=True, slots=True)
class Friend:
    """One friend of a user, as the user sees them.

    Attributes:
        user_id: the friend.
        home_region: where the friend's channels live.
        since: when the friendship began.
        display_name: the friend's display name, if set.
        shares: what the user shares with this friend (one of :data:`SHARES`). What the
            friend shares with the user is not here: nobody learns that a friend hides.
    """

    user_id: int
    home_region: str | None
    since: dt.datetime
    display_name: str | None = None
    shares: str = "exact"


@dataclass(frozen=True, slots=True)
class Grant:
    """What one friend shares with a viewer: the friend, their region, and ``level``
    (one of :data:`SHARES`; the friend's global switch and precision apply on top)."""

    friend_id: int
    home_region: str | None
    level: str


_USER_COLUMNS = (
    "id, home_region, sharing_enabled, sharing_precision, display_name, private_history, discover, public_handle"
)


def _user(r: asyncpg.Record) -> User:
    return User(
        r["id"],
        r["home_region"],
        r["sharing_enabled"],
        r["sharing_precision"],
        r["display_name"],
        r["private_history"],
        r["discover"],
        r["public_handle"],
    )


async def ensure_users(conn: Executor, *user_ids: int) -> None:
    """Create the rows of users seen for the first time (others are left alone)."""
    await conn.execute("INSERT INTO users (id) SELECT unnest($1::bigint[]) ON CONFLICT (id) DO NOTHING", list(user_ids))


async def get_user(conn: Executor, user_id: int) -> User | None:
    """A user's row, or None when they were never seen."""
    row = await conn.fetchrow(f"SELECT {_USER_COLUMNS} FROM users WHERE id = $1", user_id)
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


async def set_sharing(
    conn: Executor, user_id: int, *, enabled: bool, precision: str, private_history: bool | None = None
) -> None:
    """Store a user's sharing preference (creating the user if needed).

    Args:
        conn: a connection to the primary.
        user_id: the user.
        enabled: whether friends see them at all.
        precision: ``exact`` or ``coarse``.
        private_history: keep an exact private history whatever is shared (None: unchanged).

    Raises:
        ValueError: ``precision`` is not ``exact`` or ``coarse``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    await conn.execute(
        """
        INSERT INTO users (id, sharing_enabled, sharing_precision, private_history)
        VALUES ($1, $2, $3, coalesce($4, false))
        ON CONFLICT (id) DO UPDATE SET sharing_enabled = $2, sharing_precision = $3,
            private_history = coalesce($4, users.private_history)
        """,
        user_id,
        enabled,
        precision,
        private_history,
    )


async def set_display_name(conn: Executor, user_id: int, display_name: str | None) -> None:
    """Set (or with None clear) a user's display name, creating the user if needed.

    Raises:
        ValueError: the name is empty or longer than :data:`MAX_DISPLAY_NAME` characters.
    """
    if display_name is not None and not 1 <= len(display_name) <= MAX_DISPLAY_NAME:
        raise ValueError(f"a display name has 1 to {MAX_DISPLAY_NAME} characters")
    await conn.execute(
        """
        INSERT INTO users (id, display_name) VALUES ($1, $2)
        ON CONFLICT (id) DO UPDATE SET display_name = $2
        """,
        user_id,
        display_name,
    )


async def set_discovery(conn: Executor, user_id: int, *, enabled: bool, handle: str | None) -> None:
    """Store whether a user is seen by nearby strangers, and the handle they see (creating the
    user if needed). The handle's form is checked by the caller and by the table."""
    await conn.execute(
        """
        INSERT INTO users (id, discover, public_handle) VALUES ($1, $2, $3)
        ON CONFLICT (id) DO UPDATE SET discover = $2, public_handle = $3
        """,
        user_id,
        enabled,
        handle,
    )


async def never_strangers(conn: Executor, user_id: int) -> set[int]:
    """The users never shown to ``user_id`` as strangers, nor ``user_id`` to them: their friends
    (a friend is seen as a friend or not at all) and whoever either of them blocked."""
    rows = await conn.fetch(
        """
        SELECT friend_id AS other FROM friendships WHERE user_id = $1
        UNION SELECT blocked_id FROM blocks WHERE user_id = $1
        UNION SELECT user_id FROM blocks WHERE blocked_id = $1
        """,
        user_id,
    )
    return {r["other"] for r in rows}


async def clear_home_region(conn: Executor, user_id: int) -> str | None:
    """Forget a user's home region (erasure); returns the one they had."""
    return await conn.fetchval(  # type: ignore[no-any-return]
        """
        UPDATE users u SET home_region = NULL FROM (SELECT home_region FROM users WHERE id = $1 FOR UPDATE) old
        WHERE u.id = $1 RETURNING old.home_region
        """,
        user_id,
    )


async def add_friendship(conn: Executor, user_id: int, friend_id: int) -> bool:
    """Make two users friends, in both directions (creating either user if needed).

    Any pending request between them is answered by it (deleted). Consent is the caller's
    business: :func:`geo_common.consent_db.request_friendship` calls this on acceptance, an
    admin's request directly.

    Args:
        conn: a connection to the primary (in a transaction when other statements go with it).
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
        WITH answered AS (
            DELETE FROM friend_requests WHERE (from_id, to_id) IN (($1, $2), ($2, $1))
        )
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


async def set_friend_sharing(conn: Executor, user_id: int, friend_id: int, shares: str) -> bool:
    """Set what ``user_id`` shares with ``friend_id``; False when they are not friends.

    Raises:
        ValueError: ``shares`` is not one of :data:`SHARES`.
    """
    if shares not in SHARES:
        raise ValueError(f"sharing with a friend must be one of {', '.join(SHARES)}, got {shares!r}")
    status = await conn.execute(
        "UPDATE friendships SET shares = $3 WHERE user_id = $1 AND friend_id = $2", user_id, friend_id, shares
    )
    return bool(status != "UPDATE 0")


async def count_friends(conn: Executor, user_id: int) -> int:
    """How many friends a user has."""
    return int(await conn.fetchval("SELECT count(*) FROM friendships WHERE user_id = $1", user_id))


async def list_friends(conn: Executor, user_id: int, *, after: int = 0, limit: int | None = None) -> list[Friend]:
    """A user's friends, by friend id: those above ``after``, at most ``limit`` (None: all)."""
    rows = await conn.fetch(
        """
        SELECT f.friend_id, u.home_region, f.created_at, u.display_name, f.shares
        FROM friendships f JOIN users u ON u.id = f.friend_id
        WHERE f.user_id = $1 AND f.friend_id > $2
        ORDER BY f.friend_id
        LIMIT $3
        """,
        user_id,
        after,
        limit,
    )
    return [Friend(r["friend_id"], r["home_region"], r["created_at"], r["display_name"], r["shares"]) for r in rows]


async def grants_to(conn: Executor, viewer_ids: list[int]) -> dict[int, list[Grant]]:
    """For each viewer, what each of their friends shares with them (read it on the primary).

    Returns:
        viewer id -> grants, by friend id; a viewer without friends maps to an empty list.
    """
    rows = await conn.fetch(
        """
        SELECT f.friend_id AS viewer, f.user_id AS friend, f.shares, u.home_region
        FROM friendships f JOIN users u ON u.id = f.user_id
        WHERE f.friend_id = ANY($1::bigint[])
        ORDER BY f.friend_id, f.user_id
        """,
        viewer_ids,
    )
    grants: dict[int, list[Grant]] = {v: [] for v in viewer_ids}
    for r in rows:
        grants[r["viewer"]].append(Grant(r["friend"], r["home_region"], r["shares"]))
    return grants


async def grant_to(conn: Executor, viewer_id: int, friend_id: int) -> Grant | None:
    """What ``friend_id`` shares with ``viewer_id`` now, or None when they are not friends."""
    row = await conn.fetchrow(
        """
        SELECT f.shares, u.home_region FROM friendships f JOIN users u ON u.id = f.user_id
        WHERE f.user_id = $1 AND f.friend_id = $2
        """,
        friend_id,
        viewer_id,
    )
    return None if row is None else Grant(friend_id, row["home_region"], row["shares"])


async def user_and_grants(conn: Executor, user_id: int) -> tuple[User | None, list[Grant]]:
    """A user's row and what each of their friends shares with them (read it on the primary)."""
    user = await get_user(conn, user_id)
    grants = await grants_to(conn, [user_id])
    return user, grants[user_id]
