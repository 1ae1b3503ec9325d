"""Friendship by consent in PostgreSQL: requests, acceptance, refusal and blocks.

The state of a pair of users, as either of them sees it (docs/friends-protocol.md draws it):

* nothing; ``A`` asks ``B`` -> *requested* (a row ``A -> B`` in ``friend_requests``);
* *requested*, and ``B`` asks ``A`` -> *friends* (the request is answered, both rows of
  ``friendships`` exist);
* any state, and either deletes the relation -> nothing (a withdrawn or declined request,
  or an ended friendship);
* any state, and ``A`` blocks ``B`` -> *blocked* (no friendship, no request either way;
  ``B``'s requests to ``A`` are answered like any other and go nowhere).

Every transition runs in one transaction that first locks both users' rows, in id order, so
two users asking each other at the same moment become friends instead of both waiting, and
limits cannot be overrun by concurrent requests.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass

import asyncpg

from geo_common.friends_db import Executor, FriendshipError, add_friendship, count_friends, ensure_users


class Outcome(enum.Enum):
    """What a friend request did."""

    REQUESTED = "requested"
    """A new request is stored: the other user has not asked back (tell them)."""
    ALREADY_REQUESTED = "already_requested"
    """The asker's request was already waiting: nothing changed."""
    IGNORED = "ignored"
    """The other user blocked the asker: answered like a request, stored nowhere, told nobody."""
    ACCEPTED = "accepted"
    """The other user had asked first: they are friends now."""
    ALREADY_FRIENDS = "already_friends"
    """Nothing to do."""
    BLOCKED_BY_ASKER = "blocked_by_asker"
    """The asker blocked the other user: unblock first."""
    TOO_MANY_FRIENDS = "too_many_friends"
    """Accepting would take one of them beyond the friend limit."""
    TOO_MANY_PENDING = "too_many_pending"
    """The asker has as many requests waiting as allowed."""


class Removed(enum.Enum):
    """What deleting a relation ended."""

    FRIENDSHIP = "friendship"
    REQUEST_WITHDRAWN = "request_withdrawn"
    REQUEST_DECLINED = "request_declined"
    NOTHING = "nothing"


@dataclass(frozen=True, slots=True)
class Request:
    """A pending request, seen by one of its two users: the other user, when, and the
    other's display name (shown only on incoming requests: the asker chose to show it)."""

    user_id: int
    since: dt.datetime
    display_name: str | None = None


@dataclass(frozen=True, slots=True)
class Limits:
    """The most friends a user may have, and the most requests they may have waiting."""

    max_friends: int
    max_pending: int


async def _lock_pair(conn: asyncpg.Connection, a: int, b: int) -> None:
    if a == b:
        raise FriendshipError("a user cannot befriend themself")
    await ensure_users(conn, a, b)
    await conn.execute("SELECT 1 FROM users WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE", [a, b])


async def _blocked(conn: asyncpg.Connection, user_id: int, other: int) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM blocks WHERE user_id = $1 AND blocked_id = $2)", user_id, other
        )
    )


async def _are_friends(conn: asyncpg.Connection, a: int, b: int) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM friendships WHERE user_id = $1 AND friend_id = $2)", a, b)
    )


async def request_friendship(conn: asyncpg.Connection, asker: int, other: int, limits: Limits) -> Outcome:
    """``asker`` asks ``other`` to be friends (accepting ``other``'s request if there is one).

    Args:
        conn: a connection to the primary (not in a transaction: this opens one).
        asker: the user asking.
        other: the user asked.
        limits: the friend and pending-request limits.

    Returns:
        What the request did. :attr:`Outcome.IGNORED` must be answered exactly like
        :attr:`Outcome.REQUESTED` (the asker never learns that they are blocked), but only
        :attr:`Outcome.REQUESTED` stored a request to announce.

    Raises:
        FriendshipError: both are the same user.
    """
    async with conn.transaction():
        await _lock_pair(conn, asker, other)
        if await _are_friends(conn, asker, other):
            return Outcome.ALREADY_FRIENDS
        if await _blocked(conn, asker, other):
            return Outcome.BLOCKED_BY_ASKER
        if await _blocked(conn, other, asker):
            return Outcome.IGNORED
        asked_back = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE from_id = $1 AND to_id = $2)", other, asker
        )
        if asked_back:
            if max(await count_friends(conn, asker), await count_friends(conn, other)) >= limits.max_friends:
                return Outcome.TOO_MANY_FRIENDS
            await add_friendship(conn, asker, other)
            return Outcome.ACCEPTED
        exists = await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE from_id = $1 AND to_id = $2)", asker, other
        )
        if exists:
            return Outcome.ALREADY_REQUESTED
        if await count_friends(conn, asker) >= limits.max_friends:
            return Outcome.TOO_MANY_FRIENDS
        pending = await conn.fetchval("SELECT count(*) FROM friend_requests WHERE from_id = $1", asker)
        if pending >= limits.max_pending:
            return Outcome.TOO_MANY_PENDING
        await conn.execute("INSERT INTO friend_requests (from_id, to_id) VALUES ($1, $2)", asker, other)
        return Outcome.REQUESTED


