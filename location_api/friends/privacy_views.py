"""Per-friend sharing, blocks and the profile over HTTP (docs/friends-protocol.md,
"Per-friend privacy and blocks" and "Profile").

* ``PUT /v1/users/{id}/friends/{friend_id}/sharing``: what the user shares with one friend;
* ``PUT``, ``DELETE /v1/users/{id}/blocks/{blocked_id}``, ``GET /v1/users/{id}/blocks``:
  block a user (ending any friendship or request at once), lift a block, list them;
* ``PUT``, ``GET /v1/users/{id}/profile``: the display name, and the sharing in force.

Only the user themself or an admin may call them. Changes that restrict or grant what a
friend sees are announced like friendship changes (:mod:`location_api.friends.presence`); GETs are
served by read instances and honour ``X-Consistency-Token``.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from geo_common import consent_db, friends_db
from geo_common.consent_db import Parties
from geo_common.friends_db import MAX_DISPLAY_NAME, User
from geo_common.presence import AccessLevel
from location_api import queries
from location_api.errors import InvalidBody, NotFound
from geo_common.problems import FieldError
from location_api.keys import cursor_secret_key, db_key, presence_key
from location_api.friends.user_paging import (
    DEFAULT_LIST_LIMIT,
    MAX_LIST_LIMIT,
    Listing,
    decode_position,
    encode_position,
    parse_page,
)
from location_api.auth import acting_for
from location_api.bodies import json_fields
from location_api.friends.friendship_views import end_relation
from location_api.friends.user_requests import path_user_id, written, consistency_of
from location_api.views import json_response

#: What a user may share with one friend (``friends_db.SHARES``), as announced.
SHARING_LEVELS: dict[str, AccessLevel] = {"exact": "exact", "coarse": "coarse", "hidden": "hidden"}


async def share_with_friend(request: web.Request) -> web.Response:
    """``PUT /v1/users/{id}/friends/{friend_id}/sharing`` with ``{"sharing": "exact"}``,
    ``"coarse"`` or ``"hidden"``: 200, or 404 when they are not friends."""
    user_id = path_user_id(request, "id")
    friend_id = path_user_id(request, "friend_id")
    acting_for(request, user_id)
    raw = json_fields(await request.read(), ("sharing",))["sharing"]
    if not isinstance(raw, str) or raw not in SHARING_LEVELS:
        raise InvalidBody.field("sharing", f"must be one of {', '.join(SHARING_LEVELS)}")
    level = SHARING_LEVELS[raw]

    async def run(conn: asyncpg.Connection) -> tuple[bool, Parties, int]:
        async with conn.transaction():
            friends = await friends_db.set_friend_sharing(conn, user_id, friend_id, level)
            known = await consent_db.parties(conn, user_id, friend_id)
        return friends, known, await queries.visible_lsn(conn)

    friends, known, lsn = await request.app[db_key].write(run)
    if not friends:
        raise NotFound(
            f"users {user_id} and {friend_id} are not friends", [FieldError("friend_id", "is not a friend of id")]
        )
    presence = request.app[presence_key]
    await presence.publish(
        presence.announcer.sharing_with(user_id, friend_id, level, known.homes), stored="the sharing is stored"
    )
    return written(request, {"user_id": user_id, "friend_id": friend_id, "sharing": level}, lsn)


async def block_user(request: web.Request) -> web.Response:
    """``PUT /v1/users/{id}/blocks/{blocked_id}``: block, ending any friendship or request;
    200 with what ``removed`` ended. Announced every time, like ``DELETE .../friends/...``."""
    return await end_relation(
        request,
        "blocked_id",
        consent_db.block,
        with_self="a user cannot block themself",
        stored="the block is stored",
    )


async def unblock_user(request: web.Request) -> web.Response:
    """``DELETE /v1/users/{id}/blocks/{blocked_id}``: 200, ``unblocked`` false when there was
    no block. Nothing is announced: lifting a block grants nothing by itself."""
    user_id = path_user_id(request, "id")
    blocked_id = path_user_id(request, "blocked_id")
    acting_for(request, user_id)

    async def run(conn: asyncpg.Connection) -> tuple[bool, int]:
        unblocked = await consent_db.unblock(conn, user_id, blocked_id)
        return unblocked, await queries.visible_lsn(conn)

    unblocked, lsn = await request.app[db_key].write(run)
    return written(request, {"user_id": user_id, "blocked_id": blocked_id, "unblocked": unblocked}, lsn)


async def list_blocks(request: web.Request) -> web.Response:
    """``GET /v1/users/{id}/blocks``: the users blocked, a page of ``limit`` by user id."""
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)
    page = parse_page(request.query, default_limit=DEFAULT_LIST_LIMIT, max_limit=MAX_LIST_LIMIT)
    key = request.app[cursor_secret_key]
    after = 0 if page.cursor is None else decode_position(key, Listing.BLOCKS, user_id, page.cursor)
    token = consistency_of(request)
    blocks = await request.app[db_key].read(
        lambda conn: consent_db.blocks_of(conn, user_id, after=after, limit=page.limit + 1), min_lsn=token
    )
    more = len(blocks) > page.limit
    blocks = blocks[: page.limit]
    return json_response(
        {
            "user_id": user_id,
            "blocks": [{"user_id": b.user_id, "since": b.since.isoformat()} for b in blocks],
            "next": encode_position(key, Listing.BLOCKS, user_id, blocks[-1].user_id) if more else None,
        }
    )


def parse_display_name(value: Any) -> str | None:
    """The ``display_name`` of a profile body: 1 to 64 characters (no NUL), or null.

    Raises:
        InvalidBody: naming ``display_name``.
    """
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidBody.field("display_name", "must be a string or null")
    if not 1 <= len(value) <= MAX_DISPLAY_NAME:
        raise InvalidBody.field("display_name", f"must have 1 to {MAX_DISPLAY_NAME} characters, got {len(value)}")
    if "\x00" in value:
        raise InvalidBody.field("display_name", "must not contain NUL characters")
    return value


async def set_profile(request: web.Request) -> web.Response:
    """``PUT /v1/users/{id}/profile`` with ``{"display_name": "Ada"}`` (or null to clear)."""
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)
    name = parse_display_name(json_fields(await request.read(), ("display_name",))["display_name"])

    async def run(conn: asyncpg.Connection) -> int:
        await friends_db.set_display_name(conn, user_id, name)
        return await queries.visible_lsn(conn)

    lsn = await request.app[db_key].write(run)
    return written(request, {"user_id": user_id, "display_name": name}, lsn)


async def get_profile(request: web.Request) -> web.Response:
    """``GET /v1/users/{id}/profile``: the display name and the sharing in force (a user
    never seen has the defaults)."""
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)
    token = consistency_of(request)
    user = await request.app[db_key].read(lambda conn: friends_db.get_user(conn, user_id), min_lsn=token)
    if user is None:
        user = User(user_id, None)
    return json_response(
        {
            "user_id": user_id,
            "display_name": user.display_name,
            "sharing": {
                "enabled": user.sharing_enabled,
                "precision": user.sharing_precision,
                "private_history": user.private_history,
            },
        }
    )
