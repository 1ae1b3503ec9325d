"""Per-user limits on writes that cost others something: the friend requests a user may send.

A fixed window per user, counted in Redis: the first request creates a counter that lives
:data:`WINDOW_S` seconds, each request adds one, and a request beyond the limit is refused
with 429 ``too-many-requests`` and ``Retry-After`` (the counter's remaining life) before
anything is stored or announced. Every attempt counts, accepted or refused later, so retrying
in a loop does not help; accepting another user's request is not an attempt (the route does
not ask this module about it). The counter lives in the default region's presence Redis, the one the
friendship routes announce through (:mod:`location_api.friends.presence`), under the deployment's
namespace, so every write instance counts the same requests. Admins are not limited.

While that Redis cannot answer (its breaker is open, or the call fails) requests are not
counted: the route goes on as it did before there was a limit, stores the change and answers
503 ``presence-unavailable`` when it cannot announce it, which the breaker then makes fail
fast. A limit that failed closed would refuse what the route keeps on purpose (a change is
stored first, and retrying is safe); and the counter's failures are left out of the breaker,
which judges the announcements.
"""

from __future__ import annotations

import logging
import math

from location_api.errors import ApiError
from geo_common.problems import FieldError
from location_api.friends.presence import PRESENCE_ERRORS, Presence

log = logging.getLogger(__name__)

#: The length of a window, seconds.
WINDOW_S = 60


class TooManyRequests(ApiError):
    """The caller sent more requests of a kind than its window allows (429, with ``Retry-After``)."""

    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(self, detail: str, errors: list[FieldError], *, retry_after_s: int) -> None:
        super().__init__(detail, errors, headers={"Retry-After": str(retry_after_s)})


async def limit_friend_requests(presence: Presence, user_id: int, per_minute: int) -> None:
    """Count one friend request of ``user_id``; refuse it when it is one too many.

    Args:
        presence: the regions' Redis clients and breakers.
        user_id: the asker (a user, not an admin).
        per_minute: ``GEO_MAX_FRIEND_REQUESTS_PER_MIN``.

    Raises:
        TooManyRequests: ``user_id`` has sent ``per_minute`` requests in this window already.
    """
    region = presence.regions.default.name
    if not presence.breakers[region].would_allow():
        return  # Redis is down: not counted (see the module's docstring)
    key = f"{presence.announcer.namespace}:api:friend-requests:{user_id}"
    try:
        # One round trip, atomic: start the window if there is none, count, read its end.
        async with presence.caches[region].pipeline(transaction=True) as pipe:
            pipe.set(key, 0, ex=WINDOW_S, nx=True)
            pipe.incr(key)
            pipe.pttl(key)
            _, count, left_ms = await pipe.execute()
    except PRESENCE_ERRORS as exc:
        log.warning("friend requests not counted: region %s's Redis failed (%s)", region, type(exc).__name__)
        return
    if int(count) > per_minute:
        # PTTL is negative only when the key has no expiry or is gone: then a whole window.
        retry_after_s = max(1, math.ceil(int(left_ms) / 1000)) if int(left_ms) > 0 else WINDOW_S
        raise TooManyRequests(
            f"user {user_id} sent {per_minute} friend requests within {WINDOW_S} s; nothing is stored; "
            f"retry in {retry_after_s} s",
            [FieldError("id", f"has sent {per_minute} friend requests within {WINDOW_S} s")],
            retry_after_s=retry_after_s,
        )
