"""Friendship by consent over HTTP (docs/friends-protocol.md, "Friendships over HTTP").

* ``POST /v1/users/{id}/friends/{friend_id}``: ask to be friends, or accept the other's
  request by asking back; an admin makes two users friends directly;
* ``DELETE /v1/users/{id}/friends/{friend_id}``: withdraw, decline, or end a friendship;
* ``GET /v1/users/{id}/friends?state=friends|incoming|outgoing``: a user's friends, the
  requests waiting for them, and theirs, a page at a time.

Only the user themself or an admin may call them (:func:`location_api.auth.acting_for`). A
change is written to the primary (:mod:`geo_common.consent_db`), then announced through the
users' home regions' pub/sub (:mod:`location_api.friends.presence`), so both users' live
connections, on whichever ``geo-friends`` instance holds them, learn it within a second.
Writes return an ``X-Consistency-Token``; a ``GET`` (served by read instances, from a
replica) that sends it back reads its own write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from aiohttp import web

from geo_common import consent_db, friends_db
from geo_common.announcements import Publication
from geo_common.consent_db import Limits, Outcome, Parties
from geo_common.tokens import Role
from location_api import queries
from location_api.errors import Conflict, InvalidRequest
from geo_common.problems import FieldError
from location_api.keys import cursor_secret_key, db_key, presence_key, settings_key
from location_api.friends.rate_limit import limit_friend_requests
from location_api.friends.user_paging import (
    DEFAULT_LIST_LIMIT,
    LIST_STATES,
    MAX_LIST_LIMIT,
    Listing,
    decode_position,
    encode_position,
    parse_page,
)
from location_api.auth import acting_for
from location_api.friends.user_requests import path_user_id, written, consistency_of
from location_api.views import json_response


class Blocked(Conflict):
    """The asker blocked the other user, or (for an admin) either blocked the other (409)."""

    slug = "blocked"
    title = "One of the users blocked the other"


class FriendLimit(Conflict):
    """Accepting would take a user beyond ``GEO_MAX_FRIENDS`` friends (409)."""

    slug = "friend-limit"
    title = "Too many friends"


class RequestLimit(Conflict):
    """The asker has ``GEO_MAX_PENDING_REQUESTS`` requests waiting already (409)."""

    slug = "request-limit"
    title = "Too many requests waiting"


def _pair(request: web.Request, other: str) -> tuple[bool, int, int]:
    """(whether the caller is an admin, the path's ``id``, the path's ``other`` id)."""
    user_id = path_user_id(request, "id")
    other_id = path_user_id(request, other)
    return acting_for(request, user_id).role is Role.ADMIN, user_id, other_id


async def add_friend(request: web.Request) -> web.Response:
    """``POST /v1/users/{id}/friends/{friend_id}``.

    A user's request is answered 202 ``requested`` (also, identically, when ``friend_id``
    blocked them: it goes nowhere), 201 ``friends`` when it accepts ``friend_id``'s request,
    200 ``friends`` when they already were; an admin's makes them friends at once (201, or
    200). Refused with 409 ``blocked``, ``friend-limit`` or ``request-limit``, and with 429
    ``too-many-requests`` beyond ``GEO_MAX_FRIEND_REQUESTS_PER_MIN`` of a user's requests a
    minute (:mod:`location_api.friends.rate_limit`). Accepting a request asks nothing of anyone and
    is not counted.
    """
    admin, user_id, friend_id = _pair(request, "friend_id")
    if user_id == friend_id:
        raise InvalidRequest.field("friend_id", "a user cannot befriend themself")
    settings = request.app[settings_key]
    limits = Limits(settings.max_friends, settings.max_pending_requests)
    db = request.app[db_key]
    # Counted before anything is stored, so a refused request changes nothing.
    if not admin and not await db.write(lambda conn: consent_db.has_asked(conn, friend_id, user_id)):
        await limit_friend_requests(request.app[presence_key], user_id, settings.max_friend_requests_per_min)

    async def run(conn: asyncpg.Connection) -> tuple[Outcome, Parties, int]:
        async with conn.transaction():
            if admin:
                made = await consent_db.befriend_directly(conn, user_id, friend_id)
                if made is None:  # either blocked the other: a block is the user's decision
                    outcome = Outcome.BLOCKED_BY_ASKER
                else:
                    outcome = Outcome.ACCEPTED if made else Outcome.ALREADY_FRIENDS
            else:
                outcome = await consent_db.request_friendship(conn, user_id, friend_id, limits)
            known = await consent_db.parties(conn, user_id, friend_id)
        return outcome, known, await queries.visible_lsn(conn)

    outcome, known, lsn = await db.write(run)
    if outcome is Outcome.BLOCKED_BY_ASKER:
        who = "one of the users blocked the other" if admin else f"user {user_id} blocked user {friend_id}"
        raise Blocked(f"{who}; unblock first", [FieldError("friend_id", "is blocked")])
    if outcome is Outcome.TOO_MANY_FRIENDS:
        raise FriendLimit(
            f"a user would have more than {limits.max_friends} friends",
            [FieldError("friend_id", f"one of the users has {limits.max_friends} friends")],
        )
    if outcome is Outcome.TOO_MANY_PENDING:
        raise RequestLimit(
            f"user {user_id} has {limits.max_pending} requests waiting; withdraw one first",
            [FieldError("id", f"has {limits.max_pending} requests waiting")],
        )
    presence = request.app[presence_key]
    announcer = presence.announcer
    publications: list[Publication] = []
    if outcome in (Outcome.ACCEPTED, Outcome.ALREADY_FRIENDS):
        # Also when they already were: a retry after a failed announcement must reach the
        # connections (they re-read the friendship from the primary, so a repeat grants nothing).
        publications = announcer.friendship_started(user_id, friend_id, known.homes, known.names)
        state, status = "friends", 201 if outcome is Outcome.ACCEPTED else 200
    else:
        # Only a newly stored request is announced: a repeated one changes nothing, and one
        # dropped because friend_id blocked the asker must look exactly like the others.
        if outcome is Outcome.REQUESTED:
            publications = announcer.request_sent(user_id, friend_id, known.homes, known.names[user_id])
        state, status = "requested", 202
    stored = "the friendship is stored" if state == "friends" else "the request is stored"
    await presence.publish(publications, stored=stored)
    return written(
        request,
        {"user_id": user_id, "friend_id": friend_id, "state": state},
        lsn,
        status=status,
        headers={"Location": f"/v1/users/{user_id}/friends?state={'friends' if state == 'friends' else 'outgoing'}"},
    )


async def remove_friend(request: web.Request) -> web.Response:
    """``DELETE /v1/users/{id}/friends/{friend_id}``: 200 with what ``removed`` ended
    (``friendship``, ``request_withdrawn``, ``request_declined`` or ``nothing``).

    Always announced, even when nothing was left to end: a retry after a failed announcement
    must still reach the live connections.
    """
    return await end_relation(
        request,
        "friend_id",
        consent_db.remove_relation,
        with_self="a user has no friendship or request with themself",
        stored="the change is stored",
    )


async def end_relation(
    request: web.Request,
    other: str,
    end: Callable[[asyncpg.Connection, int, int], Awaitable[consent_db.Removed]],
    *,
    with_self: str,
    stored: str,
) -> web.Response:
    """The write path of a change that ends whatever the path's ``id`` has with the user the
    path parameter ``other`` names (a friendship, or a request either way): removing it, or
    blocking that user. Announced every time, as :func:`remove_friend` says why.

    Args:
        request: the request, whose caller must be ``id`` or an admin.
        other: the path parameter of the other user (``friend_id``, ``blocked_id``); also the
            answer's key for that user.
        end: the change, called as ``end(conn, id, other)`` in a transaction; returns what it ended.
        with_self: why ``id`` may not name itself as the other user (a 400 naming ``other``).
        stored: what the 503 of a failed announcement says was stored all the same.

    Returns:
        200 with what ``removed`` ended, and the write's consistency token.
    """
    user_id = path_user_id(request, "id")
    other_id = path_user_id(request, other)
    acting_for(request, user_id)
    if user_id == other_id:
        raise InvalidRequest.field(other, with_self)

    async def run(conn: asyncpg.Connection) -> tuple[consent_db.Removed, Parties, int]:
        async with conn.transaction():
            removed = await end(conn, user_id, other_id)
            known = await consent_db.parties(conn, user_id, other_id)
        return removed, known, await queries.visible_lsn(conn)

    removed, known, lsn = await request.app[db_key].write(run)
    presence = request.app[presence_key]
    await presence.publish(presence.announcer.relation_ended(user_id, other_id, known.homes), stored=stored)
    return written(request, {"user_id": user_id, other: other_id, "removed": removed.value}, lsn)


async def list_friends(request: web.Request) -> web.Response:
    """``GET /v1/users/{id}/friends``: ``state`` (``friends``, the default, ``incoming`` or
    ``outgoing``), a page of ``limit`` by user id, ``next`` the cursor of the next page."""
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)
    page = parse_page(request.query, default_limit=DEFAULT_LIST_LIMIT, max_limit=MAX_LIST_LIMIT, others=("state",))
    state = page.values.get("state", "friends")
    if state not in LIST_STATES:
        raise InvalidRequest.field("state", f"must be one of {', '.join(LIST_STATES)}")
    listing = LIST_STATES[state]
    key = request.app[cursor_secret_key]
    after = 0 if page.cursor is None else decode_position(key, listing, user_id, page.cursor)
    token = consistency_of(request)

    async def run(conn: asyncpg.Connection) -> list[dict[str, Any]]:
        # One more than asked: whether there is a next page, without a second query.
        if listing is Listing.FRIENDS:
            friends = await friends_db.list_friends(conn, user_id, after=after, limit=page.limit + 1)
            return [
                {
                    "user_id": f.user_id,
                    "display_name": f.display_name,
                    "since": f.since.isoformat(),
                    "sharing": f.shares,
                }
                for f in friends
            ]
        incoming = listing is Listing.INCOMING
        waiting = await consent_db.requests_of(conn, user_id, incoming=incoming, after=after, limit=page.limit + 1)
        if incoming:  # the asker chose to show their name to the user they asked
            return [
                {"user_id": r.user_id, "display_name": r.display_name, "since": r.since.isoformat()} for r in waiting
            ]
        return [{"user_id": r.user_id, "since": r.since.isoformat()} for r in waiting]

    items = await request.app[db_key].read(run, min_lsn=token)
    more = len(items) > page.limit
    items = items[: page.limit]
    after_last = encode_position(key, listing, user_id, items[-1]["user_id"]) if more else None
    return json_response({"user_id": user_id, state: items, "next": after_last})