async def has_asked(conn: Executor, asker: int, other: int) -> bool:
    """Whether ``asker`` has a request to ``other`` waiting (``other`` asking back accepts it)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM friend_requests WHERE from_id = $1 AND to_id = $2)", asker, other
        )
    )


async def befriend_directly(conn: asyncpg.Connection, a: int, b: int) -> bool | None:
    """An operator makes two users friends without asking (imports, support, tests).

    Returns:
        True when new, False when they already were friends, None when either blocked the
        other (nothing is done: a block is the user's decision).
    """
    async with conn.transaction():
        await _lock_pair(conn, a, b)
        if await _blocked(conn, a, b) or await _blocked(conn, b, a):
            return None
        return await add_friendship(conn, a, b)


async def _end(conn: asyncpg.Connection, user_id: int, other: int) -> Removed:
    status = await conn.execute(
        "DELETE FROM friendships WHERE (user_id, friend_id) IN (($1, $2), ($2, $1))", user_id, other
    )
    if status != "DELETE 0":
        return Removed.FRIENDSHIP
    gone = await conn.fetch(
        "DELETE FROM friend_requests WHERE (from_id, to_id) IN (($1, $2), ($2, $1)) RETURNING from_id",
        user_id,
        other,
    )
    if not gone:
        return Removed.NOTHING
    return Removed.REQUEST_WITHDRAWN if gone[0]["from_id"] == user_id else Removed.REQUEST_DECLINED


async def remove_relation(conn: asyncpg.Connection, user_id: int, other: int) -> Removed:
    """End whatever ``user_id`` has with ``other``: a friendship, or a request either way."""
    async with conn.transaction():
        return await _end(conn, user_id, other)


async def block(conn: asyncpg.Connection, user_id: int, other: int) -> Removed:
    """``user_id`` blocks ``other``: any friendship or request between them ends at once.

    Raises:
        FriendshipError: both are the same user.
    """
    async with conn.transaction():
        await _lock_pair(conn, user_id, other)
        await conn.execute(
            "INSERT INTO blocks (user_id, blocked_id) VALUES ($1, $2) ON CONFLICT DO NOTHING", user_id, other
        )
        return await _end(conn, user_id, other)


async def unblock(conn: asyncpg.Connection, user_id: int, other: int) -> bool:
    """Lift a block; True when there was one."""
    status = await conn.execute("DELETE FROM blocks WHERE user_id = $1 AND blocked_id = $2", user_id, other)
    return bool(status != "DELETE 0")


async def requests_of(
    conn: asyncpg.Connection, user_id: int, *, incoming: bool, after: int = 0, limit: int | None = None
) -> list[Request]:
    """A user's pending requests, by the other user's id above ``after``: those asking them
    (``incoming``) or those they asked."""
    if incoming:
        query = """
            SELECT r.from_id AS other, r.created_at, u.display_name
            FROM friend_requests r JOIN users u ON u.id = r.from_id
            WHERE r.to_id = $1 AND r.from_id > $2 ORDER BY r.from_id LIMIT $3
        """
    else:
        query = """
            SELECT to_id AS other, created_at, NULL::text AS display_name
            FROM friend_requests WHERE from_id = $1 AND to_id > $2 ORDER BY to_id LIMIT $3
        """
    rows = await conn.fetch(query, user_id, after, limit)
    return [Request(r["other"], r["created_at"], r["display_name"]) for r in rows]


async def blocks_of(
    conn: asyncpg.Connection, user_id: int, *, after: int = 0, limit: int | None = None
) -> list[Request]:
    """The users ``user_id`` blocked, by id above ``after`` (``since``: when; no names)."""
    rows = await conn.fetch(
        "SELECT blocked_id, created_at FROM blocks WHERE user_id = $1 AND blocked_id > $2 ORDER BY blocked_id LIMIT $3",
        user_id,
        after,
        limit,
    )
    return [Request(r["blocked_id"], r["created_at"]) for r in rows]


@dataclass(frozen=True, slots=True)
class Parties:
    """What announcing a change between users needs of them (users never seen map to None).

    Attributes:
        homes: user id -> home region (where their channels live).
        names: user id -> display name.
    """

    homes: dict[int, str | None]
    names: dict[int, str | None]


async def parties(conn: Executor, *user_ids: int) -> Parties:
    """The home regions and display names of users, read where ``conn`` points (the primary,
    in the transaction of the change, so the announcement matches what was stored)."""
    rows = await conn.fetch(
        "SELECT id, home_region, display_name FROM users WHERE id = ANY($1::bigint[])", list(user_ids)
    )
    homes: dict[int, str | None] = dict.fromkeys(user_ids)
    names: dict[int, str | None] = dict.fromkeys(user_ids)
    for r in rows:
        homes[r["id"]] = r["home_region"]
        names[r["id"]] = r["display_name"]
    return Parties(homes, names)
