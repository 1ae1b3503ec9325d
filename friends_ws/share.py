"""Where an accepted location goes, whether a socket sent it or a background upload did.

One path for both (:mod:`friends_ws.session` and :mod:`friends_ws.uploads_view`): the history
keeps the point the user's sharing allows (:func:`~friends_ws.privacy.kept_point`); a user
without a home region claims one; while sharing is on, the point friends may see (coarse when
the user shares coarsely) is written to the location cache with its TTL and published on the
user's location channel, where every instance following the user hears it.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from friends_ws.nearby import coarsen
from friends_ws.privacy import kept_point
from friends_ws.protocol import Sharing
from friends_ws.services import Services
from geo_common import friends_db
from geo_common.presence import Location, Moved, encode_location, encode_moved
from geo_common.control_messages import HomeMoved

log = logging.getLogger(__name__)


def record_history(
    services: Services,
    user_id: int,
    latitude: float,
    longitude: float,
    sharing: Sharing,
    *,
    received_ms: int,
    sent_at_ms: int | None,
) -> None:
    """Queue the point the history keeps of a location the user sent, degrees (none while
    sharing is off, unless the user keeps a private history)."""
    kept = kept_point(latitude, longitude, sharing)
    if kept is not None:
        services.history.record(user_id, kept, received_ms=received_ms, sent_at_ms=sent_at_ms)


async def claim_home(services: Services, user_id: int, latitude: float, longitude: float) -> str:
    """Give a user without one a home region from their location (on the primary); returns it.

    Followers subscribe the user's channels in the default region until told otherwise, so
    the caller then says so with :func:`announce_home` unless the home is the default.
    """
    wanted = services.regions.region_for(latitude, longitude).name
    home, claimed = await services.db.write(lambda conn: friends_db.claim_home_region(conn, user_id, wanted))
    log.debug("user %d: home region %s (%s)", user_id, home, "claimed now" if claimed else "already")
    return home


async def announce_home(services: Services, user_id: int, home: str) -> None:
    """Tell whoever follows the user that their channels live in ``home`` now.

    Some followers are friends this user does not see (they hide from the user), so the news
    goes on the user's own location channel, which every follower hears; the user's live
    connections hear it on the control channel. Repeating it moves nobody twice.
    """
    default = services.regions.default.name
    await services.publisher.publish_location(default, user_id, encode_moved(Moved(user_id, home)))
    await services.publisher.publish_control(default, user_id, HomeMoved(home))


async def share(services: Services, region: str, location: Location, sharing: Sharing) -> Location:
    """Cache and publish what friends may see of a location (sharing on); returns what was shared."""
    if sharing.precision == "coarse":
        latitude, longitude = coarsen(location.latitude, location.longitude)
        location = replace(location, latitude=latitude, longitude=longitude)
    await services.cache.store(region, location)
    await services.publisher.publish_location(region, location.user_id, encode_location(location))
    return location
