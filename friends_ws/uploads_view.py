"""``POST /v1/me/locations``: locations a phone recorded while no socket was open.

A backgrounded app cannot keep a WebSocket, so it uploads what it recorded, one point or a
batch, with the same bearer token. The points take the socket's path (:mod:`friends_ws.share`):
history by the user's sharing rules, the newest cached with its TTL and published, so live
friends receive it as a ``friend_location`` exactly as from a socket. An upload is not a user
looking: it never speeds up a friend's pace.

Idempotent: each point carries the client's sequence number, and the user's newest accepted
one is kept in the location cache's Redis (:meth:`~friends_ws.cache.LocationCache.advance_sequence`).
A point at or below it (a retried batch, a duplicate, an older batch arriving after a newer
one) is ignored; the answer says how many were accepted and ignored, and at what pace to
upload next (:mod:`friends_ws.pace`, from friends' cached locations).
"""

from __future__ import annotations

import logging
import math
import time
from collections import defaultdict

from aiohttp import web

from friends_ws.auth import handshake_token
from friends_ws.clock import now_ms
from friends_ws.keys import services_key, settings_key
from friends_ws.pace import watched
from friends_ws.privacy import seen_for, sharing_of, shown
from friends_ws.services import Services
from friends_ws.user_sharing import BACKEND_ERRORS
from friends_ws.share import announce_home, claim_home, record_history, share
from friends_ws.uploads import MAX_UPLOAD_BYTES, InvalidUpload, Point, parse_upload
from geo_common import friends_db
from geo_common.database import DatabaseUnavailable
from geo_common.friends_db import Grant
from geo_common.presence import Location
from geo_common.problems import FieldError, problem_response
from geo_common.provider_keys import KeysUnavailable
from geo_common.tokens import TokenError

log = logging.getLogger(__name__)


def _unavailable(detail: str, retry_s: float) -> web.Response:
    return problem_response(
        503, "unavailable", "Service unavailable", detail, headers={"Retry-After": str(math.ceil(retry_s))}
    )


async def upload_locations(request: web.Request) -> web.Response:
    """Accept a batch of recorded points; answer what was applied and the pace to keep."""
    services = request.app[services_key]
    settings = request.app[settings_key]
    try:
        verified = await services.verifier.verify(handshake_token(request.headers, request.query))
    except (KeysUnavailable, DatabaseUnavailable) as exc:
        log.warning("cannot verify a token now: %s", exc)
        return _unavailable("tokens cannot be verified right now; send it again", settings.breaker_reset_s)
    except TokenError as exc:
        return problem_response(
            401,
            "unauthorized",
            "Not authenticated",
            str(exc),
            [FieldError("Authorization", "a valid bearer token")],
            {"WWW-Authenticate": 'Bearer realm="geo"'},
        )
    user_id = verified.user_id
    retry_s = services.limits.upload_refusal(user_id, time.monotonic())
    if retry_s is not None:
        return problem_response(
            429,
            "too-many-requests",
            "Too many requests",
            f"at most {settings.upload_max_per_min:g} uploads a minute; send this one again later",
            headers={"Retry-After": str(retry_s)},
        )
    body = await request.content.read(MAX_UPLOAD_BYTES + 1)
    if len(body) > MAX_UPLOAD_BYTES:
        return problem_response(
            413,
            "payload-too-large",
            "Request body too large",
            f"an upload is at most {MAX_UPLOAD_BYTES} bytes; send fewer points at a time",
            [FieldError("body", f"at most {MAX_UPLOAD_BYTES} bytes")],
        )
    try:
        points = parse_upload(body, max_points=settings.upload_max_points)
    except InvalidUpload as exc:
        return problem_response(400, "invalid-body", "Invalid request body", exc.detail, exc.errors)
    try:
        answer = await _apply(services, user_id, points)
    except BACKEND_ERRORS as exc:
        log.warning("user %d: an upload failed: %s", user_id, exc)
        return _unavailable("the service is briefly unavailable; send the same upload again", 1)
    return web.json_response(answer)


async def _apply(services: Services, user_id: int, points: list[Point]) -> dict[str, int]:
    user, grants = await services.db.read_primary(lambda conn: friends_db.user_and_grants(conn, user_id))
    sharing = sharing_of(user)
    home = None if user is None else user.home_region
    newest = points[-1]
    if home is None:
        home = await claim_home(services, user_id, newest.latitude, newest.longitude)
        if home != services.regions.default.name:
            await announce_home(services, user_id, home)
    before = await services.cache.advance_sequence(home, user_id, newest.seq)
    fresh = [p for p in points if p.seq > before]
    received = now_ms()
    if fresh and sharing.enabled:
        point = fresh[-1]
        location = Location(user_id, point.latitude, point.longitude, received, point.timestamp)
        try:
            await share(services, home, location, sharing)
        except BaseException:
            # Not applied: the same upload sent again must be accepted, not ignored.
            await services.cache.restore_sequence(home, user_id, newest.seq, before)
            raise
    for point in fresh:
        record_history(
            services,
            user_id,
            point.latitude,
            point.longitude,
            sharing,
            received_ms=received,
            sent_at_ms=point.timestamp,
        )
    services.stats.uploaded += len(fresh)
    position = fresh[-1] if fresh else newest
    pace = services.config.pace
    looking = await _watched(services, grants, position, received) if sharing.enabled else False
    return {
        "accepted": len(fresh),
        "ignored": len(points) - len(fresh),
        "last_seq": max(before, newest.seq),
        "interval_s": pace.interval_s(looking),
    }


async def _watched(services: Services, grants: list[Grant], point: Point, now: int) -> bool:
    """Whether a friend who shares with the user watches them at ``point`` (from the cache)."""
    levels = {g.friend_id: seen_for(g.level) for g in grants}
    by_region: dict[str, list[int]] = defaultdict(list)
    for grant in grants:
        if levels[grant.friend_id] in ("exact", "coarse"):
            by_region[services.regions.get(grant.home_region).name].append(grant.friend_id)
    friends: list[Location] = []
    for region, ids in by_region.items():
        for location in (await services.cache.fetch(region, ids)).values():
            friends.append(shown(location, coarse=levels[location.user_id] == "coarse"))
    return watched(services.config.pace, point.latitude, point.longitude, friends, now)
