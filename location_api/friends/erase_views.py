"""A user's stored locations over HTTP: export and erase (docs/friends-protocol.md,
"Stored locations").

* ``GET /v1/users/{id}/locations/export``: the user's own history, oldest first, a page at
  a time (read instances, from a replica; ``X-Consistency-Token`` honoured);
* ``DELETE /v1/users/{id}/locations``: erase the history, the cached location and the home
  region.

Only the user themself or an admin may call them. No location appears in a URL or a log.
"""

from __future__ import annotations

import datetime as dt

import asyncpg
from aiohttp import web

from geo_common import friends_db, history_db
from geo_common.presence import erasures_channel
from location_api import queries
from location_api.keys import cursor_secret_key, db_key, presence_key
from location_api.friends.user_paging import (
    DEFAULT_EXPORT_LIMIT,
    MAX_EXPORT_LIMIT,
    Listing,
    decode_keyset,
    encode_position,
    parse_page,
)
from location_api.auth import acting_for
from location_api.friends.user_requests import path_user_id, written, consistency_of
from location_api.views import json_response

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _microseconds(moment: dt.datetime) -> int:
    """A time as whole microseconds since the Unix epoch (a cursor's position)."""
    return (moment - _EPOCH) // dt.timedelta(microseconds=1)


async def export_locations(request: web.Request) -> web.Response:
    """``GET /v1/users/{id}/locations/export``: ``locations`` oldest first, ``limit`` (1 to
    1,000, default 500) at a time, ``next`` the cursor of the next page or null."""
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)
    page = parse_page(request.query, default_limit=DEFAULT_EXPORT_LIMIT, max_limit=MAX_EXPORT_LIMIT)
    key = request.app[cursor_secret_key]
    after, skip = None, 0
    if page.cursor is not None:
        position, skip = decode_keyset(key, Listing.HISTORY, user_id, page.cursor)
        after = _EPOCH + dt.timedelta(microseconds=position)
    token = consistency_of(request)
    rows = await request.app[db_key].read(
        lambda conn: history_db.history_of(conn, user_id, after=after, skip=skip, limit=page.limit + 1),
        min_lsn=token,
    )
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    following = (
        encode_position(
            key, Listing.HISTORY, user_id, _microseconds(rows[-1].recorded_at), history_db.next_skip(rows, after, skip)
        )
        if more
        else None
    )
    return json_response(
        {
            "user_id": user_id,
            "locations": [
                {
                    "latitude": r.latitude,
                    "longitude": r.longitude,
                    "recorded_at": r.recorded_at.isoformat(),
                    "sent_at": None if r.sent_at is None else r.sent_at.isoformat(),
                }
                for r in rows
            ],
            "next": following,
        },
        headers={"Cache-Control": "no-store"},
    )


async def erase_locations(request: web.Request) -> web.Response:
    """``DELETE /v1/users/{id}/locations``: erase the history, the cached location and the
    home region, then tell every ``geo-friends`` instance.

    The history goes first and stays erased when Redis fails (503, retrying is safe and
    complete: the home region is forgotten last).
    Friends following the user see them leave (``friend_left``, ``offline``); every instance
    drops the user's history rows it has not written yet; ``instances_notified`` is how many
    instances heard that. A connection the user still has open shares its next update as usual.
    """
    user_id = path_user_id(request, "id")
    acting_for(request, user_id)

    async def erase_history(conn: asyncpg.Connection) -> tuple[int, str | None]:
        async with conn.transaction():
            deleted = await history_db.delete_history(conn, user_id)
            user = await friends_db.get_user(conn, user_id)
        return deleted, None if user is None else user.home_region

    async def forget_home(conn: asyncpg.Connection) -> tuple[str | None, int]:
        return await friends_db.clear_home_region(conn, user_id), await queries.visible_lsn(conn)

    db = request.app[db_key]
    deleted, old_home = await db.write(erase_history)
    presence = request.app[presence_key]
    stored = f"the history is erased ({deleted} rows)"
    # The home region is forgotten only once Redis has been told: a retry after a 503 still
    # knows where the cached location and the channels are.
    region = presence.regions.get(old_home).name
    cached = await presence.delete_location(region, user_id, stored=stored)
    publications = presence.announcer.locations_erased(user_id, old_home)
    receivers = await presence.publish(publications, stored=stored)
    erasures = erasures_channel(presence.announcer.namespace, presence.regions.default.name)
    notified = sum(n for p, n in zip(publications, receivers, strict=True) if p.channel == erasures)
    cleared, lsn = await db.write(forget_home)
    return written(
        request,
        {
            "user_id": user_id,
            "history_rows_deleted": deleted,
            "cached_location_deleted": cached,
            "home_region_cleared": cleared is not None,
            "instances_notified": notified,
        },
        lsn,
    )
